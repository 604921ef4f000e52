"""The task protocol: what a kind of generative task owns, in one object.

A task (``unconditional``, ``class_conditional``, ``text_to_image``, ``likelihood``, ``paired_translation``,
``unpaired_translation``, ``super_resolution``, or one a user registers) says:

- which data it is scored on (``load``: the reference the samples are compared with, the held-out split, the
  task's test inputs);
- how outputs are drawn from a model (``draw``: sample, translate, upscale), and from the data for its reference
  rows (``draw_reference``: the real split, the identity mapping, bicubic upsampling; an untrained network's row is
  drawn like a model's);
- its metric family and what those metrics read beside the outputs (``families``, ``sample_metrics``,
  ``metric_extras``: targets, source labels, round trips, captions), and the scores that need the model itself
  (``model_scores``: CAS, bits/dim);
- its main metric and the checks that a model beats its reference rows (``checks``).

``ganbench.evaluate.evaluate`` is the one function that turns a model or a sample set into a ``Result`` through its
task; the runner, ``ganbench eval``, ``check`` and ``verify`` all call it. A task never writes anything.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ganbench.registry import TASKS
from ganbench.results.schema import Result, SampleInfo, Score


@dataclass(frozen=True)
class ReferenceRow:
    """A reference row of a leaderboard: not a model, but what a model is compared with."""

    name: str  # stored in Result.reference_row
    label: str  # how a table names the row
    meaning: str  # what it shows


REAL = ReferenceRow("real", "real data", "held-out real data scored like samples: the best a model can look like "
                                         "at this sample count")
UNTRAINED = ReferenceRow("untrained", "untrained", "a freshly initialised network of the same config: what training "
                                                   "must beat")
IDENTITY = ReferenceRow("identity", "identity mapping", "the inputs scored as if they were translations: what a "
                                                        "translation model must beat")
BICUBIC = ReferenceRow("bicubic", "bicubic x4 upsampling", "bicubic upsampling of the low-resolution inputs: what a "
                                                           "super-resolution model must beat")
REFERENCE_ROWS = {r.name: r for r in (REAL, UNTRAINED, IDENTITY, BICUBIC)}


def reference_row(name: str) -> ReferenceRow:
    if name not in REFERENCE_ROWS:
        raise ValueError(f"unknown reference row {name!r}; valid: {', '.join(REFERENCE_ROWS)}")
    return REFERENCE_ROWS[name]


@dataclass
class SampleSet:
    """Outputs to score and where they came from."""

    outputs: torch.Tensor  # uint8 NCHW images, or float (N, 2) points
    info: SampleInfo  # typed provenance (n is len(outputs))
    seconds: float = 0.0  # time spent drawing them
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # what the task's metrics read beside the
    # outputs and the data cannot recompute: "reconstructions" (G_BA(G_AB(a))), "tokens" (captions drawn)

    def __len__(self) -> int:
        return len(self.outputs)


@dataclass
class TaskData:
    """The data a task is scored on."""

    dataset: str  # registry name of the dataset
    reference: Any  # the Split whose features are the reference (FID, KID, PR, ...)
    reference_label: str  # how results name that split ("train", "train (B domain)")
    heldout: Any | None  # held-out real Split for memorisation and the birthday test; None when the task has none
    test: Any  # what outputs are drawn from: the held-out Split, or the test TranslationSplit
    resolution: int | None  # image side of the comparison


@dataclass(frozen=True)
class Check:
    """One thing a model must beat, checked."""

    run_id: str  # the model's result
    what: str  # what was compared, with both numbers
    passed: bool


def check_sample_count(n_available: int, n_requested: int, what: str) -> None:
    if not isinstance(n_requested, int) or isinstance(n_requested, bool) or n_requested < 1:
        raise ValueError(f"the sample count must be a positive integer, got {n_requested!r}")
    if n_available < n_requested:
        raise ValueError(f"{what} has {n_available} samples; the evaluation asks for {n_requested}")


def _finite(s: Score | None) -> bool:
    return s is not None and isinstance(s.value, (int, float)) and math.isfinite(s.value)


def compare_check(result: Result, other: Result, metric: str, what: str, higher_is_better: bool) -> Check | None:
    """``result`` must beat ``other`` on ``metric`` (a missing or non-finite score fails the check)."""
    a, b = result.scores.get(metric), other.scores.get(metric)
    if a is None or b is None:
        return None
    ok = _finite(a) and _finite(b) and (a.value > b.value if higher_is_better else a.value < b.value)
    sign = ">" if higher_is_better else "<"
    return Check(result.run_id, f"{metric} {a.value:.4g} {sign} {what} {b.value:.4g}", bool(ok))


def same_data(result: Result, other: Result) -> bool:
    d, e = result.dataset, other.dataset
    return d is not None and e is not None and d.name == e.name and d.reference_sha256 == e.reference_sha256


def load_resized(dataset: str, split: str, resolution: int | None, resize: str = "bilinear") -> Any:
    """A split at ``resolution`` through resize mode ``resize``: the dataset's own loader for ``bilinear`` (the
    loaders resize that way), else the native images through the named mode."""
    import dataclasses

    from ganbench.data.core import resize_images
    from ganbench.data.reference import load_dataset_split

    if resize == "bilinear" or resolution is None:
        return load_dataset_split(dataset, split, resolution)
    native = load_dataset_split(dataset, split, None)
    if native.kind != "images":
        raise ValueError(f"resize mode {resize!r} applies to image datasets; {dataset!r} holds {native.kind}")
    images, used = resize_images(native.data, resolution, resize)
    return dataclasses.replace(native, data=images, resize=used)


class Task(abc.ABC):
    """A kind of generative task; subclass it, set the class attributes, and register an instance with
    ``register_task``."""

    name: ClassVar[str]  # registry name, stored in Result.task
    description: ClassVar[str]
    output: ClassVar[str]  # how outputs are drawn: "sample", "translate", "upscale", or the task's own verb
    data_kinds: ClassVar[tuple[str, ...]]  # split kinds the task is scored on ("images", "points", "paired", ...)
    reference_rows: ClassVar[tuple[ReferenceRow, ...]]  # rows a suite adds beside its models
    main_metric: ClassVar[str]  # the score the task's main check compares
    families: ClassVar[tuple[str, ...]] = ()  # metric families beside the sample metrics (ganbench.metrics.base)
    sample_metrics: ClassVar[tuple[str, ...] | None] = None  # sample metrics by default; None: every one that applies

    # ---- data
    def load(self, dataset: str, reference_split: str, heldout_split: str | None, resolution: int | None,
             resize: str = "bilinear") -> TaskData:
        """The reference split, the held-out split and the test inputs (default: a plain image or point dataset),
        brought to ``resolution`` through the resize mode ``resize`` (``ganbench.data.resize``)."""
        reference = load_resized(dataset, reference_split, resolution, resize)
        heldout = load_resized(dataset, heldout_split, resolution, resize) if heldout_split else None
        self._check_kind(dataset, reference.kind)
        res = int(reference.data.shape[-1]) if reference.kind == "images" else None
        return TaskData(dataset, reference, reference_split, heldout, heldout, res)

    def _check_kind(self, dataset: str, kind: str) -> None:
        if kind not in self.data_kinds:
            raise ValueError(f"task {self.name!r} is scored on {'/'.join(self.data_kinds)} data; dataset {dataset!r} "
                             f"has {kind}")

    # ---- outputs
    @abc.abstractmethod
    def draw(self, model: Any, data: TaskData | None, n: int, seed: int) -> SampleSet:
        """``n`` outputs of ``model`` (a trained or untrained one) for this task. A task whose ``output`` is
        "sample" draws from latents alone and is called with ``data`` None before the data is loaded (so the
        reference can be brought to the samples' resolution)."""

    def draw_reference(self, row: ReferenceRow, data: TaskData, n: int, seed: int) -> SampleSet:
        """The outputs of a data reference row (default: the first ``n`` held-out images)."""
        if row is not REAL:
            raise ValueError(f"task {self.name!r} has no reference row {row.name!r}")
        split = data.test
        if split is None:
            raise ValueError(f"task {self.name!r}: the real-data row needs a held-out split")
        check_sample_count(len(split), n, f"{split.dataset}/{split.split}")
        return SampleSet(split.data[:n], SampleInfo(n, "split", dataset=split.dataset, split=split.split,
                                                    split_sha256=split.sha256))

    def row_name(self, row: ReferenceRow, data: TaskData) -> str:
        """How a result names a data reference row."""
        if row is REAL:
            split = getattr(data.test, "split", None)
            return f"real data ({split} split)" if split else "real data"
        return row.label

    # ---- metrics
    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        """``MetricInputs`` fields beside the outputs' features (targets, source labels, ...), for a model's row
        (``row`` None) or a reference row."""
        return {}

    def model_scores(self, model: Any, samples: SampleSet, data: TaskData, seed: int) -> dict[str, Score]:
        """Scores that need the model itself, not only its outputs (CAS, bits/dim)."""
        return {}

    def companion_extras(self, row: ReferenceRow, samples: SampleSet, data: TaskData) -> dict[str, Any]:
        """What this task adds to a reference row another task draws on the same data (e.g. the real images'
        own captions, so the real row gets the caption scores a text-to-image model is compared with)."""
        return {}

    # ---- checks
    def checks(self, result: Result, others: list[Result]) -> list[Check]:
        """What a model's result must beat among the results of the same data (default: a lower FID than the
        untrained network of the same zoo entry)."""
        out = []
        for u in others:
            if (u.kind == "reference" and u.reference_row == UNTRAINED.name and same_data(result, u)
                    and u.model.entry is not None and u.model.entry == result.model.entry):
                c = compare_check(result, u, "fid", "untrained", False)
                if c is not None:
                    out.append(c)
        return out

    def __repr__(self) -> str:
        return f"<task {self.name}>"


def register_task(task: Task) -> Task:
    """Add a task instance to the registry (checked to be a ``Task`` with what the protocol needs)."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task takes a Task instance, got {type(task).__name__}")
    for attr in ("name", "description", "output", "data_kinds", "reference_rows", "main_metric"):
        if not hasattr(task, attr):
            raise TypeError(f"task {type(task).__name__} does not set {attr!r}")
    TASKS.register(task.name, task, output=task.output, description=task.description,
                   rows=",".join(r.name for r in task.reference_rows), main=task.main_metric)
    return task


def get_task(name: str) -> Task:
    return TASKS.get(name)


__all__ = ["BICUBIC", "Check", "IDENTITY", "REAL", "REFERENCE_ROWS", "ReferenceRow", "SampleSet", "Task", "TaskData",
           "UNTRAINED", "check_sample_count", "compare_check", "get_task", "reference_row", "register_task",
           "same_data"]
