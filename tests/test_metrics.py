"""FID, KID, IS, precision/recall and mode scores against independent oracles."""

import numpy as np
import pytest
import scipy.linalg
import torch

from ganbench.data import load, ring8_modes
from ganbench.metrics import fidelity
from ganbench.metrics.modes import mode_scores


def scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """The closed form of Heusel et al. with scipy's sqrtm, written independently of torch-fidelity."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_agrees_with_scipy_closed_form():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(800, 32, generator=g) @ torch.randn(32, 32, generator=g) * 0.3
    b = torch.randn(600, 32, generator=g) * 1.2 + 0.5
    ours = fidelity.fid_value(fidelity.fid_statistics(a), fidelity.fid_statistics(b))
    ref = scipy_fid(a.double().numpy(), b.double().numpy())
    assert ours == pytest.approx(ref, rel=1e-6)


def test_fid_with_equal_covariances_is_squared_mean_distance():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(500, 16, generator=g, dtype=torch.float64)
    shift = torch.linspace(-1, 1, 16, dtype=torch.float64)
    b = a + shift  # same covariance exactly, means differ by `shift`
    value = fidelity.fid_value(fidelity.fid_statistics(a), fidelity.fid_statistics(b))
    assert value == pytest.approx(float((shift ** 2).sum()), rel=1e-6)


def test_fid_score_has_interval_and_count():
    g = torch.Generator().manual_seed(2)
    s = fidelity.fid(torch.randn(300, 8, generator=g) + 1, torch.randn(400, 8, generator=g), bootstrap=30)
    assert s.n == 300 and s.higher_is_better is False
    assert s.ci_low < s.value < s.ci_high and s.std > 0
    assert s.value == pytest.approx(8.0, rel=0.2)  # |m1 - m2|^2 = 8 for a unit shift in 8 dims


def numpy_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3 over the full sets."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def test_kid_matches_unbiased_mmd_when_subsets_are_the_whole_sets():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(40, 6, generator=g) + 0.3, torch.randn(40, 6, generator=g)
    from torch_fidelity.metric_kid import kid_features_to_metric

    out = kid_features_to_metric(x.double(), y.double(), kid_subsets=3, kid_subset_size=40, verbose=False)
    assert out["kernel_inception_distance_mean"] == pytest.approx(numpy_kid(x.double().numpy(), y.double().numpy()), rel=1e-9)
    score = fidelity.kid(x, y, subsets=20)
    assert score.n == 40 and score.method == "subsets(20x20)"


def test_inception_score_bounds():
    confident_uniform = torch.eye(10).repeat(50, 1) * 50  # every class equally, each sample certain
    # one split: IS = exp(H(marginal) - mean H(p(y|x))) = exp(log 10 - 0)
    assert fidelity.inception_score(confident_uniform, splits=1).value == pytest.approx(10.0, rel=1e-6)
    collapsed = torch.zeros(500, 10)
    collapsed[:, 3] = 50
    assert fidelity.inception_score(collapsed).value == pytest.approx(1.0, abs=1e-6)
    uncertain = torch.zeros(500, 10)  # every sample uniform over classes: no information
    assert fidelity.inception_score(uncertain).value == pytest.approx(1.0, abs=1e-9)


def test_precision_recall_on_identical_and_collapsed_sets():
    real = load("ring8", "train").data[:1500]
    same = fidelity.precision_recall(real, real)
    assert same["precision"].value == pytest.approx(1.0) and same["recall"].value == pytest.approx(1.0)
    one_mode = real[load("ring8", "train").labels[:1500] == 0]
    collapsed = fidelity.precision_recall(one_mode, real)
    assert collapsed["precision"].value > 0.95 and collapsed["recall"].value < 0.25
    assert collapsed["recall"].ci_low <= collapsed["recall"].value <= collapsed["recall"].ci_high


def test_modes_metric_counts_a_dropped_mode_set():
    test = load("ring8", "test")
    keep = test.labels >= 3  # drop modes 0, 1, 2
    scores = mode_scores(test.data[keep], ring8_modes(), 0.01)
    assert scores["modes"].value == 5
    # radius of a 2D isotropic Gaussian: P(r <= 3 sigma) = 1 - exp(-9/2)
    assert scores["hq_fraction"].value == pytest.approx(1 - np.exp(-4.5), abs=0.01)
    assert scores["reverse_kl"].value == pytest.approx(np.log(8 / 5), abs=0.05)
    full = mode_scores(test.data, ring8_modes(), 0.01)
    assert full["modes"].value == 8 and full["reverse_kl"].value < 0.01
