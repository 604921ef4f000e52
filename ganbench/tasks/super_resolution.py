"""``super_resolution``: a generator that upscales (SRGAN): x4 super-resolution of the held-out split's images.

Each held-out high-resolution image is downscaled x4 (``ganbench.data.superres.downscale``: bicubic, antialiased,
rounded to 8 bits, the degradation the model trained on) and brought back up by the model; the outputs are scored
against their high-resolution originals by the ``superres`` metrics (PSNR and SSIM of the BT.601 luma, border of the
scale cropped, as the SR literature reports) and, as samples, against the reference split by the sample metrics.
Reference rows: the held-out images themselves, and bicubic upsampling of the same LR inputs, which every SR model
must beat on PSNR-Y (the main check).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ganbench.results.schema import Result, SampleInfo
from ganbench.tasks.base import (BICUBIC, REAL, Check, ReferenceRow, SampleSet, Task, TaskData, check_sample_count,
                                 compare_check, register_task, same_data)


def super_resolved(heldout: Any, n: int, net: torch.nn.Module | None = None) -> torch.Tensor:
    """uint8 outputs for the first ``n`` images of a held-out SR split: each image downscaled x4 and brought back up
    by ``net`` (an SR generator network) or, without one, by bicubic upsampling (the reference row)."""
    from ganbench.data.superres import bicubic_upscale, downscale

    check_sample_count(len(heldout), n, f"{heldout.dataset}/{heldout.split}")
    lr = downscale(heldout.data[:n])
    if net is None:
        return bicubic_upscale(lr)
    from ganbench.zoo.srgan import upscale

    return upscale(net, lr)


class SuperResolution(Task):
    name = "super_resolution"
    description = "x4 super-resolution of the held-out split: luma PSNR/SSIM to the originals, and sample metrics"
    output = "upscale"
    data_kinds = ("images",)
    reference_rows = (REAL, BICUBIC)
    main_metric = "psnr_y"
    families = ("superres",)

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        t0 = time.perf_counter()
        outputs = super_resolved(data.test, n, model.net)
        return SampleSet(outputs, self._info(data, n, "upscale", getattr(model, "name", None),
                                             getattr(model, "weights_sha256", None)), time.perf_counter() - t0)

    def draw_reference(self, row: ReferenceRow, data: TaskData, n: int, seed: int) -> SampleSet:
        if row is not BICUBIC:
            return super().draw_reference(row, data, n, seed)
        t0 = time.perf_counter()
        outputs = super_resolved(data.test, n)
        return SampleSet(outputs, self._info(data, n, "bicubic_upscale", None, None), time.perf_counter() - t0)

    @staticmethod
    def _info(data: TaskData, n: int, transform: str, model: str | None, sha: str | None) -> SampleInfo:
        test = data.test
        return SampleInfo(n, "transform", model=model, weights_sha256=sha, dataset=test.dataset, split=test.split,
                          split_sha256=test.sha256, transform=transform)

    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        if row is REAL:  # the originals themselves: nothing to compare them with
            return {}
        from ganbench.data.superres import SCALE

        return {"targets": data.test.data[:len(samples)], "scale": SCALE}

    def checks(self, result: Result, others: list[Result]) -> list[Check]:
        out = []
        for b in others:
            if b.kind == "reference" and b.reference_row == BICUBIC.name and same_data(result, b):
                c = compare_check(result, b, "psnr_y", "bicubic", True)
                if c is not None:
                    out.append(c)
        return out


SUPER_RESOLUTION = register_task(SuperResolution())
