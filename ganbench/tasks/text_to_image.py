"""``text_to_image``: a generator given a caption (the text-conditioned GAN on captioned digits).

Outputs are ``model.sample(n, seed)``; the captions it drew for them (the model's ``generator_inputs`` from the same
seed) are kept with the samples, and the ``caption`` metrics (``ganbench.metrics.text2img``) score the images
against them: R-precision with the extractor's classifier as the judge, and caption-attribute agreement. The real
row of the same data gets the same scores for the held-out images with their own captions (the ceiling). Main
check: R-precision above chance (1 / 10 digits); and FID below an untrained network's where the suite has one.
"""

from __future__ import annotations

from typing import Any

import torch

from ganbench.results.schema import Result
from ganbench.tasks.base import REAL, UNTRAINED, Check, ReferenceRow, SampleSet, Task, TaskData, register_task
from ganbench.tasks.unconditional import drawn_samples

CHANCE = 0.1  # one digit class in ten


class TextToImage(Task):
    name = "text_to_image"
    description = "captioned samples: sample metrics, R-precision and caption-attribute agreement"
    output = "sample"
    data_kinds = ("images",)
    reference_rows = (REAL, UNTRAINED)
    main_metric = "r_precision"
    families = ("caption",)

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        samples = drawn_samples(model, n, seed)
        entry = getattr(model, "entry", None)
        if entry is not None and entry.generator_inputs is not None:
            # the captions sample(n, seed) drew: the model's inputs from the same seed
            inputs = entry.example_inputs(model.config, n, torch.Generator().manual_seed(seed))
            if len(inputs) > 1:
                samples.extras["tokens"] = inputs[1]
        return samples

    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        if "tokens" in samples.extras:
            return {"tokens": samples.extras["tokens"]}
        return self.companion_extras(row, samples, data) if row is REAL else {}

    def companion_extras(self, row: ReferenceRow, samples: SampleSet, data: TaskData) -> dict[str, Any]:
        """The real images with their own captions: the scores a model's captioned samples are compared with."""
        from ganbench.data.captions import build_captions

        test = data.test
        if row is not REAL or test is None or test.labels is None or samples.outputs.dtype != torch.uint8:
            return {}
        return {"tokens": build_captions(samples.outputs, test.labels[:len(samples)]).tokens}

    def checks(self, result: Result, others: list[Result]) -> list[Check]:
        out = super().checks(result, others)
        s = result.scores.get("r_precision")
        if s is not None:
            out.append(Check(result.run_id, f"R-precision {s.value:.3f} > chance {CHANCE:.3f}", bool(s.value > CHANCE)))
        return out


TEXT_TO_IMAGE = register_task(TextToImage())
