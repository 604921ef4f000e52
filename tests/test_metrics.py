"""FID, KID, IS, precision/recall and mode scores against independent oracles."""

import numpy as np
import pytest
import scipy.linalg
import torch

from ganbench.data import load, ring8_modes
from ganbench.metrics import fidelity
from ganbench.metrics.frechet import GaussianStats, fid_infinity, frechet_distance
from ganbench.metrics.modes import mode_scores


def fid_value(a, b) -> float:
    return frechet_distance(GaussianStats.from_features(a), GaussianStats.from_features(b, with_root=True))


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
    ours = fid_value(a, b)
    ref = scipy_fid(a.double().numpy(), b.double().numpy())
    assert ours == pytest.approx(ref, rel=1e-6)


def test_fid_with_equal_covariances_is_squared_mean_distance():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(500, 16, generator=g, dtype=torch.float64)
    shift = torch.linspace(-1, 1, 16, dtype=torch.float64)
    b = a + shift  # same covariance exactly, means differ by `shift`
    value = fid_value(a, b)
    assert value == pytest.approx(float((shift ** 2).sum()), rel=1e-6)


def test_fid_score_has_interval_and_count():
    g = torch.Generator().manual_seed(2)
    s = fidelity.fid(torch.randn(300, 8, generator=g) + 1, GaussianStats.from_features(torch.randn(400, 8, generator=g)))
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
    assert score.n == 40 and score.method.startswith("subsets(20x20)")


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


def test_fid_agrees_with_torch_fidelity_closed_form():
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    g = torch.Generator().manual_seed(5)
    a = torch.randn(900, 48, generator=g, dtype=torch.float64) @ torch.randn(48, 48, generator=g, dtype=torch.float64)
    b = torch.randn(700, 48, generator=g, dtype=torch.float64) * 2 + 0.1
    sa, sb = GaussianStats.from_features(a), GaussianStats.from_features(b)
    theirs = fid_statistics_to_metric({"mu": sa.mu, "sigma": sa.sigma}, {"mu": sb.mu, "sigma": sb.sigma}, False)
    assert frechet_distance(sa, sb.with_root()) == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)


def test_fid_stays_real_and_exact_on_near_singular_covariances():
    """Fewer samples than dimensions: covariances of rank < D. With a shared eigenbasis the trace term has
    the closed form sum_i sqrt(l1_i * l2_i), which scipy's sqrtm misses (it returns complex parts)."""
    d, rank = 64, 20
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    l1 = np.concatenate([rng.uniform(0.5, 2, rank), np.zeros(d - rank)])
    l2 = np.concatenate([rng.uniform(0.5, 2, rank), np.full(d - rank, 1e-12)])
    s1, s2 = (q * l1) @ q.T, (q * l2) @ q.T
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    exact = float(((mu1 - mu2) ** 2).sum() + l1.sum() + l2.sum() - 2 * np.sqrt(l1 * l2).sum())
    ours = frechet_distance(GaussianStats(mu1, s1, rank), GaussianStats(mu2, s2, rank))
    assert ours == pytest.approx(exact, rel=1e-8)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    assert np.iscomplexobj(covmean)  # scipy's sqrtm turns complex here; ganbench's trace term never does
    assert isinstance(ours, float)
    # and on real features with n < d
    x = torch.from_numpy(rng.standard_normal((30, d)))
    y = torch.from_numpy(rng.standard_normal((40, d)) + 0.5)
    v = fid_value(x, y)
    assert np.isfinite(v) and v > 0


def test_fid_cholesky_and_square_root_factors_agree():
    """The trace term from the Cholesky factor (dsygst) equals the one from the symmetric square root; a
    rank-deficient reference (fewer samples than dimensions) has no Cholesky factor and falls back."""
    from ganbench.metrics.frechet import symmetric_sqrt

    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 48, generator=g, dtype=torch.float64)
    y = torch.randn(400, 48, generator=g, dtype=torch.float64) @ torch.randn(48, 48, generator=g, dtype=torch.float64) * 0.3
    gen, ref = GaussianStats.from_features(x), GaussianStats.from_features(y, with_root=True)
    assert ref.root_is_cholesky
    by_sqrt = GaussianStats(ref.mu, ref.sigma, ref.n, symmetric_sqrt(ref.sigma), False)
    assert frechet_distance(gen, ref) == pytest.approx(frechet_distance(gen, by_sqrt), rel=1e-10)
    assert frechet_distance(gen, ref) == pytest.approx(scipy_fid(x.numpy(), y.numpy()), rel=1e-6)
    few = GaussianStats.from_features(y[:20], with_root=True)
    assert not few.root_is_cholesky
    np.testing.assert_allclose(few.root @ few.root.T, few.sigma, atol=1e-10)


def test_fid_infinity_removes_the_sample_size_bias():
    """Gaussians with known FID: ||m||^2 for N(m, I) against the exact N(0, I) statistics."""
    d = 32
    shift = torch.full((d,), 0.25, dtype=torch.float64)
    true = float((shift ** 2).sum())  # 2.0
    ref = GaussianStats(np.zeros(d), np.eye(d), 10**9)
    g = torch.Generator().manual_seed(0)
    gen = torch.randn(2000, d, generator=g, dtype=torch.float64) + shift
    biased = frechet_distance(GaussianStats.from_features(gen), ref)
    inf = fid_infinity(gen, ref)
    assert biased - true > 0.1  # the finite-N bias (about d^2 / (4 N) here)
    assert abs(inf.value - true) < abs(biased - true) / 2 and abs(inf.value - true) < 3 * inf.std
    assert inf.ci_low < inf.value < inf.ci_high


def test_density_coverage_match_the_reference_prdc_package():
    prdc = pytest.importorskip("prdc")
    from ganbench.metrics.prdc import density_coverage

    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 10, generator=g), torch.randn(300, 10, generator=g) + 0.3
    ours = density_coverage(fake, real, k=5)
    theirs = prdc.compute_prdc(real.double().numpy(), fake.double().numpy(), 5)
    assert ours["density"].value == pytest.approx(theirs["density"], rel=1e-12)
    assert ours["coverage"].value == pytest.approx(theirs["coverage"], rel=1e-12)


def test_ndb_is_small_for_real_data_and_large_for_a_shifted_set():
    from ganbench.metrics.ndb import ndb_jsd

    g = torch.Generator().manual_seed(0)
    train = torch.randn(4000, 4, generator=g)
    same = ndb_jsd(torch.randn(1000, 4, generator=g), train, bins=20)
    shifted = ndb_jsd(torch.randn(1000, 4, generator=g) + 0.7, train, bins=20)
    assert same["ndb"].value <= 0.15 and shifted["ndb"].value >= 0.5
    assert shifted["ndb_jsd"].value > 5 * same["ndb_jsd"].value


def test_ms_ssim_diversity_is_one_for_copies_and_lower_for_distinct_digits():
    from ganbench.metrics.diversity import ms_ssim_diversity

    x = load("mnist", "test", 32).data[:300]
    assert ms_ssim_diversity(x[:1].repeat(50, 1, 1, 1))["ms_ssim"].value == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim_diversity(x)["ms_ssim"].value < 0.5


def test_stacked_mode_counts():
    from ganbench.metrics.modes import stacked_mode_scores

    triples = torch.arange(1000).repeat(3)
    digits = torch.stack([triples // 100, triples // 10 % 10, triples % 10], 1)
    logits = torch.nn.functional.one_hot(digits, 10).float().reshape(-1, 30) * 10
    full = stacked_mode_scores(logits)
    assert full["stacked_modes"].value == 1000 and full["stacked_kl"].value == pytest.approx(0.0, abs=1e-12)
    half = stacked_mode_scores(logits[triples < 500])
    assert half["stacked_modes"].value == 500 and half["stacked_kl"].value == pytest.approx(np.log(2), rel=1e-9)


def test_kid_equals_torch_fidelity_subset_for_subset():
    from torch_fidelity.metric_kid import kid_features_to_metric

    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(120, 16, generator=g) + 0.2, torch.randn(200, 16, generator=g)
    ours = fidelity.kid(x, y, seed=7, subsets=25)
    theirs = kid_features_to_metric(x.double(), y.double(), kid_subsets=25, kid_subset_size=60, rng_seed=7,
                                    verbose=False)
    assert ours.value == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    # ganbench's std is the value's standard error (tests/test_intervals.py), not the spread of the subsets
    assert ours.std != pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-3)
