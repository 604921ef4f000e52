"""Vendi score (Friedman & Dieng 2023, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning", TMLR,
arXiv:2210.02410): the exponential of the Shannon entropy of the eigenvalues of K / n, for a similarity kernel K with
K(x, x) = 1 over n samples. It is an effective number of distinct samples: n identical samples score 1, k equally
weighted, mutually orthogonal clusters score k, n mutually orthogonal samples score n. Higher is more diverse.

The kernel is the one of the reference package ``vendi-score`` (``vendi_score.vendi.score_X``/``score_dual``) and of
dgm-eval's ``compute_vendi_score``: the cosine similarity (linear kernel on L2-normalised rows, a zero row left at
zero as scikit-learn's ``normalize`` leaves it), with q = 1. The nonzero eigenvalues of X X^T / n and X^T X / n are
the same, so the smaller of the two Gram matrices is decomposed (``score_X`` when n < d, ``score_dual`` otherwise, as
``vendi_score.image_utils`` chooses).

Two scores: ``vendi`` on the extractor's distance-layer features (any extractor), and ``vendi_pixels`` on the images
themselves, flattened, as ``vendi_score.image_utils.pixel_vendi_score`` does. What differs there: the reference resizes
every image to 32x32 with PIL; ganbench leaves images of side <= 32 as they are and area-averages larger ones down
to at most 32x32 (the Gram matrix stays at most 3072-d).

The spread is a delete-a-group jackknife over the samples (``VENDI_GROUPS`` random groups, each left out once, the
score recomputed from the Gram matrix less that group's part; t interval), as FID's: a bootstrap replicate needs a
new Gram matrix (N x D^2 at N > D: 30 of them took 60 s at 50 000 x 2048), a left-out group only its own rows.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from ganbench.metrics.frechet import jackknife_interval
from ganbench.metrics.neighbours import jackknife_groups
from ganbench.results.schema import Score

VENDI_GROUPS = 10  # groups of the delete-a-group jackknife
PIXEL_SIDE = 32  # pixel Vendi: larger images are area-averaged down to this side


def normalized_rows(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float64 rows scaled to unit L2 norm (a zero row stays zero, as scikit-learn's ``normalize``)."""
    a = x.double().numpy() if torch.is_tensor(x) else np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms > 0, norms, 1.0)


def entropy_exp(eigenvalues: np.ndarray) -> float:
    """exp(-sum p log p) over the positive eigenvalues (round-off negatives and zeros carry no entropy)."""
    p = eigenvalues[eigenvalues > 0]
    return float(math.exp(-(p * np.log(p)).sum()))


def vendi_from_rows(x: np.ndarray) -> float:
    """Vendi score (q = 1) of unit-norm rows under the linear kernel, from the smaller Gram matrix."""
    n, d = x.shape
    gram = x @ x.T if n <= d else x.T @ x
    return entropy_exp(scipy.linalg.eigvalsh(gram / n, check_finite=False))


def vendi_score(features: torch.Tensor | np.ndarray, seed: int = 0, groups: int = VENDI_GROUPS) -> Score:
    """Vendi score of ``features`` (N, D) with the cosine kernel, and its delete-a-group jackknife interval over the
    samples (groups of at least two; no interval below 4 samples)."""
    x = normalized_rows(features)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"the Vendi score needs at least 2 samples, got {n}")
    value = vendi_from_rows(x)
    groups = min(groups, n // 2)
    if groups < 2:
        return Score(value, None, None, None, n, True, f"no interval: a jackknife needs at least 4 samples, got {n}; "
                     "cosine kernel, q=1")
    assign = jackknife_groups(n, groups, seed)[0].numpy()
    reps = np.empty(groups)
    if n <= d:
        gram = x @ x.T
        for g in range(groups):
            keep = np.flatnonzero(assign != g)
            reps[g] = entropy_exp(scipy.linalg.eigvalsh(gram[np.ix_(keep, keep)] / len(keep), check_finite=False))
    else:
        gram = x.T @ x
        for g in range(groups):
            part = x[assign == g]
            reps[g] = entropy_exp(scipy.linalg.eigvalsh((gram - part.T @ part) / (n - len(part)), check_finite=False))
    std, low, high = jackknife_interval(value, reps, floor=1.0)
    return Score(value, std, low, high, n, True,
                 f"jackknife({groups} groups) over samples; t({groups - 1}) 95% interval; cosine kernel, q=1")


def pixel_vectors(images: torch.Tensor, side: int = PIXEL_SIDE) -> torch.Tensor:
    """uint8 NCHW -> (N, C*h*w) float64 pixel values in [0, 255], area-averaged to at most ``side`` x ``side``."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"pixel Vendi takes uint8 NCHW images, got {images.dtype} {tuple(images.shape)}")
    x = images.double()
    h, w = x.shape[-2:]
    if max(h, w) > side:
        x = F.adaptive_avg_pool2d(x, (min(h, side), min(w, side)))
    return x.flatten(1)


def pixel_vendi_score(images: torch.Tensor, seed: int = 0, groups: int = VENDI_GROUPS) -> Score:
    """Vendi score of the images' pixels (cosine kernel), as ``vendi_score.image_utils.pixel_vendi_score``."""
    score = vendi_score(pixel_vectors(images), seed=seed, groups=groups)
    score.method += f"; pixels (area-averaged to at most {PIXEL_SIDE}x{PIXEL_SIDE})"
    return score


__all__ = ["PIXEL_SIDE", "VENDI_GROUPS", "normalized_rows", "pixel_vectors", "pixel_vendi_score", "vendi_from_rows",
           "vendi_score"]
