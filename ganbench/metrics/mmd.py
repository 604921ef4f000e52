"""Gaussian-RBF kernel MMD: CMMD's estimator (Jayasumana et al. 2024, "Rethinking FID: Towards a Better Evaluation
Metric for Image Generation", CVPR, arXiv:2401.09603) and KID's RBF variant (torch-fidelity 0.4's ``kid_kernel="rbf"``).

``rbf_mmd`` is the estimator of google-research/cmmd (``distance.mmd``): the biased (V-statistic) squared MMD
mean k(x, x') + mean k(y, y') - 2 mean k(x, y) over all pairs, diagonals included, with
k(a, b) = exp(-||a - b||^2 / (2 sigma^2)), sigma = 10, multiplied by 1000; the embeddings are L2-normalised first, as
CMMD's CLIP embedding model returns them. With the CLIP ViT-L/14@336 extractor that is CMMD; on any other extractor
it is the same estimator on that extractor's unit-normalised features. The kernel sums are taken in float64, in row
blocks, so no N x N matrix is held (the reference builds the full matrices in float32); what is summed is k - 1
(``expm1``), whose constant parts cancel in the estimator. Its spread is a delete-a-group jackknife over the generated
samples (``MMD_GROUPS`` groups, the reference fixed; t interval): the kernel sums are kept per pair of groups, so
every left-out replicate costs nothing more. (A bootstrap replicate repeats samples, and repeated samples add k = 1
terms to the V-statistic: its replicates sat above the value.)

In an evaluation the kernel sums come from the neighbour pass (``neighbours.RbfSums``): its screened float32
distances of the raw features give the unit-normalised distances elementwise, with no scan of their own. They agree
with this module's float64 computation to about 1e-7 relative (``tests/test_new_metrics.py``);
``rbf_mmd(gen, ref)`` is that float64 computation.

``kid_rbf`` is torch-fidelity's ``kid_features_to_metric`` with ``kid_kernel="rbf"`` (sigma 10 on the raw features):
the unbiased MMD^2 over 100 random subsets, drawn exactly as torch-fidelity draws them (same seed, same
``RandomState.choice`` calls, subset size as ``ganbench.metrics.fidelity.kid``), evaluated in float64 torch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganbench.metrics.fidelity import Z95, kid_subset_size
from ganbench.metrics.frechet import jackknife_interval
from ganbench.metrics.neighbours import as_tensor, jackknife_groups
from ganbench.results.schema import Score

CMMD_SIGMA = 10.0  # CMMD's bandwidth (google-research/cmmd distance.py _SIGMA)
CMMD_SCALE = 1000.0  # CMMD's scale (distance.py _SCALE)
KID_RBF_SIGMA = 10.0  # torch-fidelity's kid_kernel_rbf_sigma default
MMD_GROUPS = 10  # groups of the delete-a-group jackknife of rbf_mmd's interval
BLOCK = 512  # kernel rows per block (a block of 50k reference columns is 200 MB)


def _as_double(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return x.double() if torch.is_tensor(x) else torch.from_numpy(np.asarray(x, dtype=np.float64))


def rbf_kernel(x: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """exp(-||x_i - y_j||^2 / (2 sigma^2)) for every pair (rows of x against rows of y)."""
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    return torch.exp(-sq.clamp_min_(0) / (2 * sigma ** 2))


def _weighted_kernel_sums(x: torch.Tensor, y: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor, sigma: float
                          ) -> torch.Tensor:
    """sum_ij wx[r, i] k(x_i, y_j) wy[r, j] for each row r of the weights (R, Nx), (R, Ny), in row blocks of x."""
    total = torch.zeros(len(wx), dtype=torch.float64)
    for i in range(0, len(x), BLOCK):
        k = rbf_kernel(x[i:i + BLOCK], y, sigma)  # (b, Ny)
        total += ((wx[:, i:i + BLOCK] @ k) * wy).sum(1)
    return total


def cmmd_value(gen: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray, sigma: float = CMMD_SIGMA,
               scale: float = CMMD_SCALE, normalize: bool = True) -> float:
    """CMMD's estimator on two feature sets (rows unit-normalised first when ``normalize``)."""
    x, y = _as_double(gen), _as_double(ref)
    if normalize:
        x, y = _unit_rows(x), _unit_rows(y)
    one_x, one_y = torch.ones(1, len(x), dtype=torch.float64), torch.ones(1, len(y), dtype=torch.float64)
    kxx = _weighted_kernel_sums(x, x, one_x, one_x, sigma)[0] / len(x) ** 2
    kyy = _weighted_kernel_sums(y, y, one_y, one_y, sigma)[0] / len(y) ** 2
    kxy = _weighted_kernel_sums(x, y, one_x, one_y, sigma)[0] / (len(x) * len(y))
    return float(scale * (kxx + kyy - 2 * kxy))


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    norms = x.norm(dim=1, keepdim=True)
    return x / torch.where(norms > 0, norms, torch.ones_like(norms))


def _group_sums(x: torch.Tensor, y: torch.Tensor, sigma: float, onehot_x: torch.Tensor | None,
                onehot_y: torch.Tensor | None) -> torch.Tensor:
    """Sums of k - 1 over x-rows against y-rows, by group: (Gx, Gy) with one-hot (G, N) group matrices, or the
    total over a side whose one-hot is None."""
    total = None
    for i in range(0, len(x), BLOCK):
        e = torch.expm1(-_sq_distances(x[i:i + BLOCK], y) / (2 * sigma ** 2))
        part = (onehot_x[:, i:i + BLOCK] @ e) if onehot_x is not None else e.sum(0, keepdim=True)
        part = (part @ onehot_y.T) if onehot_y is not None else part.sum(1, keepdim=True)
        total = part if total is None else total + part
    return total


def _sq_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T).clamp_min_(0)


def mmd_from_sums(gen_gen: torch.Tensor, gen_ref_by_group: torch.Tensor, ref_ref: float, group_sizes: torch.Tensor,
                  m: int, sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> Score:
    """CMMD's estimator and its delete-a-group jackknife from the sums of k - 1: generated x generated by group pair
    (G, G), generated x reference by generated group (G,), reference x reference in total; ``group_sizes`` (G,)."""
    n = float(group_sizes.sum())
    groups = len(group_sizes)
    xx, xy = float(gen_gen.sum()), float(gen_ref_by_group.sum())
    value = scale * (xx / n ** 2 + ref_ref / m ** 2 - 2 * xy / (n * m))
    how = (f"RBF sigma={sigma:g}, x{scale:g}, unit-norm features, biased (V) estimator")
    if groups < 2:
        return Score(value, None, None, None, int(n), False, f"no interval: a jackknife needs at least 4 generated "
                     f"samples, got {int(n)}; {how}")
    reps = np.empty(groups)
    for g in range(groups):
        rest = n - float(group_sizes[g])
        xx_g = xx - float(gen_gen[g].sum()) - float(gen_gen[:, g].sum()) + float(gen_gen[g, g])
        xy_g = xy - float(gen_ref_by_group[g])
        reps[g] = scale * (xx_g / rest ** 2 + ref_ref / m ** 2 - 2 * xy_g / (rest * m))
    std, low, high = jackknife_interval(value, reps, floor=0.0)
    return Score(value, std, low, high, int(n), False,
                 f"jackknife({groups} groups) over generated samples, reference fixed; t({groups - 1}) 95% interval; "
                 + how)


def rbf_mmd(gen: torch.Tensor, ref: torch.Tensor, seed: int = 0, groups: int = MMD_GROUPS,
            sigma: float = CMMD_SIGMA, scale: float = CMMD_SCALE) -> Score:
    """CMMD's RBF-kernel MMD between generated and reference features, in float64, with a delete-a-group jackknife
    interval over the generated samples (groups as the neighbour pass draws them)."""
    if len(gen) < 2 or len(ref) < 2:
        raise ValueError(f"RBF MMD needs at least 2 samples per set, got {len(gen)} generated and {len(ref)} reference")
    x, y = _unit_rows(_as_double(gen)), _unit_rows(_as_double(ref))
    n, m = len(x), len(y)
    groups = max(min(groups, n // 2), 1)
    onehot = torch.nn.functional.one_hot(jackknife_groups(n, groups, seed + 2)[0], groups).T.double()
    xx = _group_sums(x, x, sigma, onehot, onehot)
    xy = _group_sums(x, y, sigma, onehot, None)[:, 0]
    yy = float(_group_sums(y, y, sigma, None, None))
    return mmd_from_sums(xx, xy, yy, onehot.sum(1), m, sigma, scale)


def rbf_mmd_from_pass(nb) -> Score:
    """``rbf_mmd`` from a ``NeighbourPass``'s kernel sums (the same estimator and jackknife groups)."""
    r = nb.rbf
    if r is None or r.zero_rows or r.sigma != CMMD_SIGMA:
        return rbf_mmd(nb.gen, nb.ref, seed=nb.seed, groups=nb.rbf_groups)
    xy = r.onehot @ r.gen_ref_rows
    score = mmd_from_sums(r.gen_gen, xy, float(r.ref_ref), r.onehot.sum(1), len(nb.ref))
    score.method += "; kernel from the neighbour pass's float32 distances, sums in float64"
    return score


def _rbf_mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    """Unbiased MMD^2 of equal-size sets with the RBF kernel, as torch-fidelity's ``mmd2(kernel_rbf(...))``."""
    m = len(x)
    kxx, kyy, kxy = rbf_kernel(x, x, sigma), rbf_kernel(y, y, sigma), rbf_kernel(x, y, sigma)
    sum_xx = kxx.sum() - kxx.diagonal().sum()
    sum_yy = kyy.sum() - kyy.diagonal().sum()
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kid_rbf(gen: torch.Tensor, ref: torch.Tensor, seed: int = 0, subsets: int = 100, sigma: float = KID_RBF_SIGMA
            ) -> Score:
    """KID with torch-fidelity's RBF kernel: mean and standard deviation of the unbiased MMD^2 over subsets."""
    size = kid_subset_size(len(gen), len(ref))
    if size < 2:
        raise ValueError(f"KID needs at least 4 samples in each set, got {len(gen)} generated and {len(ref)} reference")
    x_all, y_all = as_tensor(gen), as_tensor(ref)  # each subset is taken to float64 on its own
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        x = x_all[torch.from_numpy(rng.choice(len(x_all), size, replace=False))].double()
        y = y_all[torch.from_numpy(rng.choice(len(y_all), size, replace=False))].double()
        mmds[i] = _rbf_mmd2_unbiased(x, y, sigma)
    mean, std = float(mmds.mean()), float(mmds.std())
    return Score(mean, std, mean - Z95 * std / math.sqrt(subsets), mean + Z95 * std / math.sqrt(subsets), len(gen),
                 False, f"subsets({subsets}x{size}); RBF sigma={sigma:g}, unbiased")


__all__ = ["CMMD_SCALE", "CMMD_SIGMA", "KID_RBF_SIGMA", "cmmd_value", "kid_rbf", "mmd_from_sums", "rbf_kernel", "rbf_mmd",
           "rbf_mmd_from_pass"]
