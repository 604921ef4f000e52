"""Mode-collapse scores on 2D mixtures with known modes (ring8, grid25), as PacGAN (Lin et al. 2018) reports.

A sample is high quality when it lies within 3 standard deviations of its nearest mode centre; a mode is
captured when it holds at least 20% of the high-quality samples a uniform spread would give it (PacGAN
counts a mode lost below 20 of 2500 samples on 25 modes, i.e. 20% of 100); the reverse KL divergence
is KL(generated mode histogram || uniform) over high-quality samples.
"""

from __future__ import annotations

import numpy as np
import torch

from ganbench.metrics.fidelity import bootstrap_interval
from ganbench.results.schema import Score


def mode_stats(points: np.ndarray, modes: np.ndarray, std: float) -> tuple[float, float, float]:
    """(modes captured, high-quality fraction, reverse KL) of an (N, 2) sample."""
    d = np.linalg.norm(points[:, None, :] - modes[None, :, :], axis=2)
    nearest, dist = d.argmin(1), d.min(1)
    hq = dist <= 3 * std
    counts = np.bincount(nearest[hq], minlength=len(modes))
    captured = float((counts >= 0.2 * len(points) / len(modes)).sum())
    if counts.sum() == 0:
        return captured, 0.0, float("inf")
    p = counts / counts.sum()
    nz = p > 0
    rkl = float(np.sum(p[nz] * np.log(p[nz] * len(modes))))
    return captured, float(hq.mean()), rkl


def mode_scores(points: torch.Tensor, modes: torch.Tensor, std: float, seed: int = 0,
                bootstrap: int = 100) -> dict[str, Score]:
    x, m = points.double().numpy(), modes.double().numpy()
    values = mode_stats(x, m, std)
    rng = np.random.default_rng(seed)
    reps = np.array([mode_stats(x[rng.integers(0, len(x), len(x))], m, std) for _ in range(bootstrap)])
    out = {}
    for i, (name, hib) in enumerate((("modes", True), ("hq_fraction", True), ("reverse_kl", False))):
        col = reps[:, i]
        finite = col[np.isfinite(col)]
        std_, lo, hi = bootstrap_interval(finite) if len(finite) > 1 else (None, None, None)
        out[name] = Score(values[i], std_, lo, hi, len(x), hib, f"bootstrap({bootstrap})")
    return out


def _stacked_stats(triples: np.ndarray, modes: int) -> tuple[float, float]:
    counts = np.bincount(triples, minlength=modes)
    p = counts / counts.sum()
    nz = p > 0
    return float(nz.sum()), float(np.sum(p[nz] * np.log(p[nz] * modes)))


def stacked_mode_scores(digit_logits: torch.Tensor, seed: int = 0, bootstrap: int = 100) -> dict[str, Score]:
    """Stacked MNIST: modes covered out of 1000 and KL(generated triple histogram || uniform).

    The triple of each image is the classifier's argmax on its three channels ("digits" logits, N x 30).
    VEEGAN/PacGAN count over 26000 samples; with N samples a perfect generator covers about
    1000 * (1 - exp(-N / 1000)) modes, so compare rows at equal N (the real-data row gives the ceiling).
    """
    if digit_logits.dim() != 2 or digit_logits.shape[1] != 30:
        raise ValueError(f"stacked modes need (N, 30) per-channel digit logits, got {tuple(digit_logits.shape)}")
    digits = digit_logits.reshape(-1, 3, 10).argmax(2).numpy()
    triples = digits @ np.array([100, 10, 1])
    values = _stacked_stats(triples, 1000)
    rng = np.random.default_rng(seed)
    reps = np.array([_stacked_stats(triples[rng.integers(0, len(triples), len(triples))], 1000) for _ in range(bootstrap)])
    out = {}
    for i, (name, hib) in enumerate((("stacked_modes", True), ("stacked_kl", False))):
        std, lo, hi = bootstrap_interval(reps[:, i])
        out[name] = Score(values[i], std, lo, hi, len(triples), hib, f"bootstrap({bootstrap}); of 1000 modes")
    return out
