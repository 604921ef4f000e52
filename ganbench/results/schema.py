"""The result document: one per evaluation, versioned, every key documented.

Modelled on lm-evaluation-harness ``lm_eval/result_schema.py``: a result says what was scored (model and
weights hash), against what (dataset, split and content hashes), through what (extractor and its weights
hash, resize mode), how often (sample count, seeds), with what spread, and on which software and hardware.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.1"  # 1.1: "bench" results (throughput), dataset optional for them


@dataclass
class Score:
    value: float  # the point estimate on the full sample set
    std: float | None  # spread: bootstrap / subset / split standard deviation (see method)
    ci_low: float | None  # lower end of the 95% interval
    ci_high: float | None  # upper end of the 95% interval
    n: int  # samples the score was computed from
    higher_is_better: bool  # direction of improvement
    method: str  # how the spread was obtained, e.g. "bootstrap(100)", "subsets(100x500)", "splits(10)"


@dataclass
class ModelInfo:
    name: str  # "arch.tag" of the model, or the reference row's name
    entry: str | None  # zoo registry entry ("dcgan", "lsgan", ...); None for reference rows
    config: dict[str, Any]  # architecture configuration
    weights_sha256: str | None  # sha256 of the generator weights file; None if untrained or not a model
    train: dict[str, Any] | None  # training config, steps and seed when ganbench trained it


@dataclass
class DatasetInfo:
    name: str  # dataset registry name the samples are compared with
    reference_split: str  # split whose statistics are the reference ("train")
    reference_sha256: str  # content hash of that split
    reference_n: int  # images in the reference split
    resolution: int | None  # image side the comparison ran at; None for points
    resize: str  # how the reference reached that resolution
    source: str  # where the reference data came from


@dataclass
class ExtractorInfo:
    name: str  # extractor registry name
    weights_sha256: str | None  # sha256 of its weights file; None for weightless extractors
    feature_layer: str  # features used by FID/KID/PR
    logits_layer: str | None  # features used by IS
    input_resize: str  # how samples are resized to the extractor's input


@dataclass
class Provenance:
    ganbench_version: str  # package version
    git_commit: str | None  # commit of the ganbench checkout, if it is one
    torch_version: str
    torch_fidelity_version: str
    python_version: str
    platform: str  # OS and machine
    device: str  # "cpu" or "cuda:0 (<name>)"
    threads: int  # torch intra-op threads
    created_utc: str  # ISO-8601 time the result was written


@dataclass
class Result:
    schema_version: str  # SCHEMA_VERSION of the writer
    run_id: str  # stable id of the run: model, dataset, seeds
    kind: str  # "model"; "reference" for the real-split and untrained rows; "bench" for a throughput run
    task: str  # task kind of the model ("unconditional", ...)
    model: ModelInfo
    dataset: DatasetInfo | None  # None only for a throughput run outside a suite (kind "bench")
    extractor: ExtractorInfo | None  # None where metrics read raw points, and for throughput runs
    samples: dict[str, Any]  # {"n": count, "seed": sampling seed, "source": generator|split|folder description}
    scores: dict[str, Score]  # metric name -> score
    timings: dict[str, float]  # seconds per stage: "sample", "features", "metrics", "train"
    provenance: Provenance
    # kind "bench" only: the full throughput report (settings, ceiling, per-batch-size rows, hardware,
    # drift); its headline numbers are also in ``scores``. See ganbench.bench.
    bench: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "<dict>") -> "Result":
        """Validate and build a result; unknown or missing keys raise a ValueError naming them."""
        if not isinstance(doc, dict):
            raise ValueError(f"{source}: a result must be a JSON object")
        version = doc.get("schema_version")
        if version is None or str(version).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"{source}: schema_version {version!r} is not readable by this ganbench "
                             f"(reads {SCHEMA_VERSION.split('.')[0]}.x)")
        nested = {"model": ModelInfo, "dataset": DatasetInfo, "extractor": ExtractorInfo, "provenance": Provenance}
        kwargs = _check_keys(cls, doc, source)
        for key, typ in nested.items():
            if kwargs[key] is not None:
                kwargs[key] = typ(**_check_keys(typ, kwargs[key], f"{source}: {key}"))
        kwargs["scores"] = {name: Score(**_check_keys(Score, s, f"{source}: scores.{name}"))
                            for name, s in kwargs["scores"].items()}
        return cls(**kwargs)


def _check_keys(typ: type, doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected an object for {typ.__name__}")
    fields = dataclasses.fields(typ)
    names = {f.name for f in fields}
    optional = {f.name for f in fields if f.default is not dataclasses.MISSING}  # added in a minor version
    missing, unknown = names - set(doc) - optional, set(doc) - names
    if missing or unknown:
        raise ValueError(f"{where}: {typ.__name__} has missing keys {sorted(missing)} and unknown keys {sorted(unknown)}")
    return dict(doc)


def git_commit() -> str | None:
    repo = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def current_provenance(device: str = "cpu") -> Provenance:
    import torch
    import torch_fidelity

    from ganbench import __version__

    return Provenance(
        ganbench_version=__version__,
        git_commit=git_commit(),
        torch_version=torch.__version__,
        torch_fidelity_version=torch_fidelity.__version__,
        python_version=sys.version.split()[0],
        platform=f"{platform.system()} {platform.machine()}",
        device=device_name(device),
        threads=torch.get_num_threads(),
        created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
