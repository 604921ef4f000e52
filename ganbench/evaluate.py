"""Scoring a sample set against a reference split: one feature pass, every metric, one Result.

This module sits between the zoo and the metrics: it takes samples (from a generator, a folder or a real
split) and produces a ``Result`` document. Metrics never see the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from ganbench.data import Split
from ganbench.features import ExtractorSpec, extract, reference_features, reference_key
from ganbench.metrics import MetricInputs, compute
from ganbench.metrics.frechet import GaussianStats
from ganbench.paths import cache_dir
from ganbench.results.schema import (SCHEMA_VERSION, DatasetInfo, ExtractorInfo, ModelInfo, Result,
                                     current_provenance)

@dataclass
class SampleSet:
    """Samples to score, and where they came from."""

    samples: torch.Tensor  # uint8 NCHW images or float (N, 2) points
    source: str  # "generator", "split mnist/test", "folder /path"
    seed: int | None  # sampling seed, when a generator drew them
    seconds: float = 0.0  # time spent drawing them


@dataclass
class EvalRequest:
    run_id: str  # stable id of this evaluation
    kind: str  # "model" or "reference"
    task: str  # task kind
    model: ModelInfo
    reference: Split  # the real split the samples are compared with
    extractor: ExtractorSpec
    metrics: list[str] = field(default_factory=list)  # empty: every metric this evaluation can compute
    seed: int = 0  # seeds bootstrap and subset sampling
    extra_timings: dict[str, float] = field(default_factory=dict)  # e.g. training time
    heldout: Split | None = None  # held-out real split, for memorisation and the birthday test
    nproc: int = 1  # processes the generated set's feature extraction is sharded over (torch.distributed)


def check_sample_count(n_available: int, n_requested: int, what: str) -> None:
    if n_available < n_requested:
        raise ValueError(f"{what} has {n_available} samples; the evaluation asks for {n_requested}")


def evaluate(request: EvalRequest, samples: SampleSet, progress: bool = True) -> Result:
    """Score ``samples`` against ``request.reference``; nothing is written here."""
    spec, ref = request.extractor, request.reference
    if spec.input_kind != ref.kind:
        raise ValueError(f"extractor {spec.name!r} takes {spec.input_kind}, dataset {ref.dataset!r} has {ref.kind}")
    timings = dict(request.extra_timings)
    timings["sample"] = samples.seconds

    t0 = time.perf_counter()
    gen_stats = None
    if request.nproc > 1 or _in_process_group():
        from ganbench.features.distributed import extract_in_group, extract_sharded

        if _in_process_group():
            gen_feats, sums = extract_in_group(spec, samples.samples)
        else:
            gen_feats, sums = extract_sharded(spec, samples.samples, request.nproc)
        gen_stats = GaussianStats.from_sums(int(sums["n"].item()), sums["sum"], sums["sum_outer"])
    else:
        gen_feats = extract(spec, samples.samples, progress=progress)
    ref_feats = reference_features(spec, ref, progress=progress)
    held_feats = reference_features(spec, request.heldout, progress=progress) if request.heldout is not None else None
    timings["features"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    inputs = MetricInputs(gen_feats, ref_feats, spec.feature_layer, spec.logits_layer, ref.dataset, request.seed,
                          heldout=held_feats, images=samples.samples if ref.kind == "images" else None,
                          ref_stats=reference_stats(spec, ref, ref_feats[spec.feature_layer]), gen_stats=gen_stats)
    scores = compute(request.metrics, inputs)
    timings["metrics"] = time.perf_counter() - t0

    _, weights_sha = spec.weights()
    resolution = int(ref.data.shape[-1]) if ref.kind == "images" else None
    return Result(
        schema_version=SCHEMA_VERSION,
        run_id=request.run_id,
        kind=request.kind,
        task=request.task,
        model=request.model,
        dataset=DatasetInfo(ref.dataset, ref.split, ref.sha256, len(ref), resolution, ref.resize, ref.source),
        extractor=ExtractorInfo(spec.name, weights_sha, spec.feature_layer, spec.logits_layer, spec.input_resize),
        samples={"n": len(samples.samples), "seed": samples.seed, "source": samples.source},
        scores=scores,
        timings={k: round(v, 3) for k, v in timings.items()},
        provenance=current_provenance("cpu"),
    )


def _in_process_group() -> bool:
    """True under torchrun (or any caller that initialised torch.distributed with several ranks)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def reference_stats(spec: ExtractorSpec, split: Split, features: torch.Tensor) -> GaussianStats:
    """The reference Gaussian with its covariance factor (see ``frechet``), cached on disk beside the features."""
    from safetensors.torch import load_file, save_file

    from ganbench.results.store import atomic_path

    path = cache_dir() / "stats" / f"v2-{spec.name}-{split.dataset}-{split.split}-{reference_key(spec, split)}-{spec.feature_layer}.safetensors"
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


def model_info_for(name: str, entry: str | None, config: Any, weights_sha256: str | None,
                   train: dict[str, Any] | None = None) -> ModelInfo:
    import dataclasses

    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config or {})
    return ModelInfo(name, entry, cfg, weights_sha256, train)
