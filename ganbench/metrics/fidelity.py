"""FID, KID, Inception Score, precision/recall and the realism score from precomputed features.

IS is torch-fidelity's (Obukhov et al.), which matches the TensorFlow reference implementation; KID draws
torch-fidelity's subsets and evaluates its kernel in torch (same numbers, faster); FID's closed form is
ganbench's symmetric-eigendecomposition engine (``ganbench.metrics.frechet``), which agrees with
torch-fidelity's to 1e-6 and caches a factor of the reference covariance. Precision and recall are
Kynkäänniemi et al.'s with torch-fidelity's conventions (k = 3, a point on a ball's boundary is inside),
computed from the evaluation's one neighbour pass (``ganbench.metrics.neighbours``): the same decisions
as torch-fidelity's ``prc_features_to_metric`` (tests), decided in float64 where float32 is not exact.

Spreads (ganbench issue 16, measured in ``benchmarks/results/interval_coverage.md``), all over the
generated samples with the reference fixed:
- FID: delete-a-group jackknife, t interval for the expected FID at this N (``frechet``);
- KID: the variance of torch-fidelity's subset average, Var(U-statistic over all generated samples) +
  subset variance / subsets, with the U-statistic's variance from its Hoeffding decomposition
  (4(N-2)/(N(N-1)) zeta_1 + 2/(N(N-1)) zeta_2, estimated without bias inside the subsets' kernel
  matrices, the kernel centred with each sample's mean kernel value against the whole reference);
  torch-fidelity's subset standard deviation over sqrt(subsets) treated the overlapping subsets as
  independent and covered 29-40%;
- precision: each generated sample is inside the fixed reference manifold or not, independently: a
  Wilson binomial interval;
- recall: delete-a-group jackknife over generated samples with the remaining samples' radii recomputed, a
  third of the samples left out at a time, the variance averaged over 8 random partitions; normal quantile.
  A binomial over the reference samples treats the wrong samples as random: its standard error was 0.38-0.99
  of the measured spread (too small when generated samples are fewer than reference ones). Recall is not a
  smooth statistic and the jackknife's bias depends on how much is left out: leaving out a tenth overstated
  the spread by 1.06-1.45, a third by 0.98-1.19 (Gaussians, D = 16-64, N/M from 0.1 to 2);
- IS: torch-fidelity's split standard deviation (a spread over splits, not an interval for the score);
- realism: the median of the per-sample realism scores with a distribution-free order-statistic interval.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch_fidelity
from scipy.stats import binom

MIN_TORCH_FIDELITY = "0.4.0"  # 0.3.0 has no precision/recall; 0.4.0 pre-releases swapped them (its issue #58)


def check_torch_fidelity() -> None:
    """Refuse a torch-fidelity older than ``MIN_TORCH_FIDELITY`` (pre-releases included) with a clear message."""
    from packaging.version import Version

    installed = Version(torch_fidelity.__version__)
    if installed < Version(MIN_TORCH_FIDELITY):
        raise ImportError(f"ganbench needs torch-fidelity>={MIN_TORCH_FIDELITY} (installed: {installed}; older builds "
                          f"lack or swap precision and recall): pip install 'torch-fidelity>={MIN_TORCH_FIDELITY}'")


check_torch_fidelity()

from torch_fidelity.metric_isc import isc_features_to_metric  # noqa: E402

from ganbench.metrics.frechet import (JACKKNIFE_GROUPS, GaussianStats, fid_with_jackknife, frechet_distance,  # noqa: E402
                                      jackknife_std)
from ganbench.metrics.neighbours import NeighbourPass  # noqa: E402
from ganbench.results.schema import Score  # noqa: E402

BOOTSTRAP = 100  # replicates of the legacy percentile bootstrap, when a caller asks for it (``fid(bootstrap=...)``)
Z95 = 1.959963984540054


def fid(gen: torch.Tensor, ref: GaussianStats, seed: int = 0, bootstrap: int | None = None,
        gen_stats: GaussianStats | None = None, groups: int = JACKKNIFE_GROUPS) -> Score:
    """Fréchet distance (Heusel et al. 2017) with a delete-a-group jackknife interval over the generated samples.

    ``bootstrap``: use the legacy percentile bootstrap with that many replicates instead (it resamples with
    replacement, which inflates FID when N is near D; kept for callers that ask for it).
    """
    if bootstrap is None:
        return fid_with_jackknife(gen, ref, seed, groups, gen_stats)[0]
    ref = ref.with_root()
    # gen_stats: the statistics merged exactly from sharded extraction (ganbench.features.distributed)
    value = frechet_distance(gen_stats if gen_stats is not None else GaussianStats.from_features(gen), ref)
    rng = np.random.default_rng(seed)
    reps = np.array([frechet_distance(GaussianStats.from_features(gen[rng.integers(0, len(gen), len(gen))]), ref)
                     for _ in range(bootstrap)])
    std, lo, hi = bootstrap_interval(reps)
    return Score(value, std, lo, hi, len(gen), False,
                 f"bootstrap({bootstrap}) over generated samples (legacy: biased upward when N is near D)")


def bootstrap_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(std, 2.5th percentile, 97.5th percentile) of bootstrap replicates."""
    return float(np.std(values, ddof=1)), float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def kid_subset_size(n_gen: int, n_ref: int) -> int:
    """torch-fidelity's 1000, or half the smaller set when there are fewer samples, so subsets differ."""
    return min(1000, min(n_gen, n_ref) // 2)


def _poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(a, b) = (a.b / d + 1)^3, torch-fidelity's ``kernel_poly`` defaults."""
    return (x @ y.T / x.shape[1] + 1).pow_(3)


def _poly_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, as torch-fidelity's ``mmd2(kernel_poly(...))``."""
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    m = x.shape[0]
    sum_xx = kxx.sum() - kxx.diagonal().sum()
    sum_yy = kyy.sum() - kyy.diagonal().sum()
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def reference_kernel_means(gen: torch.Tensor, ref: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """g(x_i) = mean_j k(x_i, y_j) over the whole reference, float64 (the neighbour pass accumulates the same)."""
    y = ref.double()
    return torch.cat([_poly_kernel(gen[i:i + chunk].double(), y).mean(1) for i in range(0, len(gen), chunk)])


def _zetas(h: torch.Tensor) -> tuple[float, float]:
    """Unbiased (zeta_1, zeta_2) of a symmetric U-statistic kernel from its matrix on m samples (diagonal ignored):
    zeta_1 = Cov(H(a, b), H(a, c)), zeta_2 = Var(H(a, b)) for distinct a, b, c."""
    m = h.shape[0]
    h = h.clone()
    h.fill_diagonal_(0)
    rows = h.sum(1)
    p, q, r2 = float(rows.sum()), float((h * h).sum()), float((rows * rows).sum())
    mean_sq = (p * p + 2 * q - 4 * r2) / (m * (m - 1) * (m - 2) * (m - 3))  # unbiased (E H)^2
    return (r2 - q) / (m * (m - 1) * (m - 2)) - mean_sq, q / (m * (m - 1)) - mean_sq


def kid(gen: torch.Tensor, ref: torch.Tensor, seed: int = 0, subsets: int = 100,
        kernel_means: torch.Tensor | None = None) -> Score:
    """Kernel Inception Distance (Binkowski et al. 2018): cubic polynomial kernel MMD over random subsets.

    The subsets are drawn exactly as torch-fidelity's ``kid_features_to_metric`` draws them (same seed, same
    ``RandomState.choice`` calls), so the two agree; the kernel is evaluated in float64 torch with an integer
    power, which is about 10x faster than numpy's float ``**`` on these matrices. The std is the standard error
    of this value over generated samples (module docstring); ``kernel_means``: each generated sample's mean
    kernel value against the whole reference, when the neighbour pass has accumulated them.
    """
    size = kid_subset_size(len(gen), len(ref))
    if size < 4:
        raise ValueError(f"KID needs at least 8 samples in each set, got {len(gen)} generated and {len(ref)} reference")
    n = len(gen)
    g = (kernel_means if kernel_means is not None else reference_kernel_means(gen, ref)).double()
    rng = np.random.RandomState(seed)
    mmds, zeta1, zeta2 = np.empty(subsets), np.empty(subsets), np.empty(subsets)
    for i in range(subsets):
        a = torch.from_numpy(rng.choice(len(gen), size, replace=False))
        x = gen[a].double()
        y = ref[torch.from_numpy(rng.choice(len(ref), size, replace=False))].double()
        kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
        sum_xx = kxx.sum() - kxx.diagonal().sum()
        sum_yy = kyy.sum() - kyy.diagonal().sum()
        mmds[i] = float((sum_xx + sum_yy) / (size * (size - 1)) - 2 * kxy.sum() / (size * size))
        ga = g[a]
        zeta1[i], zeta2[i] = _zetas(kxx - ga[:, None] - ga[None, :])
    mean = float(mmds.mean())
    var_u = 4 * (n - 2) / (n * (n - 1)) * float(zeta1.mean()) + 2 / (n * (n - 1)) * float(zeta2.mean())
    var = max(var_u, 0.0) + float(mmds.var(ddof=1)) / subsets
    std = math.sqrt(var)
    return Score(mean, std, mean - Z95 * std, mean + Z95 * std, n, False,
                 f"subsets({subsets}x{size}); std: standard error over generated samples, reference fixed "
                 f"(U-statistic variance + subset variance / {subsets}); normal 95% interval")


def inception_score(logits: torch.Tensor, splits: int = 10, seed: int = 2020) -> Score:
    """Inception Score (Salimans et al. 2016) from the extractor's class logits, mean and std over splits."""
    if len(logits) < splits:
        raise ValueError(f"IS needs at least {splits} samples for {splits} splits, got {len(logits)}")
    out = isc_features_to_metric(logits.double(), splits=splits, shuffle=True, rng_seed=seed)
    mean, std = out["inception_score_mean"], out["inception_score_std"]
    return Score(float(mean), float(std), float(mean - Z95 * std / math.sqrt(splits)),
                 float(mean + Z95 * std / math.sqrt(splits)), len(logits), True, f"splits({splits})")


def wilson_interval(p: float, n: int) -> tuple[float, float, float]:
    """(binomial std, Wilson 95% low, high) of a proportion ``p`` observed over ``n`` trials."""
    std = math.sqrt(max(p * (1 - p), 0.0) / n)
    denom = 1 + Z95 ** 2 / n
    centre = (p + Z95 ** 2 / (2 * n)) / denom
    half = Z95 * math.sqrt(max(p * (1 - p), 0.0) / n + Z95 ** 2 / (4 * n * n)) / denom
    return std, centre - half, centre + half


def precision_recall(gen: torch.Tensor, ref: torch.Tensor, k: int = 3, seed: int = 0,
                     neighbours: NeighbourPass | None = None) -> dict[str, Score]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Precision is the fraction of generated samples inside the real manifold (n = generated count, Wilson
    interval); recall the fraction of real samples inside the generated manifold (n = reference count; jackknife
    interval over generated samples). ``neighbours``: the evaluation's pass (its k is used), else one is computed.
    """
    if min(len(gen), len(ref)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set, "
                         f"got {len(gen)} generated and {len(ref)} reference")
    nb = neighbours if neighbours is not None else NeighbourPass(gen, ref, k_prc=k, k_dc=max(k, 1), seed=seed,
                                                                  kernel=False)
    p = float(nb.precision_in.double().mean())
    std, lo, hi = wilson_interval(p, len(gen))
    r = float(nb.recall_in.double().mean())
    groups, partitions = nb.recall_design
    reps = nb.recall_in_left_out.double().mean(1).numpy().reshape(partitions, groups)
    rstd = jackknife_std(reps)
    return {"precision": Score(p, std, lo, hi, len(gen), True, f"binomial(k={nb.k_prc}); Wilson 95% interval"),
            "recall": Score(r, rstd, max(r - Z95 * rstd, 0.0), min(r + Z95 * rstd, 1.0), len(ref), True,
                            f"k={nb.k_prc}; jackknife({partitions} partitions x {groups} groups) over generated "
                            f"samples, radii recomputed, reference fixed; normal 95% interval")}


def realism(neighbours: NeighbourPass) -> dict[str, Score]:
    """The realism score (Kynkäänniemi et al. 2019, section 5): per generated sample, max over the real samples whose
    k-NN radius is below the median of radius / distance (>= 1: inside the pruned real manifold). Summarised by
    the median and the 10th percentile of the per-sample scores, each with the distribution-free 95% interval
    of its quantile (order statistics, binomial ranks), over generated samples with the reference fixed."""
    values = np.sort(neighbours.realism.numpy())
    n = len(values)
    out = {}
    for name, q in (("realism", 0.5), ("realism_p10", 0.1)):
        lo_rank, hi_rank = quantile_ranks(n, q)
        value = float(np.quantile(values, q))
        out[name] = Score(value, None, float(values[lo_rank]), float(values[hi_rank]), n, True,
                          f"{'median' if q == 0.5 else f'{int(q * 100)}th percentile'} of per-sample realism "
                          f"(k={neighbours.k_prc}, half the real balls); order-statistic 95% interval")
    return out


def quantile_ranks(n: int, q: float) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics bracketing the q-quantile of n samples with >= 95% coverage
    (binomial(n, q) quantiles)."""
    lo = int(binom.ppf(0.025, n, q)) - 1
    hi = int(binom.ppf(0.975, n, q))
    return max(lo, 0), min(hi, n - 1)
