"""Density and coverage (Naeem, Oh, Uh, Choi & Yoo 2020, "Reliable Fidelity and Diversity Metrics for
Generative Models"), matching the reference implementation ``clovaai/generative-evaluation-prdc``.

Real k-NN radii are the distance to the k-th nearest other real sample; a generated sample counts for
density once per real ball that contains it (strictly inside, as the reference does), divided by k;
coverage is the fraction of real samples whose ball contains at least one generated sample. Spreads are
As in the paper, real and generated sets are equally large: a larger reference set is subsampled
(seeded) to the generated count, since coverage depends on the ratio of the two.
"""

from __future__ import annotations

import numpy as np
import torch

from ganbench.results.schema import Score

CHUNK = 2048  # rows of the distance matrix computed at once


def kth_neighbour_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    radii = []
    for i in range(0, len(x), CHUNK):
        d = torch.cdist(x[i:i + CHUNK], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the row itself is at distance 0
    return torch.cat(radii)


def _ball_counts(real: torch.Tensor, radii: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per fake sample: number of real balls containing it; per real sample: is any fake inside)."""
    per_fake = torch.zeros(len(fake), dtype=torch.float64)
    covered = torch.zeros(len(real), dtype=torch.bool)
    for i in range(0, len(real), CHUNK):
        inside = torch.cdist(real[i:i + CHUNK], fake) < radii[i:i + CHUNK, None]
        per_fake += inside.sum(0).double()
        covered[i:i + CHUNK] = inside.any(1)
    return per_fake, covered


def density_coverage(gen: torch.Tensor, ref: torch.Tensor, k: int = 5, seed: int = 0,
                     subsets: int = 10) -> dict[str, Score]:
    """Density and coverage; a larger reference is subsampled to the generated count ``subsets`` times.

    The value is the mean over those reference subsets and the spread their standard deviation (resampling
    generated samples with replacement would bias coverage down, as duplicates cover nothing new). With a
    reference no larger than the generated set there is one subset and no spread.
    """
    if len(ref) <= k or len(gen) < 2:
        raise ValueError(f"density/coverage with k={k} need more than {k} reference samples and 2 generated, "
                         f"got {len(ref)} and {len(gen)}")
    rng = np.random.default_rng(seed)
    real_all, fake = ref.double(), gen.double()
    draws = subsets if len(real_all) > len(fake) else 1
    dens, covs = [], []
    for _ in range(draws):
        real = real_all
        if len(real_all) > len(fake):
            real = real_all[torch.from_numpy(np.sort(rng.choice(len(real_all), len(fake), replace=False)))]
        per_fake, covered = _ball_counts(real, kth_neighbour_radii(real, k), fake)
        dens.append(float(per_fake.mean() / k))
        covs.append(float(covered.double().mean()))
    out = {}
    for name, reps in (("density", np.asarray(dens)), ("coverage", np.asarray(covs))):
        mean = float(reps.mean())
        if draws > 1:
            std = float(reps.std(ddof=1))
            half = 1.96 * std / np.sqrt(draws)
            out[name] = Score(mean, std, mean - half, mean + half, len(gen), True,
                              f"mean over {draws} reference subsets of {len(fake)}; std across them; k={k}")
        else:
            out[name] = Score(mean, None, None, None, len(gen), True, f"k={k}, one reference set")
    return out
