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
from pathlib import Path
from typing import Any

import torch

from ganbench.data.core import image_folder
from ganbench.data.reference import StatsReference, load_stats, parse_reference
from ganbench.features import ExtractorSpec, extract, get_extractor, reference_features, reference_key
from ganbench.metrics import MetricInputs, compute, get_metric, metrics_for
from ganbench.metrics.frechet import GaussianStats
from ganbench.metrics.threads import metric_threads
from ganbench.paths import cache_dir
from ganbench.protocols import Protocol
from ganbench.results.schema import DatasetInfo, ExtractorInfo, ModelInfo, Result, make_result
from ganbench.tasks import REAL, UNTRAINED, ReferenceRow, SampleSet, Task, TaskData, get_task
from ganbench.tasks.base import load_resized


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
    if data is None:
        data = (reference_data(protocol, task, resolution, samples) if protocol.reference is not None
                else task.load(protocol.dataset, protocol.reference_split, protocol.heldout_split, resolution,
                               resize=protocol.resize))
    if samples is None:
        if draws_model:
            if model is None:
                raise ValueError("evaluate needs a model to draw from, or the samples to score")
            samples = task.draw(model, data, protocol.n, protocol.seed)
        else:
            samples = task.draw_reference(ref_row, data, protocol.n, protocol.seed)
    spec = get_extractor(protocol.extractor)
    stats_only = isinstance(data.reference, StatsReference)
    kind = "images" if stats_only else data.reference.kind
    if spec.input_kind != kind:
        raise ValueError(f"extractor {spec.name!r} takes {spec.input_kind}, dataset {protocol.dataset!r} has {kind}")
    if len(samples) < 1:
        raise ValueError("there are no samples to score")
    samples = _at_resolution(samples, data.resolution, protocol.resize)
    timings = {**row.timings, "sample": samples.seconds}

    t0 = time.perf_counter()
    gen_feats, gen_stats = _features(spec, samples.outputs, nproc, progress)
    ref_feats = None if stats_only else reference_features(spec, data.reference, progress=progress)
    held_feats = reference_features(spec, data.heldout, progress=progress) if data.heldout is not None else None
    timings["features"] = time.perf_counter() - t0
    if stats_only:
        _check_stats_extractor(data.reference, spec)

    t0 = time.perf_counter()
    extras = task.metric_extras(samples, data, ref_row)
    families = set(task.families)
    if ref_row is not None and ref_row is not UNTRAINED:
        for other in companions:
            if other.name != task.name:
                extras = {**other.companion_extras(ref_row, samples, data), **extras}
                families |= set(other.families)
    ref_stats = (GaussianStats(data.reference.mu, data.reference.sigma, data.reference.n) if stats_only
                 else reference_stats(spec, data.reference, ref_feats[spec.feature_layer]))
    inputs = MetricInputs(gen_feats, ref_feats, spec.feature_layer, spec.logits_layer, protocol.dataset,
                          protocol.seed, heldout=held_feats,
                          images=samples.outputs if samples.outputs.dtype == torch.uint8 else None,
                          ref_stats=ref_stats, gen_stats=gen_stats, classifier=spec.name, **extras)
    names, skipped = _metric_names(protocol, task, families, inputs)
    from_model = tuple(m for m in names if "model" in get_metric(m).needs)  # computed by the task (PPL)
    if from_model and (model is None or ref_row is not None):
        raise ValueError(f"metrics {', '.join(from_model)} need the model itself; this evaluation scores "
                         f"{'a reference row' if ref_row is not None else 'samples without their model'}")
    with metric_threads() as n_threads:  # the metric stage's pools sized to the free cores (issue 16, item 6)
        scores = compute([m for m in names if m not in from_model], inputs)
    timings["metrics"] = time.perf_counter() - t0
    if model is not None and ref_row is None:
        t0 = time.perf_counter()
        task_scores = _model_scores(task, model, samples, data, protocol, from_model)
        if task_scores:
            scores.update(task_scores)
            timings["task_metrics"] = time.perf_counter() - t0

    _, weights_sha = spec.weights()
    ref = data.reference
    dataset = DatasetInfo(data.dataset, data.reference_label, ref.sha256, len(ref), data.resolution, ref.resize,
                          ref.source)
    extractor = ExtractorInfo(spec.name, weights_sha, spec.feature_layer, spec.logits_layer, spec.input_resize)
    info = dataclasses.replace(samples.info, n=len(samples))
    model_info = _model_info(model, task, data, row)
    run_id = row.run_id or _default_run_id(model_info, protocol)
    return make_result(run_id, "model" if ref_row is None else "reference", task.name, model_info, dataset,
                       extractor, info, scores, timings, reference_row=ref_row.name if ref_row else None,
                       protocol=protocol.name, skipped=skipped, metric_threads=n_threads)


def _model_scores(task: Task, model: Any, samples: SampleSet, data: TaskData, protocol: Protocol,
                  from_model: tuple[str, ...]) -> dict:
    """The task's scores that need the model, with the model-needing metrics the protocol names (PPL)."""
    import inspect

    if not from_model:
        return task.model_scores(model, samples, data, protocol.seed)
    if "metrics" not in inspect.signature(task.model_scores).parameters:
        raise ValueError(f"task {task.name!r} computes no model metric; {', '.join(from_model)} cannot be asked of it")
    scores = task.model_scores(model, samples, data, protocol.seed, metrics=from_model, extractor=protocol.extractor)
    missing = [m for m in from_model if not any(k in scores for k in get_metric(m).scores)]
    if missing:
        raise ValueError(f"task {task.name!r} did not compute {', '.join(missing)} for "
                         f"{getattr(model, 'name', 'the model')}")
    return scores


def _metric_names(protocol: Protocol, task: Task, families: set[str], inputs: MetricInputs
                  ) -> tuple[list[str], dict[str, str]]:
    """(metrics to compute, metrics left out with the reason). The protocol's metrics when it names some (one this
    evaluation cannot compute is an error, raised by ``compute``); else the task's sample metrics and every metric
    of its families that the evaluation can compute. A default metric that only a reference's features (not its
    statistics) allow is left out, with the reason, when the reference is a statistics file."""
    if protocol.metrics:
        return list(protocol.metrics), {}
    names = metrics_for(("sample",), inputs, task.sample_metrics)
    names += [m for m in metrics_for(tuple(sorted(families)), inputs) if get_metric(m).family != "sample"]
    skipped = {}
    if inputs.ref is None:
        from dataclasses import replace

        with_features = replace(inputs, ref={inputs.feature_layer: inputs.feature("gen")[:0]},
                                heldout=inputs.heldout)
        for m in metrics_for(("sample",), with_features, task.sample_metrics):
            if m not in names:
                skipped[m] = "needs the reference's features; the reference is a statistics file (mu, sigma only)"
    return names, skipped


def _at_resolution(samples: SampleSet, resolution: int | None, mode: str) -> SampleSet:
    """The samples brought to the comparison resolution through the protocol's resize mode (the one the reference
    went through), recorded in their provenance; unchanged when they have it already."""
    out = samples.outputs
    if resolution is None or out.dtype != torch.uint8 or tuple(out.shape[-2:]) == (resolution, resolution):
        return samples
    from ganbench.data.core import check_size
    from ganbench.data.resize import resize_uint8

    check_size(len(out), out.shape[1], resolution, resolution, "resizing the samples", bytes_per_value=4)
    info = dataclasses.replace(samples.info, resize=mode)
    return dataclasses.replace(samples, outputs=resize_uint8(out, resolution, mode), info=info)


def _check_stats_extractor(stats: StatsReference, spec: ExtractorSpec) -> None:
    """A ganbench statistics file names its extractor: refuse to compare features of another one."""
    name, sha = stats.meta.get("extractor"), stats.meta.get("extractor_weights_sha256")
    _, weights_sha = spec.weights()
    if name is not None and (name != spec.name or (sha and weights_sha and sha != weights_sha)):
        raise ValueError(f"statistics file {str(stats.path)!r} holds features of extractor {name!r} (weights "
                         f"{str(sha)[:12]}), not of {spec.name!r} (weights {str(weights_sha)[:12]}): features of "
                         f"different extractors are never compared")


def reference_data(protocol: Protocol, task: Task, resolution: int | None, samples: SampleSet | None) -> TaskData:
    """The task's data when the protocol names its reference explicitly (a folder, a .zip, a statistics file, or
    ``dataset:split``), brought to ``resolution`` through the protocol's resize mode."""
    spec = parse_reference(protocol.reference)
    if task.output != "sample":
        raise ValueError(f"task {task.name!r} is scored on its own paired data; a reference ({protocol.reference!r}) "
                         f"can be given only for tasks that sample")
    channels = int(samples.outputs.shape[1]) if samples is not None and samples.outputs.dim() == 4 else 3
    heldout = None
    if spec.kind == "stats":
        reference = load_stats(spec.path)
        label = reference.dataset
    elif spec.kind == "folder":
        reference = image_folder(spec.path, resolution, channels, resize=protocol.resize)
        label = reference.dataset
    else:
        split = spec.split or protocol.reference_split
        reference = load_resized(spec.dataset, split, resolution, protocol.resize)
        label = spec.dataset
        if protocol.heldout_split and protocol.heldout_split != split and not spec.dataset.startswith("hf:"):
            heldout = load_resized(spec.dataset, protocol.heldout_split, resolution, protocol.resize)
    if resolution is None and not isinstance(reference, StatsReference) and reference.kind == "images":
        resolution = int(reference.data.shape[-1])
    return TaskData(label, reference, getattr(reference, "split", "statistics"), heldout, heldout, resolution)


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
    tag = "" if protocol.name == "custom" else f"-{protocol.name}"
    return f"{safe}_{sha}-{protocol.dataset}{tag}-s{protocol.seed}".replace("/", "_").replace(":", "_")


def write_reference_stats(protocol: Protocol, out: str | Path, limit: int | None = None,
                          progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Features of the protocol's reference (its split, a folder or a .zip), their float64 Gaussian, written as an
    .npz that pytorch-fid, clean-fid and ``--reference FILE.npz`` read; returns the path and the metadata written.

    Raises:
        ValueError: For a statistics file given as the reference (there are no images to extract).
    """
    from ganbench import __version__
    from ganbench.data.reference import write_stats

    spec = parse_reference(protocol.reference or protocol.dataset)
    if spec.kind == "stats":
        raise ValueError(f"{protocol.reference!r} is already a statistics file")
    task = get_task("unconditional")
    data = (reference_data(protocol, task, protocol.resolution, None) if protocol.reference is not None
            else task.load(protocol.dataset, protocol.reference_split, None, protocol.resolution,
                           resize=protocol.resize))
    reference = data.reference
    if limit is not None:
        if limit > len(reference):
            raise ValueError(f"the reference has {len(reference)} images; -n asks for {limit}")
        reference = dataclasses.replace(reference, data=reference.data[:limit])
    extractor = get_extractor(protocol.extractor)
    feats = reference_features(extractor, reference, progress=progress)[extractor.feature_layer]
    stats = GaussianStats.from_features(feats)
    _, weights_sha = extractor.weights()
    meta = {"extractor": extractor.name, "extractor_weights_sha256": weights_sha,
            "feature_layer": extractor.feature_layer, "input_resize": extractor.input_resize,
            "dataset": data.dataset, "split": data.reference_label, "data_sha256": reference.sha256,
            "n": len(reference), "resolution": data.resolution, "resize": reference.resize,
            "protocol": protocol.name, "ganbench_version": __version__}
    return write_stats(out, stats.mu, stats.sigma, meta), meta


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


__all__ = ["Protocol", "REAL", "Row", "UNTRAINED", "evaluate", "reference_data", "reference_stats", "task_of",
           "write_reference_stats"]
