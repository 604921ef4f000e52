"""Memorisation scores that catch near-copies (ganbench issue 16, item 5), from the evaluation's neighbour pass.

``memorization.copy_fraction`` flags a generated sample closer to the training set than the closest held-out
samples are; a training image shifted by a pixel, re-encoded or blurred is not that close, and scored like
unseen data. Three scores from the literature, each validated on planted near-copies of real digits
(``tests/test_copies.py``):

- ``c_t``: the data-copying test of Meehan, Chaudhuri & Dasgupta 2020 ("A Non-Parametric Test to Detect
  Data-Copying in Generative Models"). The training features are partitioned into cells (k-means); in each
  cell the distances of generated and of held-out samples to their nearest training sample of the cell are
  compared by a Mann-Whitney U test, z-scored under the null (mean mn/2 - 0.5, the reference code's
  continuity correction); C_T is the held-out-weighted mean z over the cells holding more than ``tau`` of
  the generated samples. Well below 0 (the authors use -3) means the generated samples sit closer to the
  training set than new real data does: copying. Defaults (3 cells, tau = 20 / m, k-means on the features
  as given) are those of dgm-eval (Stein et al. 2023), which runs the authors' code; dgm-eval first projects
  to 64 principal components, which ganbench does not. Above 10 000 training rows the centres are fitted on a
  seeded subset of 10 000 (``ndb.fit_cells``), every training row then assigned. A test statistic, reported without an interval.
- ``authpct``: authenticity (Alaa et al. 2022, "How Faithful is your Synthetic Data?"), as dgm-eval computes
  it: a generated sample is authentic when its nearest training sample is nearer to another training
  sample than to it; AuthPct is the percentage of authentic samples (Wilson interval: each sample is
  authentic or not, independently, given the training set).
- ``near_copy_fraction``: a per-sample near-copy detector, the relative nearest-neighbour distance of
  Carlini et al. 2023 ("Extracting Training Data from Diffusion Models"): the distance to the nearest
  training sample over the mean distance to the ``RELATIVE_N`` = 50 nearest. A sample is flagged when that
  ratio is below ``FEATURE_THRESHOLD`` in feature space, or, where the images and the training images are
  at hand (``MetricInputs.images`` and ``MetricInputs.ref_images``), below ``PIXEL_THRESHOLD`` in pixel
  space. Carlini et al. compare raw pixels, which a one-pixel shift defeats; ganbench compares a
  registered pixel descriptor: grey levels, low-passed (Gaussian, 1.5 px), translated so that their intensity
  centroid sits at the centre (sub-pixel, bilinear), zero-mean and unit-norm. Each threshold is lowered to
  the 2nd percentile of the held-out split's own ratios when that is lower, so that real data is flagged
  at most ~2% on any dataset. The thresholds were chosen on planted near-copies of MNIST digits (noise,
  1-2 px shifts, brightness, JPEG, blur: flagged >= 0.9) against held-out digits and generated digits
  (flagged <= 0.05); the numbers are in the tests.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata

from ganbench.metrics.fidelity import wilson_interval
from ganbench.metrics.neighbours import KnnLists, NeighbourPass, knn_lists, kth_among
from ganbench.results.schema import Score

RELATIVE_N = 50  # nearest training samples whose mean distance normalises the nearest one (Carlini et al.)
FEATURE_THRESHOLD = 0.25  # relative distance below which a sample is a near-copy, in feature space
PIXEL_THRESHOLD = 0.4  # the same in the registered pixel descriptor
PIXEL_SIDE = 32  # descriptor resolution (area-resized)
PIXEL_SIGMA = 1.5  # low-pass before registration, in descriptor pixels
HELDOUT_QUANTILE = 0.02  # a threshold is lowered to this quantile of the held-out split's ratios when that is lower
CT_CELLS = 3  # k-means cells of the data-copying test (dgm-eval's default)
CT_MIN_GENERATED = 20  # a cell counts when it holds more than this many generated samples (tau = 20 / m)


# -- C_T ------------------------------------------------------------------------------------------------------------


def _nearest_in_cell(lists: KnnLists, query: torch.Tensor, pool: torch.Tensor, query_cell: np.ndarray,
                     pool_cell: np.ndarray) -> torch.Tensor:
    """Exact distance from each query row to its nearest pool row of the same cell."""
    pc = torch.from_numpy(pool_cell)
    qc = torch.from_numpy(query_cell)
    allowed = pc[lists.index] == qc.unsqueeze(1)
    return kth_among(lists, query, pool, allowed, 1, pool_allowed=lambda rows: pc.unsqueeze(0) == qc[rows].unsqueeze(1))


def mann_whitney_z(gen_dist: np.ndarray, test_dist: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of generated against held-out distances (U counts generated > held-out pairs, ties
    half), with the reference code's null mean mn/2 - 0.5 and variance mn(m+n+1)/12."""
    m, n = len(gen_dist), len(test_dist)
    ranks = rankdata(np.concatenate([gen_dist, test_dist]))
    u = ranks[:m].sum() - m * (m + 1) / 2
    return float((u - (m * n / 2 - 0.5)) / math.sqrt(m * n * (m + n + 1) / 12))


def data_copying(nb: NeighbourPass, cells: int = CT_CELLS, seed: int = 0, min_generated: int = CT_MIN_GENERATED
                 ) -> Score:
    """C_T of Meehan et al. 2020 (module docstring) from the pass's generated and held-out neighbour lists."""
    from ganbench.metrics.ndb import fit_cells

    if nb.held_ref_knn is None:
        raise ValueError("the data-copying test needs held-out features")
    km, t_cell = fit_cells(nb.ref.double().numpy(), cells, 10, seed)  # above 10 000 rows, fitted on a subset
    t_cell = t_cell.astype(np.int64)
    g_cell = km.predict(nb.gen.double().numpy()).astype(np.int64)
    h_cell = km.predict(nb.heldout.double().numpy()).astype(np.int64)
    g_dist = _nearest_in_cell(nb.gen_ref_knn, nb.gen, nb.ref, g_cell, t_cell).numpy()
    h_dist = _nearest_in_cell(nb.held_ref_knn, nb.heldout, nb.ref, h_cell, t_cell).numpy()
    return c_t(g_dist, g_cell, h_dist, h_cell, cells, min_generated / len(g_dist))


def c_t(gen_dist: np.ndarray, gen_cell: np.ndarray, test_dist: np.ndarray, test_cell: np.ndarray, cells: int,
        tau: float) -> Score:
    """C_T from each sample's distance to its cell's nearest training sample: the held-out-weighted mean of the
    cells' Mann-Whitney z over the cells with more than ``tau`` of the generated samples."""
    m, n = len(gen_dist), len(test_dist)
    weights, zs = [], []
    for c in range(cells):
        g, t = gen_dist[gen_cell == c], test_dist[test_cell == c]
        if len(g) / m <= tau or len(t) == 0:
            continue
        weights.append(len(t) / n)
        zs.append(mann_whitney_z(g, t))
    if not weights:
        return Score(float("nan"), None, None, None, m, True,
                     f"C_T over {cells} k-means cells: no cell holds more than {tau:.3g} of the generated samples "
                     f"and some held-out samples")
    value = float(np.dot(weights, zs) / np.sum(weights))
    return Score(value, None, None, None, m, True,
                 f"Meehan et al. C_T over {len(zs)} of {cells} k-means cells (tau = {tau:.3g}); z under the null, "
                 f"< -3: data copying; no interval (a test statistic)")


# -- AuthPct --------------------------------------------------------------------------------------------------------


def authenticity(nb: NeighbourPass) -> Score:
    """AuthPct (Alaa et al. 2022 as dgm-eval computes it): percentage of generated samples farther from their nearest
    training sample than that sample is from its own nearest training neighbour."""
    nearest = nb.gen_ref_knn.index[:, 0]
    authentic = nb.ref_radius_1[nearest] < nb.gen_nearest_ref()
    p = float(authentic.double().mean())
    std, lo, hi = wilson_interval(p, len(authentic))
    return Score(100 * p, 100 * std, 100 * lo, 100 * hi, len(authentic), True,
                 "percent authentic (Alaa et al. 2022, dgm-eval's AuthPct); Wilson 95% interval")


# -- near-copy detector ---------------------------------------------------------------------------------------------


def relative_distance(lists: KnnLists, n: int = RELATIVE_N) -> torch.Tensor:
    """Distance to the nearest over the mean distance to the ``n`` nearest (exact numerator)."""
    n = min(n, lists.k)
    return lists.dist[:, 0] / lists.dist[:, :n].mean(1).clamp_min(torch.finfo(torch.float64).tiny)


def pixel_descriptor(images: torch.Tensor, side: int = PIXEL_SIDE, sigma: float = PIXEL_SIGMA) -> torch.Tensor:
    """Registered pixel descriptor of uint8 NCHW images (module docstring): (N, side*side) float32, unit norm."""
    x = images.float()
    if x.shape[1] > 1:
        x = x.mean(1, keepdim=True)
    if x.shape[-2:] != (side, side):
        x = F.interpolate(x, size=(side, side), mode="area")
    radius = int(math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0)), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius)), k.view(1, 1, -1, 1))
    # the centroid of the intensity above each image's mean, moved to the centre
    w = (x - x.mean((2, 3), keepdim=True)).clamp_min(0) + 1e-6
    pos = torch.arange(side, dtype=torch.float32)
    total = w.sum((2, 3))[:, 0]
    cy = (w.sum(3)[:, 0] * pos).sum(1) / total - (side - 1) / 2
    cx = (w.sum(2)[:, 0] * pos).sum(1) / total - (side - 1) / 2
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2], theta[:, 1, 2] = cx * 2 / side, cy * 2 / side
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).flatten(1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _threshold(fixed: float, heldout_ratios: torch.Tensor | None) -> float:
    if heldout_ratios is None or len(heldout_ratios) == 0:
        return fixed
    return min(fixed, float(torch.quantile(heldout_ratios.double(), HELDOUT_QUANTILE)))


def near_copies(nb: NeighbourPass, images: torch.Tensor | None = None, ref_images: torch.Tensor | None = None,
                heldout_images: torch.Tensor | None = None) -> tuple[dict[str, Score], dict[str, torch.Tensor]]:
    """(scores, per-sample arrays): ``near_copy_fraction`` (flagged in feature or pixel space) and the per-space
    fractions; the arrays are each sample's relative distances and flags."""
    feat = relative_distance(nb.gen_ref_knn)
    held_feat = relative_distance(nb.held_ref_knn) if nb.held_ref_knn is not None else None
    t_feat = _threshold(FEATURE_THRESHOLD, held_feat)
    flagged_feat = feat < t_feat
    per_sample = {"relative_distance": feat, "flagged_feature": flagged_feat}
    flagged = flagged_feat.clone()
    spaces = [f"features (< {t_feat:.3g})"]
    pixel_scores = {}
    if images is not None and ref_images is not None and images.dtype == torch.uint8 and len(ref_images) > 1:
        ref_desc = pixel_descriptor(ref_images)
        centre = ref_desc.double().mean(0)
        lists = knn_lists(pixel_descriptor(images), ref_desc, RELATIVE_N, 1, centre)
        pix = relative_distance(lists)
        held_pix = None
        if heldout_images is not None and len(heldout_images):
            held_pix = relative_distance(knn_lists(pixel_descriptor(heldout_images), ref_desc, RELATIVE_N, 1, centre))
        t_pix = _threshold(PIXEL_THRESHOLD, held_pix)
        flagged_pix = pix < t_pix
        per_sample.update(relative_distance_pixel=pix, flagged_pixel=flagged_pix)
        flagged |= flagged_pix
        spaces.append(f"registered pixels (< {t_pix:.3g})")
        pixel_scores["near_copy_pixel"] = _fraction(flagged_pix, f"relative NN distance in registered pixels < "
                                                                 f"{t_pix:.3g}")
    per_sample["flagged"] = flagged
    scores = {"near_copy_fraction": _fraction(flagged, "relative NN distance (nearest / mean of "
                                                       f"{RELATIVE_N} nearest training) below threshold in "
                                                       + " or ".join(spaces)),
              "near_copy_feature": _fraction(flagged_feat, f"relative NN distance in features < {t_feat:.3g}"),
              **pixel_scores}
    return scores, per_sample


def _fraction(flags: torch.Tensor, what: str) -> Score:
    p = float(flags.double().mean())
    std, lo, hi = wilson_interval(p, len(flags))
    return Score(p, std, max(lo, 0.0), min(hi, 1.0), len(flags), False, f"fraction flagged: {what}; Wilson 95% interval")


__all__ = ["CT_CELLS", "FEATURE_THRESHOLD", "PIXEL_THRESHOLD", "RELATIVE_N", "authenticity", "c_t", "data_copying",
           "mann_whitney_z", "near_copies", "pixel_descriptor", "relative_distance"]
