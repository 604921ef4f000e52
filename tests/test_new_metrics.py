"""The metrics of issue 19 (sFID, Vendi, RBF-MMD/CMMD, KID-RBF, FWD, sliced Wasserstein, intra-class FID) against
reference implementations on the same inputs (vendi-score, torch-fidelity, POT, PyWavelets) or the published formula
re-implemented here, and planted checks whose answer is known; their registration; ``ganbench ls metrics``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganbench.metrics import MetricInputs, compute, get_metric, metrics_for
from ganbench.metrics import fwd, intra_fid, mmd, swd, vendi
from ganbench.metrics.frechet import GaussianStats, frechet_distance

NEW = ("sfid", "vendi", "vendi_pixels", "rbf_mmd", "kid_rbf", "swd", "fwd", "intra_fid", "ppl")


def gaussian(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def digits_like(n: int, seed: int, side: int = 32) -> torch.Tensor:
    """uint8 (n, 1, side, side) images with structure (smooth blobs), so that blur and noise change them."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                            indexing="ij")
    c = torch.rand(n, 3, 2, generator=g, dtype=torch.float64) * side
    r = 2 + torch.rand(n, 3, generator=g, dtype=torch.float64) * 4
    d2 = (yy - c[..., 0, None, None]) ** 2 + (xx - c[..., 1, None, None]) ** 2
    img = torch.exp(-d2 / (2 * r[..., None, None] ** 2)).sum(1).clamp(max=1) * 255
    return img.round().to(torch.uint8).unsqueeze(1)


# ------------------------------------------------------------------------------------------------------ Vendi


def test_vendi_agrees_with_vendi_score_both_gram_sides():
    from vendi_score import vendi as reference

    tall, wide = gaussian(300, 24, 0).numpy(), gaussian(40, 200, 1).numpy()
    assert vendi.vendi_score(torch.from_numpy(tall)).value == pytest.approx(reference.score_dual(tall),
                                                                                         rel=1e-9)
    assert vendi.vendi_score(torch.from_numpy(wide)).value == pytest.approx(reference.score_X(wide),
                                                                                         rel=1e-9)
    # and the pixel variant on the same pixel vectors (32x32 images are used as they are)
    images = digits_like(60, seed=2)
    pixels = images.flatten(1).double().numpy()
    assert vendi.pixel_vendi_score(images).value == pytest.approx(reference.score_X(pixels), rel=1e-9)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_vendi_of_k_separated_equal_clusters_is_k(k):
    centres = torch.eye(32, dtype=torch.float64)[:k] * 10  # mutually orthogonal: cosine similarity 0 across clusters
    x = centres.repeat_interleave(50, dim=0) + gaussian(50 * k, 32, seed=k) * 0.01
    s = vendi.vendi_score(x, seed=0)
    assert s.value == pytest.approx(k, rel=0.01)
    assert s.ci_low <= s.value + 0.05 and s.std < 0.1 and s.n == 50 * k and s.higher_is_better
    assert f"jackknife({vendi.VENDI_GROUPS} groups)" in s.method
    # one duplicated sample is one effective sample; n orthogonal samples are n
    assert vendi.vendi_score(torch.ones(20, 5)).value == pytest.approx(1, rel=1e-9)
    assert vendi.vendi_score(torch.eye(12)).value == pytest.approx(12, rel=1e-9)


def test_pixel_vendi_area_averages_large_images():
    images = digits_like(20, seed=3, side=64)
    assert vendi.pixel_vectors(images).shape == (20, 32 * 32)
    assert vendi.pixel_vectors(digits_like(5, seed=3, side=28)).shape == (5, 28 * 28)


# -------------------------------------------------------------------------------------------- RBF MMD and KID


def cmmd_reference(x: np.ndarray, y: np.ndarray, sigma: float = 10.0, scale: float = 1000.0) -> float:
    """google-research/cmmd ``distance.mmd`` (written for jax) in numpy: the biased estimator over full matrices."""
    x_sq, y_sq = np.diag(x @ x.T), np.diag(y @ y.T)
    gamma = 1 / (2 * sigma ** 2)
    k_xx = np.mean(np.exp(-gamma * (-2 * x @ x.T + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * x @ y.T + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * y @ y.T + y_sq[:, None] + y_sq[None, :])))
    return scale * (k_xx + k_yy - 2 * k_xy)


def test_rbf_mmd_equals_a_hand_computed_value():
    # unit vectors e1, e2 against e1, e3: ||e1-e2||^2 = ||e2-e3||^2 = 2, ||e1-e1||^2 = 0, and k = exp(-d2 / 200)
    x = torch.tensor([[1.0, 0, 0], [0, 1, 0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0, 0], [0, 0, 1]], dtype=torch.float64)
    k = math.exp(-2 / 200)
    k_xx = (2 * 1 + 2 * k) / 4  # diagonals included (V-statistic)
    k_yy = (2 * 1 + 2 * k) / 4
    k_xy = (1 + k + k + k) / 4  # (e1,e1)=1, (e1,e3)=k, (e2,e1)=k, (e2,e3)=k
    hand = 1000 * (k_xx + k_yy - 2 * k_xy)
    assert mmd.cmmd_value(x, y) == pytest.approx(hand, rel=1e-12)
    assert mmd.rbf_mmd(x, y).value == pytest.approx(hand, rel=1e-12)


def test_rbf_mmd_is_cmmd_on_unit_features_and_in_blocks():
    x, y = gaussian(700, 16, 0), gaussian(900, 16, 1, shift=0.2)  # 700 > BLOCK: several row blocks
    unit = lambda a: (a / a.norm(dim=1, keepdim=True)).numpy()  # noqa: E731  (CMMD's CLIP embeddings are unit-norm)
    ref = cmmd_reference(unit(x), unit(y))
    s = mmd.rbf_mmd(x, y, seed=0)
    assert s.value == pytest.approx(ref, rel=1e-9) and s.value > 0
    assert s.ci_low < s.value < s.ci_high and s.n == 700 and not s.higher_is_better
    assert f"jackknife({mmd.MMD_GROUPS} groups)" in s.method
    assert mmd.rbf_mmd(x, x).value == pytest.approx(0, abs=1e-9)
    # the jackknife's replicates are CMMD's estimator recomputed without each group (same groups as the pass draws)
    from ganbench.metrics.neighbours import jackknife_groups

    g = mmd.MMD_GROUPS
    assign = jackknife_groups(len(x), g, 0 + 2)[0]
    reps = np.array([cmmd_reference(unit(x[assign != k]), unit(y)) for k in range(g)])
    assert s.std == pytest.approx(math.sqrt((g - 1) / g * ((reps - reps.mean()) ** 2).sum()), rel=1e-7)


@pytest.mark.parametrize("dim,shift", [(16, 0.2), (64, 0.05), (2048, 0.02)])
def test_rbf_mmd_from_the_neighbour_pass_agrees_with_float64(dim, shift):
    """The evaluation reads CMMD's kernel sums off the neighbour pass's screened distances (float32 above 32
    dimensions); value and jackknife spread agree with the float64 computation (measured: 1e-7 relative at 64 and
    2048 dimensions, 3e-14 at 16, where the screen is float64)."""
    from ganbench.metrics.neighbours import NeighbourPass

    # off-centre float32 features, as extractors return them
    x, y = gaussian(900, dim, dim, shift=1.0 + shift).float(), gaussian(800, dim, dim + 1, shift=1.0).float()
    direct = mmd.rbf_mmd(x, y, seed=3)
    via = mmd.rbf_mmd_from_pass(NeighbourPass(x, y, seed=3))
    tol = 1e-12 if dim <= 32 else 1e-6
    assert via.value == pytest.approx(direct.value, rel=tol) and via.std == pytest.approx(direct.std, rel=tol * 10)
    assert "neighbour pass" in via.method


def test_kid_rbf_agrees_with_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    x, y = gaussian(120, 8, 2, scale=5), gaussian(150, 8, 3, shift=1, scale=5)
    ours = mmd.kid_rbf(x, y, seed=7, subsets=30)
    theirs = kid_features_to_metric(x, y, kid_subsets=30, kid_subset_size=60, kid_kernel="rbf", kid_kernel_rbf_sigma=10.0,
                                    rng_seed=7, verbose=False)
    assert ours.value == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-9)
    assert ours.std == pytest.approx(theirs["kernel_inception_distance_std"], rel=1e-9)
    assert ours.method.startswith("subsets(30x60)")


# -------------------------------------------------------------------------------------------- sliced Wasserstein


def test_swd_agrees_with_pot_on_the_same_projections():
    import ot

    x, y = gaussian(200, 12, 4), gaussian(333, 12, 5, shift=0.3)  # unequal sizes
    theta = swd.random_directions(12, 400, seed=1)
    ours = swd.sliced_wasserstein(x, y, theta)
    theirs = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), projections=theta.numpy(), p=2)
    assert ours == pytest.approx(theirs, rel=1e-9)


def dgm_eval_sw_approx(x: np.ndarray, y: np.ndarray) -> float:
    """layer6ai-labs/dgm-eval ``metrics/sw.py`` sw_approx, written out."""
    d = x.shape[1]
    mean_term = np.linalg.norm(x.mean(0) - y.mean(0)) ** 2 / d
    m2x = (np.linalg.norm(x - x.mean(0), axis=1) ** 2).mean() / d
    m2y = (np.linalg.norm(y - y.mean(0), axis=1) ** 2).mean() / d
    return (mean_term + (m2x ** 0.5 - m2y ** 0.5) ** 2) ** 0.5


def test_swd_is_zero_for_identical_sets_and_grows_with_a_shift():
    x = gaussian(300, 10, 6)
    ref = gaussian(400, 10, 7)
    same = swd.sliced_wasserstein_scores(x, x)
    assert same["swd"].value == pytest.approx(0, abs=1e-12) and same["swd_approx"].value == pytest.approx(0, abs=1e-12)
    values = []
    for shift in (0.0, 0.5, 1.0, 2.0):
        s = swd.sliced_wasserstein_scores(x + shift, ref, seed=0)
        assert s["swd_approx"].value == pytest.approx(dgm_eval_sw_approx((x + shift).numpy(), ref.numpy()), rel=1e-9)
        values.append(s["swd"].value)
    assert values == sorted(values) and values[-1] > 5 * values[0]
    # a shift of every coordinate by c moves SW_2 to about c (E (theta.1 c)^2 = c^2 for unit theta in d dims)
    assert values[-1] == pytest.approx(2.0, rel=0.15)
    assert s["swd"].method.endswith(f"{swd.PROJECTIONS} random projections") and s["swd"].n == 300
    # the jackknife interval holds its value (the bootstrap's sat above it), and its replicates equal SW_2 recomputed
    # from scratch without the group
    assert s["swd"].ci_low <= s["swd"].value <= s["swd"].ci_high and f"jackknife({swd.SWD_GROUPS} groups)" in s["swd"].method
    xs, n, g = x + 2.0, len(x), swd.SWD_GROUPS
    assign = np.empty(n, dtype=np.int64)
    assign[np.random.default_rng(0).permutation(n)] = np.arange(n) % g
    theta = swd.random_directions(10, swd.PROJECTIONS, seed=0)
    reps = np.array([swd.sliced_wasserstein(xs[torch.from_numpy(assign != k)], ref, theta) for k in range(g)])
    approx = np.array([dgm_eval_sw_approx(xs.numpy()[assign != k], ref.numpy()) for k in range(g)])
    for name, r in (("swd", reps), ("swd_approx", approx)):
        assert s[name].std == pytest.approx(math.sqrt((g - 1) / g * ((r - r.mean()) ** 2).sum()), rel=1e-9), name


# ---------------------------------------------------------------------------------------------------------- FWD


def pywt_fwd(gen: torch.Tensor, ref: torch.Tensor, level: int) -> float:
    """FWD as pytorchfwd defines it, from PyWavelets' packets and TTUR's Fréchet distance (scipy sqrtm)."""
    import pywt

    def packets(images: torch.Tensor) -> np.ndarray:
        x = images.double().numpy() / 255
        x = np.repeat(x, 3, axis=1) if x.shape[1] == 1 else x  # the reference reads images as RGB
        out = []
        for img in x:
            per_channel = []
            for ch in img:
                wp = pywt.WaveletPacket2D(ch, "haar", mode="symmetric", maxlevel=level)
                per_channel.append([node.data for node in wp.get_level(level, order="natural")])
            out.append(np.stack(per_channel, 1).reshape(4 ** level, -1))  # (P, C*h*w)
        return np.stack(out, 1)  # (P, N, D)

    pg, pr = packets(gen), packets(ref)
    fds = []
    for a, b in zip(pg, pr):
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        diff = a.mean(0) - b.mean(0)
        fds.append(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return float(np.mean(fds))


def test_fwd_agrees_with_pywavelets_packets_and_ttur_frechet():
    gen, ref = digits_like(60, seed=10, side=16), digits_like(80, seed=11, side=16)
    ours = fwd.fwd_value(gen, ref)
    theirs = pywt_fwd(gen, ref, level=fwd.packet_level(16, 16))
    # scipy's sqrtm (Schur form) against ganbench's symmetric eigendecomposition: ~1e-10 here, bounded at 1e-6
    assert ours == pytest.approx(theirs, rel=1e-6) and ours > 0
    assert fwd.packet_level(32, 32) == 4 and fwd.packet_level(28, 28) == 2 and fwd.packet_level(16, 16) == 4


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma == 0:
        return images
    radius = int(3 * sigma) + 1
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = images.double()
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (radius, radius, 0, 0), mode="reflect"),
                                   k.view(1, 1, 1, -1))
    x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 0, radius, radius), mode="reflect"),
                                   k.view(1, 1, -1, 1))
    return x.round().clamp(0, 255).to(torch.uint8)


def _noise(images: torch.Tensor, std: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (images.double() + std * torch.randn(images.shape, generator=g, dtype=torch.float64)).round() \
        .clamp(0, 255).to(torch.uint8)


def test_fwd_rises_monotonically_with_blur_and_with_noise():
    ref, gen = digits_like(200, seed=12), digits_like(200, seed=13)
    blur = [fwd.fwd_value(_blur(gen, s), ref) for s in (0, 0.7, 1.5, 3.0)]
    noise = [fwd.fwd_value(_noise(gen, s), ref) for s in (0, 10, 30, 80)]
    assert blur == sorted(blur) and blur[-1] > 3 * blur[0], blur
    assert noise == sorted(noise) and noise[-1] > 3 * noise[0], noise
    s = fwd.frechet_wavelet_distance(_noise(gen, 30), ref, seed=0, bootstrap=10)
    assert s.value == pytest.approx(noise[2], rel=1e-12) and s.std > 0 and "level 4 (256 packets)" in s.method


# ---------------------------------------------------------------------------------------------- intra-class FID


def class_features(labels: torch.Tensor, seed: int, d: int = 6) -> torch.Tensor:
    """Features of images of each class: a Gaussian per class, centres far apart."""
    centres = gaussian(10, d, seed=100) * 6
    return centres[labels] + gaussian(len(labels), d, seed)


def test_intra_fid_of_a_class_swapped_generator_is_large_while_fid_stays_small():
    ref_labels = torch.arange(2000) % 10
    ref = class_features(ref_labels, seed=1)
    drawn = torch.arange(1000) % 10  # the class each sample was asked for
    right = class_features(drawn, seed=2)  # a generator that draws the asked class
    swapped = class_features((drawn + 3) % 10, seed=2)  # good images of another class (labels permuted)
    ref_stats = GaussianStats.from_features(ref)
    fid_right = frechet_distance(GaussianStats.from_features(right), ref_stats)
    fid_swapped = frechet_distance(GaussianStats.from_features(swapped), ref_stats)
    ifid_right = intra_fid.intra_class_fid(right, drawn, ref, ref_labels, seed=0, bootstrap=5)
    ifid_swapped = intra_fid.intra_class_fid(swapped, drawn, ref, ref_labels, seed=0, bootstrap=5)
    assert fid_right < 0.5 and fid_swapped < 0.5  # the same mixture of classes: FID cannot tell
    assert ifid_right.value < 1 and ifid_swapped.value > 50 * max(ifid_right.value, fid_right)
    # the definition, re-computed: the mean over classes of per-class Fréchet distances
    per_class = [frechet_distance(GaussianStats.from_features(swapped[drawn == c]),
                                  GaussianStats.from_features(ref[ref_labels == c])) for c in range(10)]
    assert ifid_swapped.value == pytest.approx(float(np.mean(per_class)), rel=1e-9)
    assert ifid_swapped.ci_low <= ifid_swapped.ci_high and "10 classes" in ifid_swapped.method


def test_intra_fid_leaves_out_a_class_without_two_samples_and_says_so():
    gen, ref = gaussian(8, 2, 0), gaussian(6, 2, 1)
    labels, ref_labels = torch.tensor([0, 0, 3, 3, 1, 1, 0, 1]), torch.tensor([0, 0, 1, 1, 0, 1])
    s = intra_fid.intra_class_fid(gen, labels, ref, ref_labels, bootstrap=2)
    per_class = [frechet_distance(GaussianStats.from_features(gen[labels == c]),
                                  GaussianStats.from_features(ref[ref_labels == c])) for c in (0, 1)]
    assert s.value == pytest.approx(float(np.mean(per_class)), rel=1e-12) and "left out: [3]" in s.method
    with pytest.raises(ValueError, match="no class"):
        intra_fid.intra_class_fid(gen, torch.full((8,), 3), ref, ref_labels)


# ------------------------------------------------------------------------------------------------------- sFID


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory):
    from ganbench.features.inception import WEIGHTS_FILE, write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("inception") / WEIGHTS_FILE, seed=0, calibration_images=2)


@pytest.fixture(scope="module")
def spatial_features(inception_weights):
    """(ours, hooked, plain): features of 2 generated-like and 2 reference-like images from ganbench's extractor
    (exact path), the spatial layer hooked out of torch-fidelity's own Inception, and ganbench's without it."""
    import dataclasses

    import torch_fidelity

    from ganbench.features import extract, get_extractor
    from ganbench.features.inception import REFERENCE_NAME

    g = torch.Generator().manual_seed(0)
    gen_images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=g)
    ref_images = (torch.randint(0, 256, (2, 3, 32, 32), generator=g) // 2).to(torch.uint8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANBENCH_INCEPTION_WEIGHTS", str(inception_weights))
        mp.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
        spec = dataclasses.replace(get_extractor("inception_v3_fid"), fast=False, fast_batch_size=None)
        ours = {"gen": extract(spec, gen_images, progress=False), "ref": extract(spec, ref_images, progress=False)}
        plain = extract(dataclasses.replace(spec, spatial=False), gen_images, progress=False)
        theirs = torch_fidelity.utils.create_feature_extractor(REFERENCE_NAME, ["2048"], cuda=False,
                                                               feature_extractor_weights_path=str(inception_weights),
                                                               verbose=False)
    # the TF graph's mixed_6/conv is torch-fidelity's Mixed_6d.branch1x1 (its weight converter maps one to the other)
    taken = []
    theirs.Mixed_6d.branch1x1.register_forward_hook(lambda m, i, o: taken.append(o[:, :7].flatten(1)))
    with torch.no_grad():
        pool = theirs(gen_images)[0]
        theirs(ref_images)
    return ours, {"gen": taken[0], "ref": taken[1], "pool": pool}, plain


def test_inception_spatial_layer_is_mixed_6_conv_and_leaves_the_other_layers_alone(spatial_features):
    from ganbench.features.inception import SPATIAL_LAYER

    ours, hooked, plain = spatial_features
    gen = ours["gen"]
    assert set(gen) == {"2048", "logits_unbiased", SPATIAL_LAYER} and gen[SPATIAL_LAYER].shape == (2, 7 * 17 * 17)
    for which in ("gen", "ref"):
        theirs = hooked[which]
        assert torch.allclose(ours[which][SPATIAL_LAYER], theirs, rtol=0, atol=1e-6 * float(theirs.abs().max()))
    assert torch.equal(gen["2048"], hooked["pool"])  # the other layers are torch-fidelity's forward, unchanged
    # without the spatial layer (spatial=False) the other layers are bit-identical and sFID does not apply
    assert set(plain) == {"2048", "logits_unbiased"} and all(torch.equal(plain[k], gen[k]) for k in plain)
    with_spatial = MetricInputs(gen, ours["ref"], "2048", "logits_unbiased", "test", 0)
    assert "spatial_features" in with_spatial.available() and "sfid" in metrics_for(("sample",), with_spatial)
    assert "sfid" not in metrics_for(("sample",), MetricInputs(plain, plain, "2048", "logits_unbiased", "test", 0))


@pytest.mark.slow
def test_sfid_is_a_frechet_distance_on_the_spatial_layer(spatial_features, monkeypatch):
    # slow: every Fréchet distance at 2023-d costs seconds on 2 cores
    from ganbench.metrics import extended

    ours, hooked, _ = spatial_features
    monkeypatch.setattr(extended, "SFID_BOOTSTRAP", 2)
    expected = frechet_distance(GaussianStats.from_features(hooked["gen"]), GaussianStats.from_features(hooked["ref"]))
    s = compute(["sfid"], MetricInputs(ours["gen"], ours["ref"], "2048", "logits_unbiased", "test", 0))["sfid"]
    # features within 1e-6 of each other (same float32 operations, one hooked, one returned)
    assert s.value == pytest.approx(expected, rel=1e-6) and s.value > 0 and "bootstrap(2)" in s.method


# ------------------------------------------------------------------------------------------ registry and defaults


def test_every_new_metric_is_registered_with_its_paper_and_check():
    for name in NEW:
        spec = get_metric(name)
        assert spec.paper and spec.checked_against and spec.family == "sample", name
    assert get_metric("ppl").needs == {"model"}


def test_cheap_metrics_are_computed_by_default_and_ppl_only_on_request():
    gen, ref = gaussian(80, 8, 0), gaussian(100, 8, 1)
    images = digits_like(80, seed=1)
    inputs = MetricInputs({"pool": gen.float()}, {"pool": ref.float()}, "pool", None, "test", 0, images=images,
                          ref_images=digits_like(100, seed=2), labels=torch.arange(80) % 4,
                          ref_labels=torch.arange(100) % 4)
    defaults = metrics_for(("sample",), inputs)
    assert {"vendi", "vendi_pixels", "rbf_mmd", "kid_rbf", "swd", "fwd", "intra_fid"} <= set(defaults)
    assert "ppl" not in defaults and "sfid" not in defaults  # no model; no Inception spatial layer
    scores = compute(["vendi", "vendi_pixels", "rbf_mmd", "kid_rbf", "swd", "fwd", "intra_fid"], inputs)
    for name, s in scores.items():
        assert math.isfinite(s.value) and s.std is not None and s.ci_low is not None and s.n == 80 and s.method, name
    with pytest.raises(ValueError, match="model"):
        compute(["ppl"], inputs)


def test_ls_metrics_shows_needs_direction_family_paper_and_check():
    from click.testing import CliRunner

    from ganbench.cli import main

    out = CliRunner().invoke(main, ["ls", "metrics", "--pattern", "rbf_mmd"])
    assert out.exit_code == 0, out.output
    assert "rbf_mmd ↓" in out.output and "family sample" in out.output
    assert "needs:   features" in out.output and "Jayasumana et al. 2024" in out.output
    assert "checked: google-research/cmmd" in out.output
    out = CliRunner().invoke(main, ["ls", "metrics", "--pattern", "vendi"])
    assert "vendi ↑" in out.output and "vendi-score" in out.output


# ------------------------------------------------------------------------------------------------------ tasks


class _SwappedConditional:
    """A class-conditional sampler whose images are real digits of class (label + 3) % 10: good images, wrong class."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, n_classes: int = 10):
        self.images, self.labels = images, labels
        self.config = type("Config", (), {"n_classes": n_classes})()
        self.name = "swapped"

    def sample(self, n: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = torch.arange(n) % 10 if labels is None else labels
        pools = {c: self.images[self.labels == c] for c in range(10)}
        return torch.stack([pools[int(c + 3) % 10][i // 10 % len(pools[int(c + 3) % 10])] for i, c in enumerate(labels)])


def _split(images: torch.Tensor, labels: torch.Tensor, split: str):
    from ganbench.data.core import Split

    return Split("digits_test", split, images, labels, "none", "test")


def test_class_conditional_task_hands_labels_and_reference_images_to_the_metrics():
    from ganbench.tasks import REAL, TaskData, get_task

    ref_labels = torch.arange(200) % 10
    images = digits_like(200, seed=20)
    data = TaskData("digits_test", _split(images, ref_labels, "train"), "train",
                    _split(images[:100], ref_labels[:100], "test"), _split(images[:100], ref_labels[:100], "test"), 32)
    task = get_task("class_conditional")
    model = _SwappedConditional(images, ref_labels)
    samples = task.draw(model, data, 50, seed=0)
    assert torch.equal(samples.extras["labels"], torch.arange(50) % 10)
    extras = task.metric_extras(samples, data, None)
    assert torch.equal(extras["labels"], torch.arange(50) % 10) and torch.equal(extras["ref_labels"], ref_labels)
    assert extras["ref_images"] is images
    real = task.metric_extras(task.draw_reference(REAL, data, 50, 0), data, REAL)
    assert torch.equal(real["labels"], ref_labels[:50])  # the real row's classes are the held-out split's
    # the swapped sampler's intra-class FID against the reference on pixel "features" is large, the right one small
    feats = lambda x: torch.nn.functional.avg_pool2d(x.double() / 255, 8).flatten(1)  # noqa: E731  (16-d)
    swapped = intra_fid.intra_class_fid(feats(samples.outputs), extras["labels"], feats(images), ref_labels, bootstrap=2)
    right = intra_fid.intra_class_fid(feats(images[:50]), ref_labels[:50], feats(images), ref_labels, bootstrap=2)
    assert swapped.value > right.value
    # a model without labels keeps the plain draw, and no labels reach the metrics
    plain = type("Plain", (), {"sample": lambda self, n, seed: images[:n], "name": "plain"})()
    assert "labels" not in task.draw(plain, data, 20, 0).extras


def test_unconditional_task_hands_reference_images_but_not_for_points():
    from ganbench.tasks import TaskData, get_task

    images = digits_like(30, seed=21)
    task = get_task("unconditional")
    data = TaskData("digits_test", _split(images, None, "train"), "train", None, None, 32)
    assert task.metric_extras(None, data, None)["ref_images"] is images
    points = TaskData("ring8", _split(torch.randn(10, 2), None, "train"), "train", None, None, None)
    assert task.metric_extras(None, points, None) == {}


@pytest.mark.slow
@pytest.mark.parametrize("entry_name", ["dcgan", "cdcgan"])
def test_evaluate_computes_the_cheap_new_metrics_by_default(entry_name):
    # through the one evaluation path: the defaults of the task, on mnist_cnn features
    import ganbench.zoo  # noqa: F401
    from ganbench.evaluate import Protocol, evaluate
    from ganbench.registry import MODELS

    entry = MODELS.get(entry_name)
    cfg = entry.make_config("tiny")
    torch.manual_seed(0)
    model = entry.wrap(cfg, entry.build_generator(cfg))
    result = evaluate(Protocol("mnist", "mnist_cnn", 100, seed=0, resolution=32), model=model, progress=False)
    expected = {"vendi", "vendi_pixels", "rbf_mmd", "kid_rbf", "swd", "swd_approx", "fwd"}
    expected |= {"intra_fid"} if entry_name == "cdcgan" else set()
    assert expected <= set(result.scores) and "ppl" not in result.scores and "sfid" not in result.scores
    for name in expected:
        s = result.scores[name]
        assert math.isfinite(s.value) and s.n == 100 and s.method, name
