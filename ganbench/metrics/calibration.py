"""Interval coverage on known distributions (ganbench issue 16, item 1): does a reported 95% interval contain the
value it is an interval for, 95% of the time?

A ``World`` is a fixed reference feature set (what an evaluation compares with; its Gaussian is the cached
reference statistics) and a distribution of generated features that can be drawn from again and again: a Gaussian
(``gaussian_world``) or a pool of real features drawn without replacement (``pool_world``). Each score's interval is
an interval for one target, computed independently of the draws being scored:

- in closed form or over the whole distribution: FID-infinity (the Fréchet distance of the generated distribution's
  own Gaussian), KID (the cubic kernel's expectations: Gaussian moments up to order three, or the pool's
  U-statistic), precision (the fraction of the distribution inside the reference manifold; 100 000 draws of a
  Gaussian or the whole pool), the realism quantiles (same);
- at the sample count scored: FID, recall, coverage, density, the RBF MMD (a V-statistic), the sliced
  Wasserstein distances and the Vendi score depend on N by definition (FID's bias, the
  generated balls' radii, the reference subsets of N that density and coverage compare with), so their target
  is their expectation at N, estimated for each draw by the mean over all the *other* draws (leave-one-out,
  independent of the draw it is compared with).

``coverage`` draws sample sets, scores each through the library's functions (the same ones the registered metrics
call), and counts. ``legacy_scores`` re-computes the intervals ganbench reported before issue 16 (percentile
bootstrap of FID, linear-fit FID-infinity, subset-std KID, binomial recall, subset-std density/coverage) for the
comparison in ``benchmarks/results/interval_coverage.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ganbench.metrics import fidelity, mmd, prdc, swd, vendi
from ganbench.metrics.fidelity import wilson_interval
from ganbench.metrics.frechet import GaussianStats, fid_infinity, fid_with_jackknife, frechet_distance
from ganbench.metrics.neighbours import NeighbourPass, exact_row_distances
from ganbench.metrics.threads import metric_threads
from ganbench.results.schema import Score

# scores whose target is their expectation at N
EXPECTED_AT_N = ("fid", "recall", "coverage", "density", "rbf_mmd", "swd", "swd_approx", "vendi")


@dataclass
class World:
    """A fixed reference and a distribution of generated features with the targets of every score."""

    name: str
    ref: torch.Tensor  # (M, D) float32 reference features
    draw: Callable[[int, np.random.Generator], torch.Tensor]  # n generated features
    truth: dict[str, float]  # closed-form or whole-distribution targets
    ref_stats: GaussianStats = field(init=False)

    def __post_init__(self) -> None:
        self.ref_stats = GaussianStats.from_features(self.ref, with_root=True)


def poly_kernel_expectation(a: np.ndarray, A: np.ndarray, b: np.ndarray, B: np.ndarray, d: int) -> float:
    """E[(x.y / d + 1)^3] for independent x ~ N(a, A), y ~ N(b, B) (B = 0: y fixed at b).

    With u = x.y: E u = a.b, E u^2 = tr((B + b b^T)(A + a a^T)), and E u^3 from the third moment of the Gaussian
    x.y given x (m^3 + 3 m v) and of the Gaussian x.b: (a.b)^3 + 3 (a.b) b^T A b + 3 ((a.b)(a^T B a + tr(BA)) +
    2 b^T A B a)."""
    ab = float(a @ b)
    eu2 = float(np.trace((B + np.outer(b, b)) @ (A + np.outer(a, a))))
    eu3 = ab ** 3 + 3 * ab * float(b @ A @ b) + 3 * (ab * (float(a @ B @ a) + float(np.trace(B @ A)))
                                                    + 2 * float(b @ A @ B @ a))
    return eu3 / d ** 3 + 3 * eu2 / d ** 2 + 3 * ab / d + 1


def _reference_u_stat(ref: torch.Tensor) -> float:
    y = ref.double()
    m = len(y)
    total = 0.0
    for i in range(0, m, 4096):
        k = fidelity._poly_kernel(y[i:i + 4096], y)
        total += float(k.sum()) - float(k.diagonal(offset=i).sum())
    return total / (m * (m - 1))


def _membership(points: torch.Tensor, ref: torch.Tensor, k_prc: int = 3, k_dc: int = 5,
                chunk: int = 2048) -> dict[str, np.ndarray]:
    """Per point, against the fixed reference, in float64: inside the k_prc manifold (<=), dc ball count (<),
    realism (pruned reference)."""
    dr = exact_row_distances(ref, ref)
    dr.fill_diagonal_(float("inf"))
    r_prc, r_dc = dr.kthvalue(k_prc, 1).values, dr.kthvalue(k_dc, 1).values
    keep = r_prc <= r_prc.median()
    inside, count, real = [], [], []
    for i in range(0, len(points), chunk):
        d = exact_row_distances(points[i:i + chunk], ref)
        inside.append((d <= r_prc).any(1))
        count.append((d < r_dc).sum(1).double() / k_dc)
        real.append((r_prc[keep] / d[:, keep].clamp_min(1e-300)).max(1).values)
    return {"inside": torch.cat(inside).numpy(), "count": torch.cat(count).numpy(), "realism": torch.cat(real).numpy()}


def _membership_truth(m: dict[str, np.ndarray]) -> dict[str, float]:
    return {"precision": float(m["inside"].mean()), "density": float(m["count"].mean()),
            "realism": float(np.quantile(m["realism"], 0.5)), "realism_p10": float(np.quantile(m["realism"], 0.1))}


def gaussian_world(dim: int, n_ref: int, shift: float, scale: float, seed: int = 0, big: int = 100_000) -> World:
    """Reference: n_ref draws of N(0, S) with S = A A^T / dim + I / 2 (a random, well-spread spectrum); generated:
    N(shift * 1, scale^2 S)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((dim, dim)) / math.sqrt(dim)
    cov = a @ a.T + 0.5 * np.eye(dim)
    chol = np.linalg.cholesky(cov)
    ref = torch.from_numpy(rng.standard_normal((n_ref, dim)) @ chol.T).float()
    mu_g, chol_g = np.full(dim, shift), chol * scale

    def draw(n: int, r: np.random.Generator) -> torch.Tensor:
        return torch.from_numpy(r.standard_normal((n, dim)) @ chol_g.T + mu_g).float()

    cov_g = chol_g @ chol_g.T
    ref_stats = GaussianStats.from_features(ref, with_root=True)
    yd = ref.double().numpy()
    kxx = poly_kernel_expectation(mu_g, cov_g, mu_g, cov_g, dim)
    kxy = np.mean([poly_kernel_expectation(mu_g, cov_g, y, np.zeros((dim, dim)), dim) for y in yd])
    truth = {"fid_inf": frechet_distance(GaussianStats(mu_g, cov_g, 10 ** 9), ref_stats),
             "kid": kxx + _reference_u_stat(ref) - 2 * kxy,
             **_membership_truth(_membership(draw(big, np.random.default_rng(seed + 1)), ref))}
    return World(f"gaussian D={dim} M={n_ref} shift={shift} scale={scale}", ref, draw, truth)


def pool_world(pool: torch.Tensor, ref: torch.Tensor, name: str) -> World:
    """Generated features drawn without replacement from ``pool`` (real features); every target over the whole pool
    (its Gaussian, its kernel U-statistic, its membership)."""
    pool = pool.float()

    def draw(n: int, r: np.random.Generator) -> torch.Tensor:
        return pool[torch.from_numpy(r.choice(len(pool), n, replace=False))]

    stats = GaussianStats.from_features(pool)
    ref_stats = GaussianStats.from_features(ref, with_root=True)
    x, y = pool.double(), ref.double()
    kxx = _reference_u_stat(pool)
    kxy = float(torch.cat([fidelity._poly_kernel(x[i:i + 4096], y).mean(1) for i in range(0, len(x), 4096)]).mean())
    truth = {"fid_inf": frechet_distance(stats, ref_stats), "kid": kxx + _reference_u_stat(ref) - 2 * kxy,
             **_membership_truth(_membership(pool, ref))}
    return World(name, ref.float(), draw, truth)


def augmented_images(images: torch.Tensor, copies: int, seed: int = 0, degrees: float = 12.0, shift: float = 2.0,
                     zoom: float = 0.1) -> torch.Tensor:
    """``copies`` random affine variants of each uint8 NCHW image (rotation within +-degrees, translation within
    +-shift pixels, scale within 1 +- zoom; bilinear): a large pool of real-looking images from a small real set."""
    g = torch.Generator().manual_seed(seed)
    x = images.float().repeat(copies, 1, 1, 1)
    n, side = len(x), x.shape[-1]
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(degrees)
    scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * zoom
    move = (torch.rand(n, 2, generator=g) * 2 - 1) * shift * 2 / side
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle) / scale, -torch.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle) / scale, torch.cos(angle) / scale
    theta[:, :, 2] = move
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def scores(world: World, x: torch.Tensor, seed: int, frechet_only: bool = False) -> dict[str, Score]:
    """Every interval under test, through the functions the registered metrics call (``frechet_only``: FID and
    FID-infinity alone)."""
    fid, grouped = fid_with_jackknife(x, world.ref_stats, seed=seed)
    out = {"fid": fid, "fid_inf": fid_infinity(x, world.ref_stats, seed=seed, grouped=grouped)}
    if frechet_only:
        return out
    nb = NeighbourPass(x, world.ref, seed=seed)
    out["kid"] = fidelity.kid(x, world.ref, seed=seed, kernel_means=nb.kernel_mean)
    out.update(fidelity.precision_recall(x, world.ref, neighbours=nb))
    out.update(prdc.density_coverage(x, world.ref, neighbours=nb))
    out.update(fidelity.realism(nb))
    # the other jackknife intervals: the RBF MMD (from the same pass), sliced Wasserstein, Vendi
    out["rbf_mmd"] = mmd.rbf_mmd_from_pass(nb)
    out.update(swd.sliced_wasserstein_scores(x, world.ref, seed=seed))
    out["vendi"] = vendi.vendi_score(x, seed=seed)
    return out


def legacy_scores(world: World, x: torch.Tensor, seed: int, frechet_only: bool = False
                  ) -> dict[str, tuple[float, float | None, float | None]]:
    """(value, low, high) of the intervals ganbench reported before issue 16, re-computed here."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    out = {}
    s = fidelity.fid(x, world.ref_stats, seed=seed, bootstrap=100)
    out["fid"] = (s.value, s.ci_low, s.ci_high)
    # FID-infinity: a line in 1/N through FIDs of random subsets of N/5 .. N, intercept standard error
    n = len(x)
    ns = np.unique(np.linspace(max(int(n * 0.2), 2), n, 8).astype(int))
    rng = np.random.default_rng(seed)
    fids = np.array([frechet_distance(GaussianStats.from_features(x[torch.from_numpy(rng.permutation(n)[:k])]),
                                      world.ref_stats) for k in ns])
    design = np.stack([np.ones(len(ns)), 1.0 / ns], axis=1)
    coef = np.linalg.lstsq(design, fids, rcond=None)[0]
    resid = fids - design @ coef
    se = float(np.sqrt(max((resid @ resid / max(len(ns) - 2, 1)) * np.linalg.inv(design.T @ design)[0, 0], 0.0)))
    out["fid_inf"] = (float(coef[0]), coef[0] - 1.96 * se, coef[0] + 1.96 * se)
    if frechet_only:
        return out
    size = fidelity.kid_subset_size(len(x), len(world.ref))
    k = kid_features_to_metric(x.double(), world.ref.double(), kid_subsets=100, kid_subset_size=size, rng_seed=seed,
                               verbose=False)
    mean, std = k["kernel_inception_distance_mean"], k["kernel_inception_distance_std"]
    out["kid"] = (mean, mean - 1.96 * std / 10, mean + 1.96 * std / 10)
    nb = NeighbourPass(x, world.ref, seed=seed, kernel=False)
    r = float(nb.recall_in.double().mean())
    _, lo, hi = wilson_interval(r, len(world.ref))
    out["recall"] = (r, lo, hi)
    p = float(nb.precision_in.double().mean())
    _, lo, hi = wilson_interval(p, len(x))
    out["precision"] = (p, lo, hi)
    draws = len(nb.subset_radius_dc)
    dens = (nb.density_count.sum(1) / (len(x) * nb.k_dc)).numpy()
    cov = np.array([float(nb.coverage_in(s_).double().mean()) for s_ in range(draws)])
    for name, reps in (("density", dens), ("coverage", cov)):
        if draws > 1:
            half = 1.96 * reps.std(ddof=1) / math.sqrt(draws)
            out[name] = (float(reps.mean()), reps.mean() - half, reps.mean() + half)
        else:
            out[name] = (float(reps.mean()), None, None)
    return out


@dataclass
class CoverageRow:
    """How often one score's reported interval contained its target."""

    world: str
    n: int
    score: str
    target: float  # the mean target (leave-one-out targets vary slightly per draw)
    mean_value: float
    sd_value: float  # spread of the values across draws: what the intervals should reflect
    mean_std: float | None  # mean reported std
    covered: int
    reported: int  # draws that reported an interval
    draws: int
    method: str

    @property
    def coverage(self) -> float:
        return self.covered / self.reported if self.reported else float("nan")


def coverage(world: World, n: int, draws: int, seed: int = 0, legacy: bool = False,
             frechet_only: bool = False) -> tuple[list[CoverageRow], float]:
    """Score ``draws`` independent sample sets of ``n`` from ``world`` and count, per score, the intervals that
    contain the target. Returns the rows and the seconds per draw. ``legacy``: the pre-issue-16 intervals."""
    with metric_threads():  # as evaluate runs the metric stage: pools sized to the free cores
        return _coverage(world, n, draws, seed, legacy, frechet_only)


def _coverage(world: World, n: int, draws: int, seed: int, legacy: bool, frechet_only: bool
              ) -> tuple[list[CoverageRow], float]:
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    bounds: dict[str, list[tuple[float | None, float | None]]] = {}
    stds: dict[str, list[float]] = {}
    methods: dict[str, str] = {}
    t0 = time.perf_counter()
    for i in range(draws):
        x = world.draw(n, rng)
        if legacy:
            got = legacy_scores(world, x, seed + i, frechet_only)
            for k, (v, lo, hi) in got.items():
                values.setdefault(k, []).append(v)
                bounds.setdefault(k, []).append((lo, hi))
                methods[k] = "legacy"
        else:
            for k, s in scores(world, x, seed + i, frechet_only).items():
                values.setdefault(k, []).append(s.value)
                bounds.setdefault(k, []).append((s.ci_low, s.ci_high))
                if s.std is not None:
                    stds.setdefault(k, []).append(s.std)
                methods[k] = s.method
    seconds = (time.perf_counter() - t0) / draws
    rows = []
    for k, vals in values.items():
        v = np.asarray(vals, dtype=np.float64)
        if k in EXPECTED_AT_N:
            targets = (v.sum() - v) / (len(v) - 1)
        elif k in world.truth:
            targets = np.full(len(v), world.truth[k])
        else:
            continue
        covered = reported = 0
        for t, (lo, hi) in zip(targets, bounds[k]):
            if lo is None or hi is None:
                continue
            reported += 1
            covered += int(lo <= t <= hi)
        rows.append(CoverageRow(world.name, n, k, float(targets.mean()), float(v.mean()), float(v.std(ddof=1)),
                                float(np.mean(stds[k])) if stds.get(k) else None, covered, reported, len(v),
                                methods[k]))
    return rows, seconds


__all__ = ["CoverageRow", "EXPECTED_AT_N", "World", "augmented_images", "coverage", "gaussian_world", "legacy_scores",
           "poly_kernel_expectation", "pool_world", "scores"]
