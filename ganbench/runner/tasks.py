"""The scores a row of a suite gets for its task, beside the sample metrics (FID, KID, PRDC, ...) every row gets.

A leaderboard scores every model by the same sample metrics against the same reference; each task also has the
numbers its papers report, which need more than the samples (a likelihood, labelled or captioned draws, the
low-resolution inputs), so they are gathered here, in the runner, which holds the models; ``ganbench.metrics``
computes each score from tensors only:

- ``likelihood`` (PixelCNN): bits/dim of the held-out split under the model (``ganbench.zoo.pixelcnn``); uniform
  over 256 levels is exactly 8;
- ``class-conditional``: the Classification Accuracy Score with its real-data and augmentation rows
  (``ganbench.metrics.cas``), on balanced samples of the suite's sampling seed;
- ``text-to-image``: R-precision and caption-attribute agreement of the samples against the captions they were
  generated from (``ganbench.metrics.text2img``); the real-data row gets the same scores for the held-out images
  with their own captions, the ceiling a model can reach;
- ``super-resolution``: PSNR and SSIM on the Y channel against the high-resolution held-out images
  (``ganbench.metrics.superres``), for the models and for the bicubic reference row.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from ganbench.results.schema import Score

# the recorded source of super-resolution samples, which the HTML report parses to redraw them
_SR_SOURCE = re.compile(r"^(?P<who>bicubic x4 of|generator on) the downscaled split (?P<dataset>[a-z0-9_]+)/"
                        r"(?P<split>[a-z0-9_]+) sha256 (?P<sha>[0-9a-f]{64})$")


def super_resolved(heldout: Any, n: int, net: torch.nn.Module | None = None) -> tuple[torch.Tensor, str]:
    """(uint8 outputs, source) for the first ``n`` images of a held-out SR split: each image is downscaled x4 and
    brought back up by ``net`` (an SR generator network) or, without one, by bicubic upsampling (the reference row).
    The source names the split and its content hash, so ``parse_super_resolved`` can rebuild the same outputs."""
    from ganbench.data.superres import bicubic_upscale, downscale

    lr = downscale(heldout.data[:n])
    if net is None:
        out, who = bicubic_upscale(lr), "bicubic x4 of"
    else:
        from ganbench.zoo.srgan import upscale

        out, who = upscale(net, lr), "generator on"
    return out, f"{who} the downscaled split {heldout.dataset}/{heldout.split} sha256 {heldout.sha256}"


def parse_super_resolved(source: str) -> dict[str, Any] | None:
    """The parts of a ``super_resolved`` source (bicubic: bool, dataset, split, sha256), or None for other sources."""
    m = _SR_SOURCE.match(source)
    if m is None:
        return None
    return {"bicubic": m["who"].startswith("bicubic"), "dataset": m["dataset"], "split": m["split"], "sha256": m["sha"]}


def task_scores(kind: str, dataset_task: str | None, suite_tasks: set[str], generator: Any, samples: torch.Tensor,
                reference: Any, heldout: Any, seed: int) -> dict[str, Score]:
    """Scores of one row's task.

    Args:
        kind: The row's job kind: "model", "untrained", "real" or "bicubic".
        dataset_task: The dataset's registry task ("super-resolution"), None for plain image sets.
        suite_tasks: Tasks of the models the suite trains on this dataset (the real row's extra scores follow them).
        generator: The row's ``Generator`` (None for the real and bicubic rows).
        samples: The row's uint8 samples (for SR rows: the outputs for the held-out split's first images).
        reference, heldout: The dataset's reference (training) and held-out splits.
        seed: The suite's sampling seed, which drew ``samples``.
    """
    n = len(samples)
    if kind == "bicubic" or (kind == "model" and generator.entry.task == "super-resolution"):
        from ganbench.metrics.superres import superres_scores

        return superres_scores(samples, heldout.data[:n], seed=seed)
    if kind == "real":
        if "text-to-image" in suite_tasks and heldout.labels is not None and dataset_task is None:
            from ganbench.data.captions import build_captions
            from ganbench.metrics.text2img import caption_scores

            return caption_scores(samples, build_captions(samples, heldout.labels[:n]).tokens)
        return {}
    if kind != "model":
        return {}
    task = generator.entry.task
    if task == "likelihood":
        from ganbench.zoo.pixelcnn import bits_per_dim

        return {"bits_per_dim": bits_per_dim(generator, heldout.data)}
    if task == "class-conditional":
        from ganbench.metrics.cas import classification_accuracy_scores, conditional_samples

        if reference.labels is None or heldout.labels is None:
            raise ValueError(f"CAS needs class labels; dataset {reference.dataset!r} has none")
        images, labels = conditional_samples(generator, n, seed, generator.config.n_classes)
        return classification_accuracy_scores(images, labels, reference.data, reference.labels, heldout.data,
                                              heldout.labels)
    if task == "text-to-image":
        from ganbench.metrics.text2img import caption_scores
        from ganbench.zoo.text2img import caption_inputs

        tokens = caption_inputs(generator.config, n, torch.Generator().manual_seed(seed))[1]  # as sample(n, seed)
        return caption_scores(samples, tokens)
    return {}


__all__ = ["parse_super_resolved", "super_resolved", "task_scores"]
