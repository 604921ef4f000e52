"""Memorisation and duplicate tests on features.

- Memorisation: the distance from each generated sample to its nearest training sample, against the
  same distance for held-out real samples. A generator that copies its training set sits far below the
  held-out curve. ``copy_fraction`` is the share of generated samples closer to the training set than the
  1st percentile of held-out nearest-training distances (about 0.01 for a generator that does not copy);
  ``nn_ratio`` is the ratio of median nearest-training distances, generated over held-out (about 1).
- Birthday paradox (Arora & Zhang 2017, "Do GANs learn the distribution? Some theory and empirics"): in a
  batch of s samples from a distribution of support size S, about C(s, 2) / S pairs coincide. Pairs
  closer than any two held-out real samples in equally large batches count as duplicates (the paper
  inspected the closest pairs by eye); the support size is estimated as C(s, 2) / (duplicates per batch),
  and reported as a lower bound when no duplicate was found.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import chi2

from ganbench.results.schema import Score
from ganbench.metrics.prdc import CHUNK


def nearest_distances(x: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """Distance from each row of ``x`` to its nearest row of ``pool``."""
    return torch.cat([torch.cdist(x[i:i + CHUNK].double(), pool.double()).min(1).values for i in range(0, len(x), CHUNK)])


def memorization(gen: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor) -> dict[str, Score]:
    d_gen, d_held = nearest_distances(gen, train), nearest_distances(heldout, train)
    threshold = torch.quantile(d_held, 0.01)
    copied = (d_gen < threshold).double()
    p = float(copied.mean())
    std = math.sqrt(max(p * (1 - p), 0.0) / len(gen))
    ratio = float(d_gen.median() / d_held.median())
    return {
        "copy_fraction": Score(p, std, max(0.0, p - 1.96 * std), min(1.0, p + 1.96 * std), len(gen), False,
                               f"binomial; threshold = 1st percentile of {len(heldout)} held-out NN distances"),
        "nn_ratio": Score(ratio, None, None, None, len(gen), True,
                          "median NN distance to train, generated / held-out"),
    }


def _min_pair_distances(x: torch.Tensor, batch: int, batches: int, rng: np.random.Generator) -> list[torch.Tensor]:
    out = []
    for _ in range(batches):
        idx = torch.from_numpy(rng.choice(len(x), size=batch, replace=False))
        d = torch.cdist(x[idx].double(), x[idx].double())
        iu = torch.triu_indices(batch, batch, offset=1)
        out.append(d[iu[0], iu[1]])
    return out


def birthday(gen: torch.Tensor, heldout: torch.Tensor, batch: int = 200, batches: int = 10,
             seed: int = 0) -> dict[str, Score]:
    batch = min(batch, len(gen), len(heldout))
    if batch < 10:
        raise ValueError(f"the birthday test needs batches of at least 10 samples, got {batch}")
    rng = np.random.default_rng(seed)
    threshold = min(float(d.min()) for d in _min_pair_distances(heldout, batch, batches, rng))
    dups = np.array([int((d < threshold).sum()) for d in _min_pair_distances(gen, batch, batches, rng)])
    pairs = batch * (batch - 1) / 2
    total = int(dups.sum())
    # Poisson 95% interval on the duplicate count (exact, via chi-square quantiles)
    lo_count = chi2.ppf(0.025, 2 * total) / 2 if total > 0 else 0.0
    hi_count = chi2.ppf(0.975, 2 * total + 2) / 2
    seen = pairs * batches
    support = seen / total if total > 0 else seen
    method = (f"C(s,2)/duplicates over {batches} batches of {batch}; Poisson interval on the count"
              if total > 0 else f"lower bound: no duplicates in {batches} batches of {batch}")
    return {"birthday_support": Score(float(support), None, float(seen / hi_count),
                                      float(seen / lo_count) if lo_count > 0 else None, len(gen), True, method),
            "duplicate_pairs": Score(total / batches, float(dups.std(ddof=1)) if batches > 1 else None, None, None,
                                     batch, False, f"per batch of {batch}; threshold {threshold:.4g} = closest "
                                                   f"pair among held-out batches of the same size")}
