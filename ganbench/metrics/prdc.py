"""Density and coverage (Naeem, Oh, Uh, Choi & Yoo 2020, "Reliable Fidelity and Diversity Metrics for
Generative Models"), matching the reference implementation ``clovaai/generative-evaluation-prdc``.

Real k-NN radii are the distance to the k-th nearest other real sample; a generated sample counts for
density once per real ball that contains it (strictly inside, as the reference does), divided by k;
coverage is the fraction of real samples whose ball contains at least one generated sample. As in the
paper, real and generated sets are equally large: a larger reference set is subsampled (seeded) to the
generated count ``subsets`` times and the scores averaged, since coverage depends on the ratio of the two.
Every distance comes from the evaluation's one neighbour pass (``ganbench.metrics.neighbours``); subset
radii are read from the reference's neighbour lists.

Spreads (over generated samples, reference fixed; coverage measured in
``benchmarks/results/interval_coverage.md``):
- density is a mean over generated samples of a per-sample count (balls containing it / k), independent
  given the reference: standard error sd / sqrt(N), plus the reference subsets' variance over their number;
- coverage is a fraction of reference balls reached by any generated sample: a delete-a-group jackknife
  over the generated samples (each group's reach is recorded per ball during the pass; a tenth left out at a
  time, the variance averaged over 2 random partitions), plus the subsets' variance over their number.
  Resampling generated samples with replacement would bias coverage down, as duplicates cover nothing new.
  The jackknife overstates coverage's spread (measured 1.04-1.3 of it with a tenth left out, more with larger
  groups): the interval errs wide.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganbench.metrics.frechet import jackknife_std
from ganbench.metrics.neighbours import NeighbourPass
from ganbench.results.schema import Score

Z95 = 1.959963984540054


def density_coverage(gen: torch.Tensor, ref: torch.Tensor, k: int = 5, seed: int = 0, subsets: int = 10,
                     neighbours: NeighbourPass | None = None) -> dict[str, Score]:
    """Density and coverage; a larger reference is subsampled to the generated count ``subsets`` times.

    ``neighbours``: the evaluation's pass (its k and subsets are used), else one is computed.
    """
    if len(ref) <= k or len(gen) < 2:
        raise ValueError(f"density/coverage with k={k} need more than {k} reference samples and 2 generated, "
                         f"got {len(ref)} and {len(gen)}")
    nb = neighbours if neighbours is not None else NeighbourPass(gen, ref, k_prc=min(3, k), k_dc=k, seed=seed,
                                                                  subsets=subsets, kernel=False)
    n, draws = len(gen), len(nb.subset_radius_dc)
    groups, partitions = nb.coverage_design
    per_sample = nb.density_values().numpy()  # mean over subsets
    dens_subset = (nb.density_count.sum(1) / (n * nb.k_dc)).numpy()
    cov_subset = np.array([float(nb.coverage_in(s).double().mean()) for s in range(draws)])
    cov_left_out = np.array([np.mean([float(nb.coverage_in(s, b).double().mean()) for s in range(draws)])
                             for b in range(partitions * groups)]).reshape(partitions, groups)
    between = draws > 1
    dens_std = math.sqrt(per_sample.var(ddof=1) / n + (dens_subset.var(ddof=1) / draws if between else 0.0))
    cov_std = math.sqrt(jackknife_std(cov_left_out) ** 2 + (cov_subset.var(ddof=1) / draws if between else 0.0))
    where = (f"mean over {draws} reference subsets of {n}" if between else "one reference set") + f"; k={nb.k_dc}"
    density = float(per_sample.mean())
    coverage = float(cov_subset.mean())
    return {
        "density": Score(density, dens_std, max(density - Z95 * dens_std, 0.0), density + Z95 * dens_std, n, True,
                         f"{where}; std: standard error over generated samples, reference fixed"
                         + (" (+ subset variance)" if between else "") + "; normal 95% interval"),
        "coverage": Score(coverage, cov_std, max(coverage - Z95 * cov_std, 0.0), min(coverage + Z95 * cov_std, 1.0),
                          n, True, f"{where}; std: jackknife({partitions} partitions x {groups} groups) over generated "
                          f"samples, reference fixed"
                          + (" (+ subset variance)" if between else "") + "; normal 95% interval"),
    }


__all__ = ["density_coverage"]
