"""Memorisation that catches near-copies (issue 16, item 5): planted near-copies of real training digits are flagged,
held-out digits and a real generator's digits are not; C_T and AuthPct equal their reference code re-implemented
here, and closed-form cases."""

import io
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganbench.data import load
from ganbench.features import extract, get_extractor
from ganbench.metrics import MetricInputs, compute
from ganbench.metrics.copies import c_t, data_copying, mann_whitney_z
from ganbench.metrics.neighbours import NeighbourPass

PLANTED = 400  # near-copies per perturbation


def _noise(x, sigma, g):
    return (x.float() + torch.randn(x.shape, generator=g) * sigma).round().clamp(0, 255).to(torch.uint8)


def _shift(x, dx, dy):
    out = torch.zeros_like(x)  # a translation with black borders (not a roll)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[..., max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def _brightness(x, factor):
    return (x.float() * factor).round().clamp(0, 255).to(torch.uint8)


def _jpeg(x, quality):
    out = []
    for im in x:
        buf = io.BytesIO()
        Image.fromarray(im[0].numpy()).save(buf, "JPEG", quality=quality)
        out.append(torch.from_numpy(np.array(Image.open(buf)))[None])
    return torch.stack(out)


def _blur(x, sigma):
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    y = F.conv2d(F.pad(x.float(), (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    return y.round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def digits():
    spec = get_extractor("mnist_cnn")
    train, test = load("mnist", "train", 32), load("mnist", "test", 32)
    g = torch.Generator().manual_seed(0)
    source = train.data[torch.randperm(len(train.data), generator=g)[:PLANTED]]
    planted = {"copy": source, "noise_8": _noise(source, 8, g), "noise_16": _noise(source, 16, g),
               "shift_1px": _shift(source, 1, 0), "shift_2px": _shift(source, 2, -1), "shift_2px_diag": _shift(source, -2, 2),
               "brightness_0.8": _brightness(source, 0.8), "brightness_1.2": _brightness(source, 1.2),
               "jpeg_50": _jpeg(source, 50), "jpeg_75": _jpeg(source, 75), "blur_0.6": _blur(source, 0.6),
               "blur_1.0": _blur(source, 1.0)}
    return {"spec": spec, "train": train.data, "heldout": test.data,
            "f_train": extract(spec, train.data, progress=False)["pool"],
            "f_heldout": extract(spec, test.data, progress=False)["pool"], "planted": planted}


def _inputs(d, images, heldout_images=None):
    feats = extract(d["spec"], images, progress=False)["pool"]
    return MetricInputs({"pool": feats}, {"pool": d["f_train"]}, "pool", None, "mnist", 0,
                        heldout={"pool": d["f_heldout"]}, images=images, ref_images=d["train"],
                        heldout_images=heldout_images)


def _linear_generator():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "my_gan"))
    try:
        from my_gan import LinearGenerator
    finally:
        sys.path.pop(0)
    return LinearGenerator()


def test_planted_near_copies_are_flagged_and_real_digits_are_not(digits):
    """Every planted set, held-out digits and a real generator's digits in one evaluation; the per-sample flags are
    read per set. The held-out split's second half calibrates the pixel threshold, as an evaluation's held-out
    split does; its first half is scored as real data."""
    held = digits["heldout"]
    sets = {**digits["planted"], "heldout": held[:500], "linear_gan": _linear_generator().sample(PLANTED, 1)}
    inputs = _inputs(digits, torch.cat(list(sets.values())), heldout_images=held[500:])
    scores = compute(["near_copies", "memorization"], inputs)
    flags = inputs._cache["near_copies_per_sample"]["flagged"]
    nb = inputs._cache["neighbours"]
    # the nearest-distance test's decision per sample (memorization.copy_fraction's threshold)
    old_flags = nb.gen_nearest_ref() < torch.quantile(nb.heldout_nearest_ref(), 0.01)
    start, rate, old = 0, {}, {}
    for name, images in sets.items():
        part = slice(start, start + len(images))
        rate[name], old[name] = float(flags[part].double().mean()), float(old_flags[part].double().mean())
        start += len(images)
    for name in digits["planted"]:
        assert rate[name] >= 0.9, (name, rate)
    assert rate["heldout"] <= 0.05 and rate["linear_gan"] <= 0.05, rate
    # the nearest-distance test alone misses most of them: the reason for the new detector
    assert old["copy"] > 0.95 and min(old.values()) < 0.05 and old["shift_2px"] < 0.05
    total = sum(rate[k] * len(v) for k, v in sets.items()) / len(flags)
    assert scores["near_copy_fraction"].value == pytest.approx(total)
    assert scores["near_copy_fraction"].ci_low <= total <= scores["near_copy_fraction"].ci_high


def test_c_t_and_authpct_flag_copies_and_pass_real_digits(digits):
    copies = compute(["data_copying", "authenticity"], _inputs(digits, digits["planted"]["jpeg_75"]))
    real = compute(["data_copying", "authenticity"], _inputs(digits, digits["heldout"][:500]))
    assert copies["c_t"].value < -3 < real["c_t"].value
    assert copies["authpct"].value < 50 < real["authpct"].value


def _meehan_zu(pn, qm, t):
    """Zu of Meehan et al.'s data_copying_tests.py (sklearn nearest neighbour, scipy's Mann-Whitney U)."""
    from scipy.stats import mannwhitneyu
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(t)
    lq, _ = nn.kneighbors(qm, n_neighbors=1)
    lp, _ = nn.kneighbors(pn, n_neighbors=1)
    u, _ = mannwhitneyu(lq, lp, alternative="less")
    m, n = len(qm), len(pn)
    return (float(np.ravel(u)[0]) - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12)


def test_c_t_equals_the_authors_code_on_the_same_cells(digits):
    from sklearn.cluster import KMeans

    gen = extract(digits["spec"], digits["planted"]["blur_1.0"][:300], progress=False)["pool"]
    gen = torch.cat([gen, extract(digits["spec"], digits["heldout"][500:800], progress=False)["pool"]])
    train, test = digits["f_train"], digits["f_heldout"][:500]
    nb = NeighbourPass(gen, train, test, kernel=False)
    ours = data_copying(nb, cells=3, seed=0).value
    km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(train.double().numpy())
    tc, gc, pc = km.labels_, km.predict(gen.double().numpy()), km.predict(test.double().numpy())
    t, q, p = train.double().numpy(), gen.double().numpy(), test.double().numpy()
    tau = 20 / len(q)
    weights, zs = [], []
    for c in range(3):  # C_T of the reference code: test-share-weighted Zu over cells with more than tau of Q
        if (gc == c).mean() > tau:
            weights.append((pc == c).mean())
            zs.append(_meehan_zu(p[pc == c], q[gc == c], t[tc == c]))
    theirs = float(np.dot(weights, zs) / np.sum(weights))
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_c_t_closed_form():
    # one cell: generated distances 1, 2, 3 all below held-out 4, 5: U = 0, z = (0 - (6/2 - 0.5)) / sqrt(6 * 6 / 12)
    expected = -2.5 / math.sqrt(3)
    assert mann_whitney_z(np.array([1.0, 2, 3]), np.array([4.0, 5])) == pytest.approx(expected)
    # two cells weighted by their held-out shares; a cell with too few generated samples is left out
    s = c_t(np.array([1.0, 2, 3, 9, 9.5]), np.array([0, 0, 0, 1, 2]), np.array([4.0, 5, 1, 2, 3, 8]),
            np.array([0, 0, 1, 1, 1, 2]), cells=3, tau=0.25)
    assert s.value == pytest.approx(expected)  # cells 1 and 2 hold 1/5 of the generated samples each (<= tau)
    both = c_t(np.array([1.0, 2, 3, 0.5, 0.7]), np.array([0, 0, 0, 1, 1]), np.array([4.0, 5, 1, 2, 3, 8]),
               np.array([0, 0, 1, 1, 1, 2]), cells=3, tau=0.1)
    z1 = mann_whitney_z(np.array([0.5, 0.7]), np.array([1.0, 2, 3]))
    assert both.value == pytest.approx((2 / 6 * expected + 3 / 6 * z1) / (5 / 6))


def test_authpct_equals_dgm_eval_and_a_closed_form_case(digits):
    gen = extract(digits["spec"], torch.cat([digits["planted"]["noise_8"][:200], digits["heldout"][:300]]),
                  progress=False)["pool"]
    train = digits["f_train"]
    nb = NeighbourPass(gen, train, kernel=False)
    ours = compute(["authenticity"], MetricInputs({"f": gen}, {"f": train}, "f", None, None, 0))["authpct"]
    # dgm-eval's compute_authpct, float32 torch.cdist
    real = torch.cdist(train, train)
    real.fill_diagonal_(float("inf"))
    gen_d = torch.cdist(train, gen)
    real_min, gen_min = real.min(0), gen_d.min(0)
    theirs = float(100 * (real_min.values[gen_min.indices] < gen_min.values).float().mean())
    assert ours.value == pytest.approx(theirs, abs=1e-9)
    assert nb.gen_ref_knn.index[:, 0].tolist() == gen_min.indices.tolist()
    # training points 0..9 on a line (each 1 from its nearest); generated at 0.25, 4.5 and 9.9 are nearer their
    # nearest training point than 1 (not authentic), at 12 and -3 farther (authentic): 40%
    line = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    pts = torch.tensor([[0.25], [4.5], [12.0], [-3.0], [9.9]])
    s = compute(["authenticity"], MetricInputs({"f": pts}, {"f": line}, "f", None, None, 0))["authpct"]
    assert s.value == pytest.approx(40.0)


@pytest.mark.slow
def test_a_trained_dcgan_is_not_flagged(digits, tmp_path):
    """A DCGAN trained briefly on the training digits draws new digits: near-copy fraction <= 0.05."""
    from ganbench.train.loop import TrainConfig, train
    from ganbench.zoo import get_model

    out = train(get_model("dcgan"), load("mnist", "train", 32), tmp_path, TrainConfig(steps=600, batch_size=64),
                {"ngf": 32, "ndf": 32}, progress=False)
    samples = out.generator.sample(PLANTED, seed=3)
    scores = compute(["near_copies"], _inputs(digits, samples, heldout_images=digits["heldout"][500:]))
    assert scores["near_copy_fraction"].value <= 0.05
