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
