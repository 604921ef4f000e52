"""The validation battery: planted defects with known answers, on real digits and the real extractor."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganbench.data import load
from ganbench.evaluate import REAL, Protocol, Row, evaluate
from ganbench.features import extract, get_extractor
from ganbench.metrics import fidelity
from ganbench.metrics.frechet import GaussianStats
from ganbench.metrics.memorization import birthday, memorization
from ganbench.metrics.prdc import density_coverage


@pytest.fixture(scope="module")
def digits():
    spec = get_extractor("mnist_cnn")
    train, test = load("mnist", "train", 32), load("mnist", "test", 32)
    return {"spec": spec, "train": train, "test": test,
            "f_train": extract(spec, train.data, progress=False)["pool"],
            "f_test": extract(spec, test.data, progress=False)["pool"]}


def _pool(d, images):
    return extract(d["spec"], images, progress=False)["pool"]


def test_training_copies_are_flagged_and_heldout_images_are_not(digits):
    g = torch.Generator().manual_seed(0)
    copies = digits["train"].data[torch.randint(len(digits["train"]), (1000,), generator=g)]  # verbatim, with replacement
    f_copy = _pool(digits, copies)
    mem_copy = memorization(f_copy, digits["f_train"], digits["f_test"])
    mem_real = memorization(digits["f_test"], digits["f_train"], digits["f_test"])
    assert mem_copy["copy_fraction"].value > 0.95 and mem_copy["nn_ratio"].value < 0.01
    assert mem_real["copy_fraction"].value <= 0.02 and 0.9 < mem_real["nn_ratio"].value < 1.1

    bd_copy = birthday(f_copy, digits["f_test"])
    bd_real = birthday(_pool(digits, load("mnist", "test", 32).data), digits["f_test"], seed=1)
    # 4000 training images drawn with replacement: C(200, 2) / 4000 ~ 5 duplicate pairs per batch
    assert bd_copy["duplicate_pairs"].value > 2
    assert 1500 < bd_copy["birthday_support"].value < 10000
    assert bd_real["birthday_support"].value > 20 * bd_copy["birthday_support"].value


@pytest.mark.parametrize("kind", ["blur", "noise"])
def test_fid_and_kid_grow_monotonically_with_corruption(digits, kind):
    x = digits["test"].data.float()
    ref = GaussianStats.from_features(digits["f_train"], with_root=True)
    fids, kids = [], []
    for strength in range(5):
        if kind == "blur":
            sigma = 0.6 * strength
            y = x if strength == 0 else _gaussian_blur(x, sigma)
        else:
            y = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * 8 * strength
        f = _pool(digits, y.round().clamp(0, 255).to(torch.uint8))
        fids.append(fidelity.fid(f, ref, bootstrap=2).value)
        kids.append(fidelity.kid(f, digits["f_train"], subsets=20).value)
    assert fids == sorted(fids) and fids[-1] > 10 * max(fids[0], 0.1), fids
    assert kids == sorted(kids), kids


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(np.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))


def test_single_class_collapse_loses_recall_and_coverage_keeps_precision(digits):
    labels = digits["test"].labels
    collapsed = digits["f_test"][labels == 3]  # 100 real threes
    diverse = digits["f_test"][torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:100]]
    ref = digits["f_train"]
    pr_c, pr_d = fidelity.precision_recall(collapsed, ref), fidelity.precision_recall(diverse, ref)
    dc_c, dc_d = density_coverage(collapsed, ref), density_coverage(diverse, ref)
    assert pr_c["precision"].value > 0.8 * pr_d["precision"].value
    assert pr_c["recall"].value < 0.3 * pr_d["recall"].value
    assert dc_c["coverage"].value < 0.4 * dc_d["coverage"].value


def test_scores_agree_with_torch_fidelity_calculate_metrics(digits, tmp_path):
    """torch-fidelity's own pipeline on the same images and extractor, to 1e-6 relative."""
    import torch_fidelity

    class Images(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    # blurred digits, so that every score is far from zero and a relative tolerance means something
    gen = _gaussian_blur(digits["test"].data[:600].float(), 0.8).round().clamp(0, 255).to(torch.uint8)
    ref = digits["train"].data[:1200]
    path, _ = digits["spec"].weights()
    theirs = torch_fidelity.calculate_metrics(
        input1=Images(gen), input2=Images(ref), cuda=False, fid=True, kid=True, isc=True, prc=True, verbose=False,
        feature_extractor="ganbench-mnist-cnn", feature_extractor_weights_path=str(path),
        kid_subset_size=300, kid_subsets=100, rng_seed=2020, cache=False, save_cpu_ram=True, batch_size=200)
    fg, fr = extract(digits["spec"], gen, progress=False), extract(digits["spec"], ref, progress=False)
    ours_fid = fidelity.fid(fg["pool"], GaussianStats.from_features(fr["pool"]), bootstrap=2).value
    ours_kid = fidelity.kid(fg["pool"], fr["pool"], seed=2020)
    ours_is = fidelity.inception_score(fg["logits"], splits=10, seed=2020)
    ours_pr = fidelity.precision_recall(fg["pool"], fr["pool"])
    assert ours_kid.method.startswith("subsets(100x300)")
    assert ours_fid == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert ours_kid.value == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert ours_is.value == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert ours_pr["precision"].value == pytest.approx(theirs["precision"], rel=1e-6)
    assert ours_pr["recall"].value == pytest.approx(theirs["recall"], rel=1e-6)


def test_eval_reports_every_score_with_interval_and_count(digits):
    # the real-data row: the 1000 held-out digits scored like samples against the training split, every default metric
    protocol = Protocol("mnist", "mnist_cnn", len(digits["test"]), resolution=32)
    result = evaluate(protocol, task="unconditional", row=Row(reference=REAL), progress=False)
    assert result.samples.source == "split" and result.samples.split_sha256 == digits["test"].sha256
    assert result.dataset.reference_sha256 == digits["train"].sha256
    expected = {"fid", "fid_inf", "kid", "is", "precision", "recall", "density", "coverage", "ndb", "ndb_jsd",
                "copy_fraction", "nn_ratio", "birthday_support", "duplicate_pairs", "ms_ssim"}
    assert expected <= set(result.scores)
    for name, s in result.scores.items():
        assert s.n > 0 and s.method, name
    for name in ("fid", "fid_inf", "kid", "is", "precision", "recall", "density", "coverage", "ms_ssim"):
        s = result.scores[name]
        assert s.std is not None and s.ci_low is not None and s.ci_high is not None, name
