"""The result document: one per evaluation, versioned, every key documented and typed.

Modelled on lm-evaluation-harness ``lm_eval/result_schema.py``: a result says what was scored (model and weights
hash), against what (dataset, split and content hashes), through what (extractor and its weights hash, resize
mode), from which samples (a typed source: generator and seed, a real split and its hash, a folder, or a split
transformed by a model or a fixed function), how often (sample count), with what spread, and on which software and
hardware. ``make_result`` is the one place a ``Result`` is built; ``Result.from_dict`` reads one back, checking
every key and type (and upgrading a 1.x document, whose sample source was prose, once, on read).
"""

from __future__ import annotations

import dataclasses
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "2.2"  # 2.0: typed sample source, reference_row, task names as registered; 2.1: protocol, skipped;
# 2.2: provenance.metric_threads
KINDS = ("model", "reference", "bench")
REFERENCE_ROWS = ("real", "untrained", "identity", "bicubic")  # see ganbench.tasks.base
SAMPLE_SOURCES = ("generator", "split", "folder", "transform", "random")


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
    entry: str | None  # zoo registry entry ("dcgan", "lsgan", ...); None for data reference rows
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
class SampleInfo:
    n: int  # samples scored
    source: str  # "generator" (drawn from a model), "split" (real images of a split), "folder" (image files),
    # "transform" (a split's images mapped by a model or a fixed function: translation, super-resolution, bicubic),
    # or "random" (random inputs of a throughput run)
    seed: int | None = None  # sampling seed of a generator source
    model: str | None = None  # what drew or transformed them (zoo entry, weight set, a user's FILE.py:NAME)
    weights_sha256: str | None = None  # of that model's weights file
    dataset: str | None = None  # dataset of the split read or transformed
    split: str | None = None  # that split
    split_sha256: str | None = None  # content hash of that split
    domain: str | None = None  # translation splits: the domain read, "a" (inputs) or "b" (targets)
    transform: str | None = None  # what was applied to the split: "translate", "upscale", "bicubic_upscale",
    # "identity"; None for plain sources
    path: str | None = None  # folder sources: the folder
    resize: str = "none"  # how the samples reached the comparison resolution


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
    # threads of the metric stage (ganbench.metrics.threads; load-dependent unless GANBENCH_METRIC_THREADS is set).
    # Scores agree bit for bit at the same count and to round-off (~1e-13 relative) across counts.
    metric_threads: int | None = None


@dataclass
class Result:
    schema_version: str  # SCHEMA_VERSION of the writer
    run_id: str  # stable id of the run: model, dataset, seeds
    kind: str  # "model"; "reference" for a task's reference rows; "bench" for a throughput run
    task: str  # registered task (ganbench.tasks) whose outputs were scored: "unconditional", "paired_translation", ...
    model: ModelInfo
    dataset: DatasetInfo | None  # None only for a throughput run outside a suite (kind "bench")
    extractor: ExtractorInfo | None  # None where metrics read raw points, and for throughput runs
    samples: SampleInfo  # what was scored and where it came from
    scores: dict[str, Score]  # score name -> score
    timings: dict[str, float]  # seconds per stage: "sample", "features", "metrics", "train", ...
    provenance: Provenance
    reference_row: str | None = None  # kind "reference": "real", "untrained", "identity" or "bicubic"
    protocol: str = "custom"  # the named protocol (ganbench.protocols) the scores follow, or "custom"
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)  # default metrics not computed -> why
    # kind "bench" only: the full throughput report (settings, ceiling, per-batch-size rows, hardware,
    # drift); its headline numbers are also in ``scores``. See ganbench.bench.
    bench: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "<dict>") -> "Result":
        """Validate and build a result; a missing, unknown or mistyped key raises a ValueError naming it."""
        if not isinstance(doc, dict):
            raise ValueError(f"{source}: a result must be a JSON object, got {type(doc).__name__}")
        version = doc.get("schema_version")
        major = str(version).split(".")[0]
        if major == "1":
            doc = _upgrade_v1(doc, source)
        elif major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"{source}: schema_version {version!r} is not readable by this ganbench "
                             f"(reads 1.x and {SCHEMA_VERSION.split('.')[0]}.x)")
        kwargs = _typed(cls, doc, source)
        nested = {"model": ModelInfo, "dataset": DatasetInfo, "extractor": ExtractorInfo, "samples": SampleInfo,
                  "provenance": Provenance}
        for key, typ in nested.items():
            if kwargs[key] is not None:
                kwargs[key] = typ(**_typed(typ, kwargs[key], f"{source}: {key}"))
        kwargs["scores"] = {name: Score(**_typed(Score, s, f"{source}: scores.{name}"))
                            for name, s in kwargs["scores"].items()}
        result = cls(**kwargs)
        _check_values(result, source)
        return result


# ---------------------------------------------------------------------------------------------------- building


def make_result(run_id: str, kind: str, task: str, model: ModelInfo, dataset: DatasetInfo | None,
                extractor: ExtractorInfo | None, samples: SampleInfo, scores: dict[str, Score],
                timings: dict[str, float], reference_row: str | None = None, bench: dict[str, Any] | None = None,
                device: str = "cpu", protocol: str = "custom", skipped: dict[str, str] | None = None,
                metric_threads: int | None = None) -> Result:
    """A new result document, stamped with this schema version and the provenance of this process."""
    result = Result(SCHEMA_VERSION, run_id, kind, task, model, dataset, extractor, samples, dict(scores),
                    {k: round(float(v), 3) for k, v in timings.items()},
                    dataclasses.replace(current_provenance(device), metric_threads=metric_threads), reference_row,
                    protocol, dict(skipped or {}), bench)
    _check_values(result, f"result {run_id!r}")
    return result


def _check_values(r: Result, where: str) -> None:
    if r.kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}, got {r.kind!r}")
    if (r.kind == "reference") != (r.reference_row is not None):
        raise ValueError(f"{where}: a reference result names its reference_row (one of {', '.join(REFERENCE_ROWS)}) "
                         f"and only a reference result does; got kind {r.kind!r} with reference_row "
                         f"{r.reference_row!r}")
    if r.reference_row is not None and r.reference_row not in REFERENCE_ROWS:
        raise ValueError(f"{where}: reference_row must be one of {', '.join(REFERENCE_ROWS)}, got {r.reference_row!r}")
    if r.samples.source not in SAMPLE_SOURCES:
        raise ValueError(f"{where}: samples.source must be one of {', '.join(SAMPLE_SOURCES)}, got "
                         f"{r.samples.source!r}")
    if not isinstance(r.protocol, str) or not r.protocol:
        raise ValueError(f"{where}: protocol must be a protocol name, got {r.protocol!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in r.skipped.items()):
        raise ValueError(f"{where}: skipped must map metric names to reasons")
    if r.samples.n < 0:
        raise ValueError(f"{where}: samples.n must be >= 0, got {r.samples.n}")
    for name, s in r.scores.items():
        if s.n < 0:
            raise ValueError(f"{where}: scores.{name}.n must be >= 0, got {s.n}")


# ---------------------------------------------------------------------------------------------------- reading


def _allowed(annotation: str) -> tuple[type, ...] | None:
    """The JSON types a field annotation admits (None: anything)."""
    allowed: list[type] = []
    for part in (p.strip() for p in annotation.split("|")):
        base = part.split("[")[0]
        mapping = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "None": (type(None),),
                   "dict": (dict,), "list": (list,)}
        if base not in mapping:
            return None  # a nested dataclass: checked when it is built
        allowed.extend(mapping[base])
    return tuple(allowed)


def _typed(typ: type, doc: Any, where: str) -> dict[str, Any]:
    """The keys of ``doc`` for dataclass ``typ``, each checked against the field's type."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected an object for {typ.__name__}, got {type(doc).__name__}")
    fields = dataclasses.fields(typ)
    names = {f.name for f in fields}
    optional = {f.name for f in fields if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING}  # added in a minor version
    missing, unknown = names - set(doc) - optional, set(doc) - names
    if missing or unknown:
        raise ValueError(f"{where}: {typ.__name__} has missing keys {sorted(missing)} and unknown keys {sorted(unknown)}")
    for f in fields:
        if f.name not in doc:
            continue
        allowed = _allowed(str(f.type))
        value = doc[f.name]
        if allowed is None:
            continue
        if isinstance(value, bool) and bool not in allowed:  # JSON true is not a number here
            ok = False
        else:
            ok = isinstance(value, allowed)
        if not ok:
            raise ValueError(f"{where}: {typ.__name__}.{f.name} must be {f.type}, got {type(value).__name__} "
                             f"{value!r:.60}")
    return dict(doc)


_SPLIT = re.compile(r"^split (?P<dataset>[a-z0-9_.]+)/(?P<split>[a-z0-9_]+) sha256 (?P<sha>[0-9a-f]{64})$")
_SR = re.compile(r"^(?P<who>bicubic x4 of|generator on) the downscaled split (?P<dataset>[a-z0-9_]+)/"
                 r"(?P<split>[a-z0-9_]+) sha256 (?P<sha>[0-9a-f]{64})$")
_TRANSLATED = re.compile(r"^(?P<dataset>[a-z0-9_]+)/test A translated$")


def _upgrade_v1(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """A 1.x document in the 2.0 layout: the prose sample source becomes typed fields, task names become the
    registered ones, reference rows are named. Done once, on read; nothing is written back."""
    doc = dict(doc)
    samples = doc.get("samples")
    model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
    dataset = doc.get("dataset") if isinstance(doc.get("dataset"), dict) else {}
    if not isinstance(samples, dict) or not {"n", "seed", "source"} <= set(samples):
        raise ValueError(f"{source}: a 1.x result needs samples {{n, seed, source}}, got {samples!r:.80}")
    prose, info = str(samples["source"]), {"n": samples["n"], "seed": samples["seed"]}
    name = str(model.get("name", ""))
    if m := _SPLIT.match(prose):
        info.update(source="split", dataset=m["dataset"], split=m["split"], split_sha256=m["sha"])
    elif m := _SR.match(prose):
        info.update(source="transform", dataset=m["dataset"], split=m["split"], split_sha256=m["sha"],
                    transform="bicubic_upscale" if m["who"].startswith("bicubic") else "upscale")
    elif m := _TRANSLATED.match(prose):
        info.update(source="transform", dataset=m["dataset"], split="test", domain="a", transform="translate")
    elif prose == "test A as is":
        info.update(source="transform", dataset=dataset.get("name"), split="test", domain="a", transform="identity")
    elif prose == "test B":
        info.update(source="split", dataset=dataset.get("name"), split="test", domain="b")
    elif prose.startswith("folder "):
        info.update(source="folder", path=prose[len("folder "):])
    elif prose.endswith("throughput, random inputs"):
        info.update(source="random")
    else:
        info.update(source="generator")
    if info["source"] in ("generator", "transform", "random") and info.get("transform") not in ("identity", "bicubic_upscale"):
        info.update(model=model.get("entry") or name or None, weights_sha256=model.get("weights_sha256"))
    doc["samples"] = info
    task = str(doc.get("task", "")).replace("-", "_")
    row = None
    if doc.get("kind") == "reference":
        row = {"bicubic x4 upsampling": "bicubic", "identity mapping": "identity"}.get(name)
        if row is None:
            row = "untrained" if model.get("entry") else "real"
        if task == "reference":
            task = "super_resolution" if row == "bicubic" else "unconditional"
    doc["task"], doc["reference_row"] = task, row
    doc["schema_version"] = SCHEMA_VERSION
    return doc


# ---------------------------------------------------------------------------------------------------- provenance


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


__all__ = ["DatasetInfo", "ExtractorInfo", "KINDS", "ModelInfo", "Provenance", "REFERENCE_ROWS", "Result",
           "SAMPLE_SOURCES", "SCHEMA_VERSION", "SampleInfo", "Score", "current_provenance", "make_result"]
