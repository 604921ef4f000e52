"""Intervals (issue 16, items 1 and 7): FID's round-off floor, the jackknife's algebra against direct recomputation,
KID's variance estimator against its definition, and measured coverage on known distributions.

The coverage tests draw sample sets from distributions whose targets are known (``ganbench.metrics.calibration``:
closed forms, whole-pool values, or the expectation at N over the other draws) and count how often each reported
95% interval contains its target. The default run has a small fast version; the acceptance test (>= 200 draws on
Gaussians and on a pool of real digit features, every interval between 90% and 99%) is marked slow.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from ganbench.metrics import fidelity
from ganbench.metrics.calibration import (augmented_images, coverage, gaussian_world, poly_kernel_expectation,
                                          pool_world)
from ganbench.metrics.frechet import (GaussianStats, GroupedFeatures, fid_infinity, fid_with_jackknife,
                                      frechet_distance, jackknife_std)


def identical_fid(n: int, d: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) @ np.diag(np.linspace(0.1, 2.0, d))
    return frechet_distance(GaussianStats.from_features(x), GaussianStats.from_features(x, with_root=True))


@pytest.mark.parametrize("d", [1, 2, 16, 64, 256])
def test_identical_inputs_give_zero_fid_at_any_sample_count(d):
    """Fewer samples than dimensions (singular covariances), N = D - 1, D and D + 1 (the worst conditioned), many."""
    for n in sorted({2, 3, max(d // 2, 2), max(d - 1, 2), d + 1, d + 2, 2 * d + 1, 5 * d + 3}):
        value = identical_fid(n, d, seed=n)
        assert abs(value) < 1e-9, (n, d, value)


@pytest.mark.slow
@pytest.mark.parametrize("n", [500, 1000, 2000, 2047, 2048, 2049, 2100, 4096])
def test_identical_inputs_give_zero_fid_at_2048_dimensions(n):
    value = identical_fid(n, 2048, seed=n)
    assert abs(value) < 1e-9, (n, value)


def test_fid_is_not_negative_from_round_off_with_fewer_samples_than_dimensions():
    """Two different sample sets drawn from one distribution, N << D: FID is large and positive; the previous code's
    square roots of round-off eigenvalues shifted it, which the dropped eigenvalues no longer do (same value as
    the singular-value computation, to 1e-9 relative)."""
    from ganbench.metrics.frechet import trace_term, trace_term_exact

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((100, 300)), rng.standard_normal((100, 300))
    ga, gb = GaussianStats.from_features(a), GaussianStats.from_features(b, with_root=True)
    tr, _ = trace_term(ga.sigma, gb)
    assert tr == pytest.approx(trace_term_exact(ga.sigma, gb), rel=1e-9)


@pytest.mark.parametrize("n,d", [(120, 8), (60, 40)])  # the D x D side, and the N x N side (unions smaller than D)
def test_group_unions_equal_fid_recomputed_from_their_samples(n, d):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * 1.5 + 0.3
    ref = GaussianStats.from_features(torch.randn(3 * d, d, generator=g, dtype=torch.float64), with_root=True)
    grouped = GroupedFeatures(x, ref, groups=6, seed=2)
    for left_out in [(), (0,), (3,), (1, 4), (0, 2, 5)]:
        keep = torch.cat([grouped.members[i] for i in range(6) if i not in left_out])
        direct = frechet_distance(GaussianStats.from_features(x[keep]), ref)
        assert grouped.fid_without(left_out) == pytest.approx(direct, rel=1e-9, abs=1e-9), left_out


def test_jackknife_std_is_the_textbook_formula():
    reps = np.array([1.0, 2.0, 4.0, 7.0])
    assert jackknife_std(reps) == pytest.approx(math.sqrt(3 / 4 * ((reps - 3.5) ** 2).sum()))
    two = np.stack([reps, reps * 2])  # two partitions: the mean of their variances
    assert jackknife_std(two) == pytest.approx(math.sqrt((3 / 4 * ((reps - 3.5) ** 2).sum()) * (1 + 4) / 2))


def test_kid_zetas_are_the_u_statistic_definitions():
    """The O(m^2) estimators of zeta_1 = Cov(H(a,b), H(a,c)) and zeta_2 = Var(H(a,b)) equal the averages over every
    distinct index tuple (the unbiased U-statistics), computed by enumeration."""
    rng = np.random.default_rng(0)
    m = 7
    h = rng.standard_normal((m, m))
    h = h + h.T
    z1, z2 = fidelity._zetas(torch.from_numpy(h))
    pairs = [h[a, b] for a, b in itertools.permutations(range(m), 2)]
    triples = [h[a, b] * h[a, c] for a, b, c in itertools.permutations(range(m), 3)]
    quads = [h[a, b] * h[c, e] for a, b, c, e in itertools.permutations(range(m), 4)]
    assert z1 == pytest.approx(np.mean(triples) - np.mean(quads), rel=1e-10)
    assert z2 == pytest.approx(np.mean(np.square(pairs)) - np.mean(quads), rel=1e-10)


def test_polynomial_kernel_expectation_matches_monte_carlo():
    rng = np.random.default_rng(0)
    d = 5
    a, b = rng.standard_normal(d), rng.standard_normal(d)
    la, lb = rng.standard_normal((d, d)) * 0.5, rng.standard_normal((d, d)) * 0.5
    x = rng.standard_normal((1_000_000, d)) @ la.T + a
    y = rng.standard_normal((1_000_000, d)) @ lb.T + b
    mc = ((x * y).sum(1) / d + 1) ** 3
    closed = poly_kernel_expectation(a, la @ la.T, b, lb @ lb.T, d)
    assert closed == pytest.approx(mc.mean(), abs=4 * mc.std() / 1000)


def test_fid_infinity_removes_the_bias_and_declines_an_interval_it_cannot_trust():
    d = 64
    ref = GaussianStats(np.zeros(d), np.eye(d), 10 ** 9)
    g = torch.Generator().manual_seed(0)
    shift = 0.2
    true = d * shift ** 2  # N(shift, I) against N(0, I)
    x = torch.randn(1000, d, generator=g, dtype=torch.float64) + shift
    fid, grouped = fid_with_jackknife(x, ref)
    inf = fid_infinity(x, ref, grouped=grouped)
    assert fid.value - true > 5 * fid.std  # the finite-N bias (about d^2 / (4 N) + d / N here)
    assert abs(inf.value - true) < 3 * inf.std and inf.ci_low < true < inf.ci_high
    # 60 samples in 200 dimensions: the 1/N line is far from the curve; no interval is claimed
    few = torch.randn(60, 200, generator=g, dtype=torch.float64)
    bad = fid_infinity(few, GaussianStats(np.zeros(200), np.eye(200), 10 ** 9))
    assert bad.std is None and bad.ci_low is None and "not trusted" in bad.method


def _check(rows, low, high, names):
    seen = {r.score: r for r in rows}
    assert set(names) <= set(seen), set(names) - set(seen)
    for name in names:
        r = seen[name]
        assert r.reported >= 0.9 * r.draws, (name, r.reported, r.draws)
        assert low <= r.coverage <= high, (name, r.coverage, r.method)


SCORES = ("fid", "fid_inf", "kid", "precision", "recall", "density", "coverage", "realism", "rbf_mmd", "swd", "swd_approx",
          "vendi")


def test_intervals_cover_their_targets_fast():
    """60 draws of 150 from a Gaussian against 300 reference points: each interval covers in [0.85, 1] (the legacy
    bootstrap FID interval covered 0-20% on such sets, the subset-std KID interval 30-50%)."""
    world = gaussian_world(8, 300, 0.15, 1.1, seed=0, big=30_000)
    rows, _ = coverage(world, 150, 60, seed=1)
    _check(rows, 0.85, 1.0, SCORES)


@pytest.mark.slow
def test_intervals_cover_their_targets_on_gaussians():
    world = gaussian_world(64, 1000, 0.1, 1.1, seed=0)
    rows, _ = coverage(world, 500, 200, seed=1)
    _check(rows, 0.90, 0.99, SCORES)


@pytest.mark.slow
def test_intervals_cover_their_targets_on_real_digit_features():
    """Generated sets drawn without replacement from 20 000 mnist_cnn features of augmented held-out digits, against
    the training digits' features (a larger reference: density and coverage average 10 reference subsets)."""
    from ganbench.data import load
    from ganbench.features import extract, get_extractor

    spec = get_extractor("mnist_cnn")
    pool = extract(spec, augmented_images(load("mnist", "test", 32).data, 20, seed=0), progress=False)["pool"]
    ref = extract(spec, load("mnist", "train", 32).data, progress=False)["pool"]
    rows, _ = coverage(pool_world(pool, ref, "digits"), 500, 200, seed=2)
    _check(rows, 0.90, 0.99, SCORES)
