"""``unconditional``: a generator draws samples from latents alone (DCGAN, LSGAN, StyleGAN2, ProGAN, the MLP GAN on
the toy sets, or a user's model with ``sample(n, seed)``).

Outputs are ``model.sample(n, seed)``. Every sample metric that applies is computed against the reference split and
the held-out split. Reference rows: the held-out real images (the best a model can look like at this sample count)
and an untrained network of the same config (what training must beat). Main check: FID below the untrained
network's.
"""

from __future__ import annotations

import time
from typing import Any

from ganbench.results.schema import SampleInfo
from ganbench.tasks.base import REAL, UNTRAINED, SampleSet, Task, TaskData, check_sample_count, register_task


def drawn_samples(model: Any, n: int, seed: int) -> SampleSet:
    """``model.sample(n, seed)`` with its provenance and the time it took."""
    check_sample_count(n, n, "the request")
    t0 = time.perf_counter()
    outputs = model.sample(n, seed=seed)
    seconds = time.perf_counter() - t0
    info = SampleInfo(len(outputs), "generator", seed=seed, model=getattr(model, "name", None),
                      weights_sha256=getattr(model, "weights_sha256", None))
    return SampleSet(outputs, info, seconds)


class Unconditional(Task):
    name = "unconditional"
    description = "samples from latents: every sample metric against the reference and held-out splits"
    output = "sample"
    data_kinds = ("images", "points")
    reference_rows = (REAL, UNTRAINED)
    main_metric = "fid"

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        return drawn_samples(model, n, seed)


UNCONDITIONAL = register_task(Unconditional())
