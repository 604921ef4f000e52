"""FID, KID, Inception Score and precision/recall from precomputed features.

IS and precision/recall are torch-fidelity's (Obukhov et al.), which match the TensorFlow reference
implementations; KID draws torch-fidelity's subsets and evaluates its kernel in torch (same numbers,
faster); FID's closed form is ganbench's symmetric-eigendecomposition engine
(``ganbench.metrics.frechet``), which agrees with torch-fidelity's to 1e-6 and caches a factor of the
reference covariance.
ganbench adds the spread of each score (bootstrap over generated samples for FID, KID's subset standard
deviation, IS's split standard deviation, a binomial interval for precision/recall) and computes the
statistics in float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch_fidelity

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
from torch_fidelity.metric_prc import prc_features_to_metric  # noqa: E402

from ganbench.metrics.frechet import GaussianStats, frechet_distance  # noqa: E402
from ganbench.results.schema import Score  # noqa: E402

BOOTSTRAP = 100  # bootstrap replicates for FID's interval
Z95 = 1.959963984540054


def fid(gen: torch.Tensor, ref: GaussianStats, seed: int = 0, bootstrap: int = BOOTSTRAP,
        gen_stats: GaussianStats | None = None) -> Score:
    """Fréchet distance (Heusel et al. 2017) with a bootstrap interval over the generated samples.

    ``ref`` carries a factor of the reference covariance, so each replicate costs one symmetric
    eigendecomposition (see ``ganbench.metrics.frechet``).
    """
    ref = ref.with_root()
    # gen_stats: the statistics merged exactly from sharded extraction (ganbench.features.distributed)
    value = frechet_distance(gen_stats if gen_stats is not None else GaussianStats.from_features(gen), ref)
    rng = np.random.default_rng(seed)
    reps = np.array([frechet_distance(GaussianStats.from_features(gen[rng.integers(0, len(gen), len(gen))]), ref)
                     for _ in range(bootstrap)])
    std, lo, hi = bootstrap_interval(reps)
    return Score(value, std, lo, hi, len(gen), False, f"bootstrap({bootstrap}) over generated samples")


def bootstrap_interval(values: np.ndarray) -> tuple[float, float, float]:
    """(std, 2.5th percentile, 97.5th percentile) of bootstrap replicates."""
    return float(np.std(values, ddof=1)), float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def kid_subset_size(n_gen: int, n_ref: int) -> int:
    """torch-fidelity's 1000, or half the smaller set when there are fewer samples, so subsets differ."""
    return min(1000, min(n_gen, n_ref) // 2)


def _poly_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, as torch-fidelity's ``mmd2(kernel_poly(...))``."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1).pow_(3)
    kyy = (y @ y.T / d + 1).pow_(3)
    kxy = (x @ y.T / d + 1).pow_(3)
    m = x.shape[0]
    sum_xx = kxx.sum() - kxx.diagonal().sum()
    sum_yy = kyy.sum() - kyy.diagonal().sum()
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kid(gen: torch.Tensor, ref: torch.Tensor, seed: int = 0, subsets: int = 100) -> Score:
    """Kernel Inception Distance (Binkowski et al. 2018): cubic polynomial kernel MMD over random subsets.

    The subsets are drawn exactly as torch-fidelity's ``kid_features_to_metric`` draws them (same seed, same
    ``RandomState.choice`` calls), so the two agree; the kernel is evaluated in float64 torch with an integer
    power, which is about 10x faster than numpy's float ``**`` on these matrices.
    """
    size = kid_subset_size(len(gen), len(ref))
    if size < 2:
        raise ValueError(f"KID needs at least 4 samples in each set, got {len(gen)} generated and {len(ref)} reference")
    x_all, y_all = gen.double(), ref.double()
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        x = x_all[torch.from_numpy(rng.choice(len(x_all), size, replace=False))]
        y = y_all[torch.from_numpy(rng.choice(len(y_all), size, replace=False))]
        mmds[i] = _poly_mmd2(x, y)
    mean, std = float(mmds.mean()), float(mmds.std())
    return Score(mean, std, mean - Z95 * std / math.sqrt(subsets), mean + Z95 * std / math.sqrt(subsets),
                 len(gen), False, f"subsets({subsets}x{size})")


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
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / denom
    return std, centre - half, centre + half


def precision_recall(gen: torch.Tensor, ref: torch.Tensor, k: int = 3) -> dict[str, Score]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Precision is the fraction of generated samples inside the real manifold (n = generated count);
    recall the fraction of real samples inside the generated manifold (n = reference count).
    """
    if min(len(gen), len(ref)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set, "
                         f"got {len(gen)} generated and {len(ref)} reference")
    out = prc_features_to_metric(gen.float(), ref.float(), prc_neighborhood=k, prc_batch_size=10000,
                                 save_cpu_ram=False, verbose=False)
    scores = {}
    for name, n in (("precision", len(gen)), ("recall", len(ref))):
        p = float(out[name])
        std, lo, hi = wilson_interval(p, n)
        scores[name] = Score(p, std, lo, hi, n, True, f"binomial(k={k})")
    return scores
