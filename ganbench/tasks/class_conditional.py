"""``class_conditional``: a generator given a class label (the conditional DCGAN, or a user's model whose
``sample(n, seed, labels=...)`` draws the requested classes).

Outputs are ``model.sample(n, seed, labels=...)`` with sample i of class ``i % n_classes`` (``conditional_samples``;
plain ``model.sample(n, seed)`` for a model without ``labels``), scored by the sample metrics. The labels travel with
the samples (``SampleSet.extras["labels"]``; the real row's are the held-out split's), so the sample metrics include the
intra-class FID (StudioGAN's definition, ``ganbench.metrics.intra_fid``: the mean over classes of the FID between the
samples of a class and the reference images of that class) on the protocol's extractor. The model score is
the Classification Accuracy Score (Ravuri & Vinyals 2019, ``ganbench.metrics.cas``): a classifier trained on
labelled samples, tested on the real held-out split, beside the same classifier trained on real data and on real +
generated data. Main check: CAS above chance (1 / classes); and FID below an untrained network's where the suite
has one.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

import torch

from ganbench.results.schema import Result, SampleInfo, Score
from ganbench.tasks.base import REAL, UNTRAINED, Check, ReferenceRow, SampleSet, Task, TaskData, register_task
from ganbench.tasks.unconditional import drawn_samples, reference_image_extras


def conditional_samples(sampler: Any, n: int, seed: int, n_classes: int, batch_size: int = 500
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples with balanced labels (sample i has class ``i % n_classes``) from a class-conditional sampler.

    Args:
        sampler: Anything with ``sample(n, seed, labels=...)`` returning uint8 NCHW images of the requested classes
            (``ganbench.zoo.cdcgan.ConditionalGenerator``, or a user's model).
    """
    if n < n_classes:
        raise ValueError(f"CAS needs at least one sample per class: n={n} < n_classes={n_classes}")
    labels = torch.arange(n) % n_classes
    takes_batch_size = "batch_size" in inspect.signature(sampler.sample).parameters  # users' samplers may not
    extra = {"batch_size": batch_size} if takes_batch_size else {}
    images = sampler.sample(n, seed, labels=labels, **extra)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4 or len(images) != n:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"the sampler must return {n} uint8 NCHW images for CAS, got {got}")
    return images, labels


class ClassConditional(Task):
    name = "class_conditional"
    description = "class-conditional samples: sample metrics, and the Classification Accuracy Score"
    output = "sample"
    data_kinds = ("images",)
    reference_rows = (REAL, UNTRAINED)
    main_metric = "cas"

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        n_classes = getattr(getattr(model, "config", None), "n_classes", None)
        takes_labels = "labels" in inspect.signature(model.sample).parameters
        if n_classes is None or not takes_labels or n < n_classes:
            return drawn_samples(model, n, seed)
        t0 = time.perf_counter()
        images, labels = conditional_samples(model, n, seed, int(n_classes))
        info = SampleInfo(len(images), "generator", seed=seed, model=getattr(model, "name", None),
                          weights_sha256=getattr(model, "weights_sha256", None))
        return SampleSet(images, info, time.perf_counter() - t0, extras={"labels": labels})

    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        """The reference images (FWD), and for intra-class FID the class of every output (drawn for, or the held-out
        split's for the real row) with the reference split's labels."""
        extras = reference_image_extras(data)
        labels = samples.extras.get("labels")
        if row is REAL and data.heldout is not None and data.heldout.labels is not None:
            labels = data.heldout.labels[:len(samples)]
        ref_labels = getattr(data.reference, "labels", None)  # a statistics-file reference has none
        if labels is not None and ref_labels is not None and len(labels) == len(samples):
            extras.update(labels=torch.as_tensor(labels).long(), ref_labels=torch.as_tensor(ref_labels).long())
        return extras

    def model_scores(self, model: Any, samples: SampleSet, data: TaskData, seed: int) -> dict[str, Score]:
        from ganbench.metrics.cas import classification_accuracy_scores

        reference, heldout = data.reference, data.heldout
        if reference.labels is None or heldout is None or heldout.labels is None:
            raise ValueError(f"CAS needs class labels in the reference and held-out splits; dataset "
                             f"{data.dataset!r} has none")
        n_classes = int(getattr(model.config, "n_classes", int(reference.labels.max()) + 1))
        images, labels = conditional_samples(model, len(samples), seed, n_classes)
        return classification_accuracy_scores(images, labels, reference.data, reference.labels, heldout.data,
                                              heldout.labels)

    def checks(self, result: Result, others: list[Result]) -> list[Check]:
        out = super().checks(result, others)
        s = result.scores.get("cas")
        if s is not None:
            classes = int(result.model.config.get("n_classes", 10))
            out.append(Check(result.run_id, f"CAS {s.value:.3f} > chance {1 / classes:.3f}", bool(s.value > 1 / classes)))
        return out


CLASS_CONDITIONAL = register_task(ClassConditional())
