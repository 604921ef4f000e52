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

The spread is a bootstrap over the samples (``VENDI_BOOTSTRAP`` replicates; a replicate repeats some samples, which
can only lower the score, so the interval sits a little below the point estimate).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from ganbench.metrics.fidelity import bootstrap_interval
from ganbench.results.schema import Score

VENDI_BOOTSTRAP = 30  # bootstrap replicates for the interval
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


def vendi_score(features: torch.Tensor | np.ndarray, seed: int = 0, bootstrap: int = VENDI_BOOTSTRAP) -> Score:
    """Vendi score of ``features`` (N, D) with the cosine kernel, and its bootstrap interval over the samples."""
    x = normalized_rows(features)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"the Vendi score needs at least 2 samples, got {n}")
    value = vendi_from_rows(x)
    rng = np.random.default_rng(seed)
    gram = x @ x.T if n <= d else None
    reps = np.empty(bootstrap)
    for i in range(bootstrap):
        idx = rng.integers(0, n, n)
        if gram is not None:
            # n <= d: a replicate repeats sample u c_u times; K[idx][:, idx] / n has the nonzero eigenvalues of
            # C^(1/2) K[u][:, u] C^(1/2) / n over the distinct samples (about 63% of n: a quarter of the work)
            u, c = np.unique(idx, return_counts=True)
            w = np.sqrt(c)
            reps[i] = entropy_exp(scipy.linalg.eigvalsh(gram[np.ix_(u, u)] * np.outer(w, w) / n, check_finite=False))
        else:
            reps[i] = vendi_from_rows(x[idx])
    std, lo, hi = bootstrap_interval(reps)
    return Score(value, std, lo, hi, n, True, f"bootstrap({bootstrap}) over samples; cosine kernel, q=1")


def pixel_vectors(images: torch.Tensor, side: int = PIXEL_SIDE) -> torch.Tensor:
    """uint8 NCHW -> (N, C*h*w) float64 pixel values in [0, 255], area-averaged to at most ``side`` x ``side``."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"pixel Vendi takes uint8 NCHW images, got {images.dtype} {tuple(images.shape)}")
    x = images.double()
    h, w = x.shape[-2:]
    if max(h, w) > side:
        x = F.adaptive_avg_pool2d(x, (min(h, side), min(w, side)))
    return x.flatten(1)


def pixel_vendi_score(images: torch.Tensor, seed: int = 0, bootstrap: int = VENDI_BOOTSTRAP) -> Score:
    """Vendi score of the images' pixels (cosine kernel), as ``vendi_score.image_utils.pixel_vendi_score``."""
    score = vendi_score(pixel_vectors(images), seed=seed, bootstrap=bootstrap)
    score.method += f"; pixels (area-averaged to at most {PIXEL_SIDE}x{PIXEL_SIDE})"
    return score


__all__ = ["PIXEL_SIDE", "VENDI_BOOTSTRAP", "normalized_rows", "pixel_vectors", "pixel_vendi_score", "vendi_from_rows",
           "vendi_score"]
