"""The one evaluation path: a model or a sample set, scored under a protocol through its task, into one Result.

Every command that scores calls ``evaluate``: ``ganbench eval``, ``ganbench check`` (a model candidate),
``ganbench verify`` (a weight set's card), and each stage of the suite runner. It

1. loads the task's data (``Task.load``: the reference split, the held-out split, the test inputs);
2. draws the outputs, unless it is given them (``Task.draw`` for a model, ``Task.draw_reference`` for a data
   reference row);
3. extracts features once per extractor (the reference's from the cache), sharded over processes when asked;
4. computes the requested metrics, or the task's defaults (its sample metrics and its families), from one
   ``MetricInputs``, and the scores that need the model (``Task.model_scores``);
5. builds the Result (``ganbench.results.schema.make_result``) with the typed provenance of its samples.

Nothing is written here. Metrics never see the model; tasks draw from it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ganbench.features import ExtractorSpec, extract, get_extractor, reference_features, reference_key
from ganbench.metrics import MetricInputs, compute, get_metric, metrics_for
from ganbench.metrics.frechet import GaussianStats
from ganbench.paths import cache_dir
from ganbench.results.schema import DatasetInfo, ExtractorInfo, ModelInfo, Result, make_result
from ganbench.tasks import REAL, UNTRAINED, ReferenceRow, SampleSet, Task, TaskData, get_task


@dataclass(frozen=True)
class Protocol:
    """What makes two numbers comparable: the data, the extractor, the sample count and seed, the metrics."""

    dataset: str  # registry name of the dataset the samples are compared with
    extractor: str  # feature extractor registry name
    n: int  # outputs scored
    seed: int = 0  # sampling seed of a generator, and the seed of every bootstrap and subset
    resolution: int | None = None  # image side of the comparison (None: the samples' own)
    reference_split: str = "train"  # split whose features are the reference
    heldout_split: str | None = "test"  # held-out split (memorisation, the real row, a task's test inputs)
    metrics: tuple[str, ...] = ()  # metric names; empty: the task's defaults

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ValueError(f"the sample count n must be a positive integer, got {self.n!r}")
        if self.resolution is not None and (not isinstance(self.resolution, int) or self.resolution < 4):
            raise ValueError(f"resolution must be an integer >= 4 (or None for the data's own), got {self.resolution!r}")


@dataclass
class Row:
    """Which row a result is: a model, or one of a task's reference rows, and how the result names it."""

    reference: ReferenceRow | None = None  # None for a model's row
    name: str | None = None  # the model's (or row's) name in the result; default from the model or the task
    run_id: str | None = None  # default: from the name, weights and protocol
    train: dict[str, Any] | None = None  # training info of a model ganbench trained
    timings: dict[str, float] = field(default_factory=dict)  # e.g. the training time


def task_of(model: Any, task: str | Task | None) -> Task:
    """The task a model is scored under: the one named, else the model's entry's, else ``unconditional``."""
    if isinstance(task, Task):
        return task
    if task is None:
        entry = getattr(model, "entry", None)
        task = getattr(entry, "task", None) or getattr(model, "task", None) or "unconditional"
    return get_task(task)


def evaluate(protocol: Protocol, *, task: str | Task | None = None, model: Any = None,
             samples: SampleSet | None = None, row: Row | None = None, companions: tuple[Task, ...] = (),
             nproc: int = 1, progress: bool = True, data: TaskData | None = None) -> Result:
    """Score a model's outputs (or given samples) under ``protocol`` through the task.

    Args:
        task: The task (or its name); default the model's.
        model: A model to draw from (``sample``/``translate``/``upscale`` as the task says) and to compute the task's
            model scores with. For a reference row other than ``untrained``, None.
        samples: Outputs already drawn (a folder, or the runner's stored samples); drawn here when None.
        row: A model's row (default), or a reference row with its name.
        companions: Other tasks scored on the same data, whose extras join a reference row (the real row of a
            dataset that also has text-to-image models gets the caption scores).
        nproc: Processes the outputs' feature extraction is sharded over (torch.distributed, gloo).
        data: The task's data, when the caller already loaded it for this protocol.

    Raises:
        ValueError: For a protocol the task cannot be scored under, too few samples, or a metric whose requirements
            the evaluation does not meet.
    """
    row = row or Row()
    task = task_of(model, task)
    ref_row = row.reference
    draws_model = ref_row is None or ref_row is UNTRAINED
    if samples is None and draws_model and task.output == "sample":
        if model is None:
            raise ValueError("evaluate needs a model to draw from, or the samples to score")
        samples = task.draw(model, data, protocol.n, protocol.seed)  # sampling reads no data
    resolution = protocol.resolution
    if resolution is None and samples is not None and samples.outputs.dtype == torch.uint8:
        resolution = int(samples.outputs.shape[-1])  # no resolution given: the reference is brought to the samples'
    data = data or task.load(protocol.dataset, protocol.reference_split, protocol.heldout_split, resolution)
    if samples is None:
        if draws_model:
            if model is None:
                raise ValueError("evaluate needs a model to draw from, or the samples to score")
            samples = task.draw(model, data, protocol.n, protocol.seed)
        else:
            samples = task.draw_reference(ref_row, data, protocol.n, protocol.seed)
    spec = get_extractor(protocol.extractor)
    kind = data.reference.kind
    if spec.input_kind != kind:
        raise ValueError(f"extractor {spec.name!r} takes {spec.input_kind}, dataset {protocol.dataset!r} has {kind}")
    if len(samples) < 1:
        raise ValueError("there are no samples to score")
    timings = {**row.timings, "sample": samples.seconds}

    t0 = time.perf_counter()
    gen_feats, gen_stats = _features(spec, samples.outputs, nproc, progress)
    ref_feats = reference_features(spec, data.reference, progress=progress)
    held_feats = reference_features(spec, data.heldout, progress=progress) if data.heldout is not None else None
    timings["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    extras = task.metric_extras(samples, data, ref_row)
    families = set(task.families)
    if ref_row is not None and ref_row is not UNTRAINED:
        for other in companions:
            if other.name != task.name:
                extras = {**other.companion_extras(ref_row, samples, data), **extras}
                families |= set(other.families)
    inputs = MetricInputs(gen_feats, ref_feats, spec.feature_layer, spec.logits_layer, protocol.dataset,
                          protocol.seed, heldout=held_feats,
                          images=samples.outputs if samples.outputs.dtype == torch.uint8 else None,
                          ref_stats=reference_stats(spec, data.reference, ref_feats[spec.feature_layer]),
                          gen_stats=gen_stats, classifier=spec.name, **extras)
    scores = compute(_metric_names(protocol, task, families, inputs), inputs)
    timings["metrics"] = time.perf_counter() - t0
    if model is not None and ref_row is None:
        t0 = time.perf_counter()
        task_scores = task.model_scores(model, samples, data, protocol.seed)
        if task_scores:
            scores.update(task_scores)
            timings["task_metrics"] = time.perf_counter() - t0

    _, weights_sha = spec.weights()
    ref = data.reference
    dataset = DatasetInfo(protocol.dataset, data.reference_label, ref.sha256, len(ref), data.resolution, ref.resize,
                          ref.source)
    extractor = ExtractorInfo(spec.name, weights_sha, spec.feature_layer, spec.logits_layer, spec.input_resize)
    info = dataclasses.replace(samples.info, n=len(samples))
    model_info = _model_info(model, task, data, row)
    run_id = row.run_id or _default_run_id(model_info, protocol)
    return make_result(run_id, "model" if ref_row is None else "reference", task.name, model_info, dataset,
                       extractor, info, scores, timings, reference_row=ref_row.name if ref_row else None)


def _metric_names(protocol: Protocol, task: Task, families: set[str], inputs: MetricInputs) -> list[str]:
    """The protocol's metrics when it names some; else the task's sample metrics and every metric of its
    families that the evaluation can compute."""
    if protocol.metrics:
        return list(protocol.metrics)
    names = metrics_for(("sample",), inputs, task.sample_metrics)
    return names + [m for m in metrics_for(tuple(sorted(families)), inputs) if get_metric(m).family != "sample"]


def _features(spec: ExtractorSpec, outputs: torch.Tensor, nproc: int, progress: bool
              ) -> tuple[dict[str, torch.Tensor], GaussianStats | None]:
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be a positive integer, got {nproc!r}")
    if nproc > 1 or _in_process_group():
        from ganbench.features.distributed import extract_in_group, extract_sharded

        if _in_process_group():
            feats, sums = extract_in_group(spec, outputs)
        else:
            feats, sums = extract_sharded(spec, outputs, nproc)
        return feats, GaussianStats.from_sums(int(sums["n"].item()), sums["sum"], sums["sum_outer"])
    return extract(spec, outputs, progress=progress), None


def _model_info(model: Any, task: Task, data: TaskData, row: Row) -> ModelInfo:
    if row.reference is not None and row.reference is not UNTRAINED:
        return ModelInfo(row.name or task.row_name(row.reference, data), None, {}, None, None)
    if model is None:
        return ModelInfo(row.name or "samples", None, {}, None, row.train)
    entry = getattr(model, "entry", None)
    config = getattr(model, "config", None)
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
    name = row.name or getattr(model, "name", None) or getattr(entry, "name", "model")
    return ModelInfo(name, getattr(entry, "name", None), cfg, getattr(model, "weights_sha256", None), row.train)


def _default_run_id(model: ModelInfo, protocol: Protocol) -> str:
    sha = (model.weights_sha256 or "none")[:8]
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in model.name)[:60]
    return f"{safe}_{sha}-{protocol.dataset}-s{protocol.seed}"


def _in_process_group() -> bool:
    """True under torchrun (or any caller that initialised torch.distributed with several ranks)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def reference_stats(spec: ExtractorSpec, split: Any, features: torch.Tensor) -> GaussianStats:
    """The reference Gaussian with its covariance factor (see ``frechet``), cached on disk beside the features."""
    from safetensors.torch import load_file, save_file

    from ganbench.results.store import atomic_path

    path = cache_dir() / "stats" / (f"v2-{spec.name}-{split.dataset}-{split.split}-{reference_key(spec, split)}-"
                                    f"{spec.feature_layer}.safetensors")
    if path.exists():
        t = load_file(str(path))
        return GaussianStats(t["mu"].numpy(), t["sigma"].numpy(), int(t["n"].item()), t["root"].numpy(),
                             bool(t["root_is_cholesky"].item()))
    stats = GaussianStats.from_features(features, with_root=True)
    with atomic_path(path) as tmp:
        save_file({"mu": torch.from_numpy(stats.mu), "sigma": torch.from_numpy(stats.sigma),
                   "root": torch.from_numpy(stats.root), "root_is_cholesky": torch.tensor(stats.root_is_cholesky),
                   "n": torch.tensor(stats.n)}, str(tmp))
    return stats


__all__ = ["Protocol", "REAL", "Row", "UNTRAINED", "evaluate", "reference_stats", "task_of"]
