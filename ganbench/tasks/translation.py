"""``paired_translation`` and ``unpaired_translation``: a translator maps domain A to domain B (Pix2Pix; CycleGAN,
DiscoGAN; or a user's model with ``translate(images)``).

Outputs are ``model.translate(a)`` for the test split's A images. The samples are compared with the B domain's
training images by FID and KID. Reference rows: the identity mapping (the inputs scored as if they were
translations: what a model must beat) and the real targets (the test split's B images: the best a translation can
look like).

- Paired: each output also against its target b (L1, PSNR, SSIM, LPIPS when its weights are present; the ``paired``
  metrics), and the extractor's classifier on the outputs against the source's class (the FCN-score idea of Isola
  et al. 2017, ``semantic_acc``). Main check: L1 below the identity row's.
- Unpaired: for models with both directions, the cycle error |G_BA(G_AB(a)) - a| (``cycle_l1``). Main check: FID
  below the identity row's.
"""

from __future__ import annotations

import time
from typing import Any

from ganbench.results.schema import Result, SampleInfo
from ganbench.tasks.base import (IDENTITY, REAL, Check, ReferenceRow, SampleSet, Task, TaskData, check_sample_count,
                                 compare_check, register_task, same_data)


class Translation(Task):
    """What the paired and unpaired tasks share: the data (train B as the reference, the test split's A as inputs),
    the identity and real-target rows, FID and KID."""

    output = "translate"
    reference_rows = (IDENTITY, REAL)
    sample_metrics = ("fid", "kid")

    def load(self, dataset: str, reference_split: str, heldout_split: str | None, resolution: int | None,
             resize: str = "bilinear") -> TaskData:
        from ganbench.data import load

        if resize != "bilinear":
            raise ValueError(f"task {self.name!r} reads its dataset's own pairs, resized by its loader (bilinear); "
                             f"resize mode {resize!r} does not apply")
        train = load(dataset, reference_split, resolution)
        self._check_kind(dataset, train.kind)
        test = load(dataset, heldout_split or "test", resolution)
        return TaskData(dataset, train.domain("b"), f"{reference_split} (B domain)", None, test,
                        int(test.b.shape[-1]))

    def _inputs(self, data: TaskData, n: int) -> Any:
        test = data.test
        check_sample_count(min(len(test.a), len(test.b)), n, f"{test.dataset}/{test.split} (A and B)")
        return test.a[:n]

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        sources = self._inputs(data, n)
        t0 = time.perf_counter()
        outputs = model.translate(sources)
        extras = {}
        reverse = getattr(model, "reverse", None)
        back = reverse() if callable(reverse) else None
        if back is not None:
            extras["reconstructions"] = back.translate(outputs)
        info = SampleInfo(n, "transform", model=getattr(model, "name", None),
                          weights_sha256=getattr(model, "weights_sha256", None), dataset=data.test.dataset,
                          split=data.test.split, split_sha256=data.test.sha256, domain="a", transform="translate")
        return SampleSet(outputs, info, time.perf_counter() - t0, extras)

    def draw_reference(self, row: ReferenceRow, data: TaskData, n: int, seed: int) -> SampleSet:
        test = data.test
        sources = self._inputs(data, n)
        if row is IDENTITY:
            return SampleSet(sources, SampleInfo(n, "transform", dataset=test.dataset, split=test.split,
                                                 split_sha256=test.sha256, domain="a", transform="identity"))
        if row is REAL:
            return SampleSet(test.b[:n], SampleInfo(n, "split", dataset=test.dataset, split=test.split,
                                                    split_sha256=test.sha256, domain="b"))
        raise ValueError(f"task {self.name!r} has no reference row {row.name!r}")

    def row_name(self, row: ReferenceRow, data: TaskData) -> str:
        return f"real targets ({data.test.split} B)" if row is REAL else row.label

    def _beats_identity(self, result: Result, others: list[Result], higher_is_better: bool) -> list[Check]:
        out = []
        for i in others:
            if i.kind == "reference" and i.reference_row == IDENTITY.name and same_data(result, i):
                c = compare_check(result, i, self.main_metric, "identity", higher_is_better)
                if c is not None:
                    out.append(c)
        return out


class PairedTranslation(Translation):
    name = "paired_translation"
    description = "A -> B translation of aligned pairs: L1/PSNR/SSIM to the target, semantic accuracy, FID/KID"
    data_kinds = ("paired",)
    main_metric = "l1"
    families = ("paired", "semantic")

    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        test, n = data.test, len(samples)
        labels = test.labels_b if row is REAL else test.labels_a
        extras: dict[str, Any] = {"targets": test.b[:n]}
        if labels is not None:
            extras["source_labels"] = labels[:n]
        return extras

    def checks(self, result: Result, others: list[Result]) -> list[Check]:
        return self._beats_identity(result, others, False)


class UnpairedTranslation(Translation):
    name = "unpaired_translation"
    description = "A -> B translation of two image sets: FID/KID against B, and the cycle error"
    data_kinds = ("unpaired", "paired")
    main_metric = "fid"
    families = ("cycle",)

    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        if "reconstructions" not in samples.extras:
            return {}
        return {"sources": data.test.a[:len(samples)], "reconstructions": samples.extras["reconstructions"]}

    def checks(self, result: Result, others: list[Result]) -> list[Check]:
        return self._beats_identity(result, others, False)


PAIRED_TRANSLATION = register_task(PairedTranslation())
UNPAIRED_TRANSLATION = register_task(UnpairedTranslation())
