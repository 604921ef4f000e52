"""Fréchet distance between Gaussian fits of feature sets (Heusel et al. 2017), its jackknife, and FID-infinity.

The trace term tr((S_g S_r)^(1/2)) is computed from a factor F of the reference covariance, F F^T = S_r:
the eigenvalues of the symmetric F^T S_g F equal those of S_g S_r, so the trace term is the sum of their
square roots, found with a symmetric eigendecomposition in float64 (the formulation of Dowson & Landau
1982). F is computed once per reference set and cached: the lower Cholesky factor when S_r is positive
definite (then F^T S_g F is one LAPACK ``dsygst`` call, n^3 flops, against 4 n^3 for two general
products), and otherwise, for the near-singular covariances of fewer samples than dimensions, the
symmetric PSD square root. Either way the result stays real where scipy's ``sqrtm`` (used by pytorch-fid
and the TF reference) returns complex parts that are then dropped. torch-fidelity's
``fid_statistics_to_metric`` (eigenvalues of the non-symmetric S_g S_r) agrees to 1e-6 on
well-conditioned inputs (tests).

Round-off (ganbench issue 16, item 7). With fewer samples than dimensions, F^T S_g F has D - N + 1 zero
eigenvalues that the solver returns as +-1e-16 ||M||; every peer library takes the square roots of the
positive ones, about 1e-8 each, and identical inputs gave FID = -7.6e-6. Eigenvalues below the solver's
precision bound (max(D, N) * eps * the largest eigenvalue, LAPACK's own rank tolerance) are dropped here,
and the same bound drops the round-off eigenvalues of a singular reference's square root. Where the
result lies within its own round-off bound of zero (identical or nearly identical inputs, whose small
eigenvalues squaring has pushed below precision), the trace term is recomputed without squaring, as the
nuclear norm of G^T F (G G^T = S_g) by a singular value decomposition: identical inputs give |FID| < 1e-9
at any N and D (tests).

The interval (issue 16, item 1). A bootstrap that resamples generated features with replacement inflates
FID when N is near D (duplicates lower the rank), so its interval missed the value it was built around
(on 2000 x 2048 Gaussians: value 641, interval [897, 927]), and it cost 100 FIDs. Here the generated
samples are split into ``JACKKNIFE_GROUPS`` random groups and FID is recomputed with each group left out
(delete-a-group jackknife; Quenouille 1956, Tukey 1958): every replicate is one more eigendecomposition from
sums already accumulated (the group scatter matrices add up to the covariance), and the jackknife
variance (G-1)/G sum (FID_(g) - mean)^2 gives a t(G-1) interval for the expected FID at this sample count,
reference fixed. ``benchmarks/interval_coverage.py`` measures its coverage on Gaussians and on real
feature pools (``benchmarks/results/interval_coverage.md``). When fewer samples than dimensions remain,
a replicate's trace term is computed on the N x N side (eigenvalues of (X_c F)(X_c F)^T, as in Mathiasen &
Hvilshøj 2020's fast FID, from one Gram matrix of all the samples), which is cheaper there.

FID-infinity (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find
them"): FID is biased upwards by a term linear in 1/N, and FID at 1/N = 0 is the unbiased value. The paper
fits a line through FIDs at 15 sample counts from 5000 to 50000; scaled down to the samples at hand (N/5 to
N) that fit is biased where the 1/N law only holds near N, and the regression's standard error is not
the sampling spread (measured coverage 0-70%). ganbench extrapolates the same line locally, through FID at
N and the mean of the jackknife replicates at N (G-1)/G (Quenouille's bias-corrected estimate, G FID - (G-1)
mean FID_(g)), with a delete-2 jackknife standard error; the next-order (quadratic) extrapolation through
the delete-2 mean measures how far the line is from the curve, and when that exceeds half a standard
error the value is reported without an interval (the extrapolation is not trusted at this N).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.stats
import torch

from ganbench.results.schema import Score

EPS = float(np.finfo(np.float64).eps)
JACKKNIFE_GROUPS = 10  # groups of the delete-a-group jackknife (FID, FID-infinity)
CURVATURE_LIMIT = 0.5  # FID-infinity: largest |quadratic - linear extrapolation| / standard error with an interval


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a feature set, float64, optionally with a cached factor of the covariance."""

    mu: np.ndarray  # (D,)
    sigma: np.ndarray  # (D, D)
    n: int  # samples the statistics were computed from
    root: np.ndarray | None = None  # (D, D) F with F F^T = sigma; only needed for the reference
    root_is_cholesky: bool = False  # F is lower triangular (Cholesky) rather than the symmetric square root

    @classmethod
    def from_features(cls, features: torch.Tensor | np.ndarray, with_root: bool = False) -> "GaussianStats":
        x = features.double().numpy() if torch.is_tensor(features) else np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"Gaussian statistics need an (N >= 2, D) feature matrix, got shape {x.shape}")
        mu = x.mean(axis=0)
        centred = x - mu
        sigma = centred.T @ centred / (x.shape[0] - 1)
        stats = cls(mu, sigma, x.shape[0])
        return stats.with_root() if with_root else stats

    @classmethod
    def from_sums(cls, n: int, sum_x: torch.Tensor | np.ndarray, sum_outer: torch.Tensor | np.ndarray) -> "GaussianStats":
        """Statistics from the float64 sums of x and of x x^T over n samples (merged across processes)."""
        s1 = sum_x.double().numpy() if torch.is_tensor(sum_x) else np.asarray(sum_x, dtype=np.float64)
        s2 = sum_outer.double().numpy() if torch.is_tensor(sum_outer) else np.asarray(sum_outer, dtype=np.float64)
        if n < 2 or s2.shape != (s1.shape[0], s1.shape[0]):
            raise ValueError(f"Gaussian statistics need n >= 2 and sums of shapes (D,), (D, D); got n={n}, "
                             f"{s1.shape}, {s2.shape}")
        mu = s1 / n
        sigma = (s2 - n * np.outer(mu, mu)) / (n - 1)
        return cls(mu, (sigma + sigma.T) / 2, int(n))

    def with_root(self) -> "GaussianStats":
        """These statistics with the covariance factor computed (a no-op when it is already there)."""
        if self.root is not None:
            return self
        root, is_cholesky = covariance_root(self.sigma)
        return GaussianStats(self.mu, self.sigma, self.n, root, is_cholesky)


def precision_bound(largest: float, size: int) -> float:
    """Eigenvalues of a symmetric matrix of order ``size`` below this are round-off: size * eps * largest
    (LAPACK's and numpy's rank tolerance)."""
    return size * EPS * max(float(largest), 0.0)


def covariance_root(sigma: np.ndarray) -> tuple[np.ndarray, bool]:
    """(F, is_cholesky) with F F^T = sigma: the Cholesky factor if sigma is positive definite.

    A covariance from fewer samples than dimensions is singular and has no Cholesky factor; neither has
    one whose smallest eigenvalues round-off pushed below zero. Those get the symmetric PSD square root.
    """
    try:
        return np.linalg.cholesky(sigma), True
    except np.linalg.LinAlgError:
        return symmetric_sqrt(sigma), False


def symmetric_sqrt(sigma: np.ndarray) -> np.ndarray:
    """The PSD square root of a symmetric matrix; eigenvalues below the precision bound (round-off, including the
    negative ones) count as zero."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    w = np.where(w > precision_bound(w[-1], len(w)), w, 0.0)
    return (v * np.sqrt(w)) @ v.T


def sqrt_trace(eigenvalues: np.ndarray, size: int) -> tuple[float, float]:
    """(sum of the square roots of the eigenvalues above the precision bound, a bound on its round-off error).

    An eigenvalue is known to about the bound t (``precision_bound``): one below it contributes at most sqrt(t),
    one above it e at most t / (2 sqrt(e)).
    """
    e = np.asarray(eigenvalues, dtype=np.float64)
    if e.size == 0:
        return 0.0, 0.0
    tol = precision_bound(e.max(), size)
    kept = e[e > tol]
    error = (e.size - kept.size) * math.sqrt(tol) + float((tol / (2 * np.sqrt(kept))).sum())
    return float(np.sqrt(kept).sum()), error


def _gen_ref_matrix(gen_sigma: np.ndarray, ref: GaussianStats) -> np.ndarray:
    """F^T S_g F, whose eigenvalues are those of S_g S_r; only its lower triangle is meaningful."""
    if ref.root_is_cholesky:
        # dsygst (itype 2) overwrites the lower triangle of S_g with L^T S_g L, exploiting both symmetry
        # and the triangle: a quarter of the flops of two general matrix products.
        m, info = scipy.linalg.lapack.dsygst(np.array(gen_sigma, order="F"), np.asfortranarray(ref.root),
                                             itype=2, lower=1, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"LAPACK dsygst failed with info={info}")
        return m
    return ref.root.T @ gen_sigma @ ref.root


def trace_term(gen_sigma: np.ndarray, ref: GaussianStats) -> tuple[float, float]:
    """(tr((S_g S_r)^(1/2)), its round-off bound) from the D x D side, F cached on ``ref``."""
    m = _gen_ref_matrix(gen_sigma, ref.with_root())
    # LAPACK's MRRR driver (dsyevr): the fastest symmetric eigenvalue solver here (0.6 s against numpy's
    # 0.8 s at 2048-d on 2 cores), same eigenvalues to round-off. It reads the lower triangle only, which
    # is all dsygst writes, and the round-off asymmetry of the general product needs no symmetrising copy.
    eig = scipy.linalg.eigvalsh(m, lower=True, driver="evr", check_finite=False, overwrite_a=True)
    return sqrt_trace(eig, len(eig))


def trace_term_exact(gen_sigma: np.ndarray, ref: GaussianStats) -> float:
    """The trace term as the nuclear norm of G^T F (G G^T = S_g): singular values, so nothing is squared and small
    eigenvalues keep their relative precision. About five times the cost of ``trace_term``."""
    g, _ = covariance_root(gen_sigma)
    sv = scipy.linalg.svdvals(g.T @ ref.with_root().root, check_finite=False)
    if sv.size == 0 or sv[0] <= 0:
        return 0.0
    return float(sv[sv > len(sv) * EPS * sv[0]].sum())


def frechet_distance(gen: GaussianStats, ref: GaussianStats) -> float:
    """||mu_g - mu_r||^2 + tr(S_g) + tr(S_r) - 2 tr((F^T S_g F)^(1/2)), F F^T = S_r (cached on ``ref``).

    Where the result lies within its round-off bound of zero, the trace term is recomputed by ``trace_term_exact``.
    """
    if gen.mu.shape != ref.mu.shape:
        raise ValueError(f"feature dimensions differ: generated {gen.mu.shape[0]}, reference {ref.mu.shape[0]}")
    ref = ref.with_root()
    diff = gen.mu - ref.mu
    rest = float(diff @ diff + np.trace(gen.sigma) + np.trace(ref.sigma))
    tr, error = trace_term(gen.sigma, ref)
    if rest - 2 * tr <= 8 * error:
        tr = trace_term_exact(gen.sigma, ref)
    return rest - 2 * tr


class GroupedFeatures:
    """Generated features split into random groups, with each group's sums, so that the Fréchet distance of any
    union of groups costs one eigendecomposition (and no pass over the features).

    Each group keeps its count, its sum and its scatter about the overall mean m; a union U has mean
    mu_U = sum_U / n_U and scatter sum_g C_g - n_U (mu_U - m)(mu_U - m)^T. Computing the group scatters costs one
    covariance (N D^2), and their sum is the covariance of all the samples (``stats``). When the samples are fewer
    than the dimensions the unions' trace terms are taken on the N x N side: the Gram matrix K = Z Z^T of the rows
    Z = (X - m) F is computed once (N D^2 + N^2 D), and a union's centred Gram matrix is its block of K less a
    rank-two correction for its own mean, so that a replicate costs one n x n eigendecomposition and no product.
    """

    def __init__(self, features: torch.Tensor | np.ndarray, ref: GaussianStats, groups: int, seed: int):
        x = features.double() if torch.is_tensor(features) else torch.from_numpy(np.asarray(features, np.float64))
        n = x.shape[0]
        if n < 2 * groups:
            raise ValueError(f"a {groups}-group jackknife needs at least {2 * groups} samples, got {n}")
        self.ref = ref.with_root()
        self.n, self.dim = n, x.shape[1]
        order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
        self.members = [order[g::groups] for g in range(groups)]  # sizes differ by at most one
        self.centre = x.mean(0)
        self.counts = np.array([len(m) for m in self.members])
        self.sums, self.scatters = [], []
        for m in self.members:
            c = x[m] - self.centre
            self.sums.append(c.sum(0).numpy())  # sums of the centred rows
            self.scatters.append((c.T @ c).numpy())
        # the features are kept only while some union of groups (all but two) can have fewer rows than dimensions
        self._x = x if n - 2 * int(self.counts.max()) < self.dim else None
        self._gram: np.ndarray | None = None

    @property
    def groups(self) -> int:
        return len(self.members)

    def stats(self) -> GaussianStats:
        """Mean and covariance of all the samples, from the groups' sums."""
        total = sum(self.sums)
        shift = total / self.n
        sigma = (sum(self.scatters) - self.n * np.outer(shift, shift)) / (self.n - 1)
        return GaussianStats(self.centre.numpy() + shift, (sigma + sigma.T) / 2, self.n)

    def _rows_gram(self) -> np.ndarray:
        """K = Z Z^T with Z = (X - m) F, in the order of ``torch.cat(members)``."""
        if self._gram is None:
            idx = torch.cat(self.members)
            z = (self._x[idx] - self.centre) @ torch.from_numpy(self.ref.root)
            self._gram = (z @ z.T).numpy()
            self._position = torch.empty(self.n, dtype=torch.int64)
            self._position[idx] = torch.arange(self.n)
        return self._gram

    def fid_without(self, left_out: tuple[int, ...] = ()) -> float:
        """Fréchet distance of the samples outside the groups ``left_out``."""
        keep = [g for g in range(self.groups) if g not in left_out]
        n = int(self.counts[keep].sum())
        shift = sum(self.sums[g] for g in keep) / n  # mean of the union minus the overall mean
        mu = self.centre.numpy() + shift
        scatter_trace = sum(float(np.trace(self.scatters[g])) for g in keep) - n * float(shift @ shift)
        diff = mu - self.ref.mu
        rest = float(diff @ diff) + scatter_trace / (n - 1) + float(np.trace(self.ref.sigma))
        if n < self.dim and (self._x is not None or self._gram is not None):  # the N x N side: n^3 against D^3
            gram = self._rows_gram()
            pos = self._position[torch.cat([self.members[g] for g in keep])].numpy()
            k = gram[np.ix_(pos, pos)]
            # centre the rows at the union's own mean: K - 1 r^T / n - r 1^T / n + (sum r / n^2) 1 1^T, r = K 1
            r = k.sum(1)
            k -= (r[:, None] + r[None, :]) / n
            k += r.sum() / (n * n)
            eig = scipy.linalg.eigvalsh(k / (n - 1), lower=True, driver="evr", check_finite=False, overwrite_a=True)
            tr, _ = sqrt_trace(eig, self.dim)
        else:
            scatter = sum(self.scatters[g] for g in keep) - n * np.outer(shift, shift)
            tr, _ = trace_term(scatter / (n - 1), self.ref)
        return rest - 2 * tr

    def delete_one(self) -> np.ndarray:
        """FID with each group left out in turn, (G,)."""
        return np.array([self.fid_without((g,)) for g in range(self.groups)])

    def delete_two(self) -> np.ndarray:
        """FID with each pair of groups left out, (G, G) symmetric with NaN on the diagonal."""
        out = np.full((self.groups, self.groups), np.nan)
        for a, b in itertools.combinations(range(self.groups), 2):
            out[a, b] = out[b, a] = self.fid_without((a, b))
        return out


def jackknife_std(replicates: np.ndarray) -> float:
    """Delete-a-group jackknife standard error: sqrt((G-1)/G sum (r_g - mean)^2); for (partitions, G) replicates of
    several independent random partitions, the square root of their variances' mean."""
    r = np.atleast_2d(np.asarray(replicates, dtype=np.float64))
    g = r.shape[1]
    return float(math.sqrt(((g - 1) / g * ((r - r.mean(1, keepdims=True)) ** 2).sum(1)).mean()))


def jackknife_interval(value: float, replicates: np.ndarray, floor: float | None = None
                       ) -> tuple[float, float, float]:
    """(std, low, high): the delete-a-group jackknife standard error of ``replicates`` (one per left-out group) and the
    t(G-1) 95% interval around ``value``, its low end raised to ``floor`` when given (a score's smallest value)."""
    std = jackknife_std(replicates)
    half = t_quantile(len(replicates)) * std
    low = value - half
    return std, (max(low, floor) if floor is not None else low), value + half


def t_quantile(groups: int) -> float:
    """97.5th percentile of Student's t with groups - 1 degrees of freedom (the jackknife's)."""
    return float(scipy.stats.t.ppf(0.975, groups - 1))


def fid_with_jackknife(gen: torch.Tensor, ref: GaussianStats, seed: int = 0, groups: int = JACKKNIFE_GROUPS,
                       gen_stats: GaussianStats | None = None) -> tuple[Score, GroupedFeatures | None]:
    """FID with its delete-a-group jackknife interval, and the grouped features (FID-infinity reuses them).

    Fewer than ``2 * groups`` samples take groups of two (at least 2 groups; the t quantile follows); below 4
    samples the value comes without an interval."""
    ref = ref.with_root()
    n = len(gen)
    groups = min(groups, n // 2)
    if groups < 2:
        value = frechet_distance(gen_stats if gen_stats is not None else GaussianStats.from_features(gen), ref)
        return Score(value, None, None, None, n, False,
                     f"no interval: a jackknife needs at least 4 generated samples, got {n}"), None
    grouped = GroupedFeatures(gen, ref, groups, seed)
    value = frechet_distance(gen_stats if gen_stats is not None else grouped.stats(), ref)
    std, low, high = jackknife_interval(value, grouped.delete_one(), floor=0.0)
    return (Score(value, std, low, high, len(gen), False,
                  f"jackknife({groups} groups) over generated samples, reference fixed; t({groups - 1}) 95% "
                  f"interval for the expected FID at this sample count"), grouped)


def fid_infinity(gen: torch.Tensor, ref: GaussianStats, seed: int = 0, groups: int = JACKKNIFE_GROUPS,
                 grouped: GroupedFeatures | None = None) -> Score:
    """FID extrapolated to infinitely many generated samples along the line in 1/N through FID at N and at
    N (G-1)/G (see the module docstring), with a delete-2 jackknife interval when the extrapolation is trusted."""
    n = len(gen)
    if n < 2 * groups:
        raise ValueError(f"FID-infinity needs at least {2 * groups} generated samples, got {n}")
    grouped = grouped if grouped is not None else GroupedFeatures(gen, ref, groups, seed)
    g = grouped.groups
    f0 = grouped.fid_without(())
    f1 = grouped.delete_one()
    f2 = grouped.delete_two()
    value = g * f0 - (g - 1) * f1.mean()
    # the estimate with group h left out, from the pairs: (G-1) FID_(h) - (G-2) mean_{g != h} FID_(h,g)
    reps = np.array([(g - 1) * f1[h] - (g - 2) * np.nanmean(f2[h]) for h in range(g)])
    std = jackknife_std(reps)
    # quadratic in 1/n through n, n(G-1)/G and n(G-2)/G: the next-order extrapolation
    ns = np.array([n, n * (g - 1) / g, n * (g - 2) / g], dtype=np.float64)
    design = np.stack([np.ones(3), 1 / ns, 1 / ns ** 2], axis=1)
    quadratic = float(np.linalg.solve(design, np.array([f0, f1.mean(), np.nanmean(f2)]))[0])
    curvature = abs(quadratic - value)
    method = (f"jackknife extrapolation to 1/N = 0 through FID at N and {g - 1}/{g} N ({g} groups); std: delete-2 "
              f"jackknife; next-order term {curvature:.3g}")
    if curvature > CURVATURE_LIMIT * std:
        return Score(value, None, None, None, n, False,
                     method + f" exceeds {CURVATURE_LIMIT} standard error ({std:.3g}): the linear extrapolation is "
                              f"not trusted at this N, no interval")
    half = t_quantile(g) * std
    return Score(value, std, value - half, value + half, n, False, method + f"; t({g - 1}) 95% interval")


__all__ = ["CURVATURE_LIMIT", "GaussianStats", "GroupedFeatures", "JACKKNIFE_GROUPS", "covariance_root",
           "fid_infinity", "fid_with_jackknife", "frechet_distance", "jackknife_interval", "jackknife_std", "precision_bound", "sqrt_trace",
           "symmetric_sqrt", "t_quantile", "trace_term", "trace_term_exact"]
