"""``likelihood``: a likelihood model that also samples (the PixelCNN baseline GANs are compared with).

Outputs are ``model.sample(n, seed)``, scored by the same sample metrics as a GAN's. The model score is bits/dim of
the held-out split under the model (van den Oord et al. 2016; uniform over 256 levels is exactly 8), which is its
main check.
"""

from __future__ import annotations

from typing import Any

from ganbench.results.schema import Result, Score
from ganbench.tasks.base import REAL, Check, SampleSet, Task, TaskData, register_task
from ganbench.tasks.unconditional import drawn_samples

UNIFORM_BITS = 8.0  # bits/dim of the uniform distribution over 256 levels


class Likelihood(Task):
    name = "likelihood"
    description = "a likelihood model's samples, and bits/dim of the held-out split"
    output = "sample"
    data_kinds = ("images",)
    reference_rows = (REAL,)
    main_metric = "bits_per_dim"

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        return drawn_samples(model, n, seed)

    def model_scores(self, model: Any, samples: SampleSet, data: TaskData, seed: int) -> dict[str, Score]:
        from ganbench.zoo.pixelcnn import bits_per_dim

        if data.heldout is None:
            raise ValueError("bits/dim is measured on a held-out split; the protocol has none")
        return {"bits_per_dim": bits_per_dim(model, data.heldout.data)}

    def checks(self, result: Result, others: list[Result]) -> list[Check]:
        out = super().checks(result, others)
        s = result.scores.get("bits_per_dim")
        if s is not None:
            out.append(Check(result.run_id, f"bits/dim {s.value:.3f} < {UNIFORM_BITS:g} (uniform)",
                             bool(s.value < UNIFORM_BITS)))
        return out


LIKELIHOOD = register_task(Likelihood())
