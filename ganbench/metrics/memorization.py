"""Memorisation and duplicate tests on features, read from the evaluation's one neighbour pass.

- Memorisation: the distance from each generated sample to its nearest training sample, against the
  same distance for held-out real samples. A generator that copies its training set sits far below the
  held-out curve. ``copy_fraction`` is the share of generated samples closer to the training set than the
  1st percentile of held-out nearest-training distances (about 0.01 for a generator that does not copy);
  ``nn_ratio`` is the ratio of median nearest-training distances, generated over held-out (about 1).
  Both see exact copies; near-copies (a copy shifted, blurred, re-encoded) move too far in absolute
  distance, and ``ganbench.metrics.copies`` adds the scores that catch them.
- Birthday paradox (Arora & Zhang 2017, "Do GANs learn the distribution? Some theory and empirics"): in a
  batch of s samples from a distribution of support size S, about C(s, 2) / S pairs coincide. Pairs
  closer than any two held-out real samples in equally large batches count as duplicates (the paper
  inspected the closest pairs by eye); the support size is estimated as C(s, 2) / (duplicates per batch),
  and reported as a lower bound when no duplicate was found. The generated pairs below the threshold are
  read from the generated samples' neighbour lists (a row whose list ends before the threshold is
  compared with its batch directly).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import chi2

from ganbench.metrics.neighbours import KnnLists, NeighbourPass, exact_row_distances, exact_sq_distances, knn_lists
from ganbench.results.schema import Score


def memorization(gen: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor,
                 neighbours: NeighbourPass | None = None) -> dict[str, Score]:
    nb = neighbours if neighbours is not None else NeighbourPass(gen, train, heldout, kernel=False)
    d_gen, d_held = nb.gen_nearest_ref(), nb.heldout_nearest_ref()
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
        d = exact_row_distances(x[idx], x[idx])
        iu = torch.triu_indices(batch, batch, offset=1)
        out.append(d[iu[0], iu[1]])
    return out


def _batches(n: int, batch: int, batches: int, rng: np.random.Generator) -> list[torch.Tensor]:
    return [torch.from_numpy(rng.choice(n, size=batch, replace=False)) for _ in range(batches)]


def close_pairs(lists: KnnLists, gen: torch.Tensor, members: torch.Tensor, threshold: float) -> int:
    """Unordered pairs of rows of ``gen`` within ``members`` closer than ``threshold`` (strict), from the rows'
    neighbour lists within ``gen``; exact."""
    n = gen.shape[0]
    inside = torch.zeros(n, dtype=torch.bool)
    inside[members] = True
    t2 = threshold * threshold
    cand = inside[lists.index[members]]
    d2 = lists.dist[members].pow(2)
    band = lists.band[members]
    sure = cand & (d2 + band < t2)
    doubt = cand & ~sure & (d2 - band < t2)
    if doubt.any():
        r, c = doubt.nonzero(as_tuple=True)
        sure[r, c] = exact_sq_distances(gen, gen, members[r], lists.index[members][r, c]) < t2
    ordered = sure.sum(1)
    # a row whose list may end before the threshold: compare it with its batch directly
    incomplete = (lists.beyond2[members] < t2).nonzero(as_tuple=True)[0]
    for r in incomplete.tolist():
        d = exact_row_distances(gen[members[r]:members[r] + 1], gen[members])[0]
        d[r] = float("inf")
        ordered[r] = int((d < threshold).sum())
    return int(ordered.sum()) // 2  # each pair is found from both of its rows


def birthday(gen: torch.Tensor, heldout: torch.Tensor, batch: int = 200, batches: int = 10,
             seed: int = 0, neighbours: NeighbourPass | None = None) -> dict[str, Score]:
    batch = min(batch, len(gen), len(heldout))
    if batch < 10:
        raise ValueError(f"the birthday test needs batches of at least 10 samples, got {batch}")
    rng = np.random.default_rng(seed)
    threshold = min(float(d.min()) for d in _min_pair_distances(heldout, batch, batches, rng))
    if neighbours is not None:
        lists, gen = neighbours.gen_knn, neighbours.gen
    else:
        gen = gen.float()
        lists = knn_lists(gen, gen, min(16, len(gen) - 1), 1, gen.double().mean(0), same=True)
    dups = np.array([close_pairs(lists, gen, idx, threshold) for idx in _batches(len(gen), batch, batches, rng)])
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
