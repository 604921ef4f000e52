"""Suites: a TOML file naming datasets, models and seeds, expanded into jobs with stable ids."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.registry import SUITES

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "suites"


@dataclass(frozen=True)
class DatasetPlan:
    name: str  # dataset registry name
    extractor: str  # extractor registry name
    n_samples: int  # generated samples scored per model
    resolution: int | None = None  # image side models train and are scored at
    reference_split: str = "train"  # split whose features are the reference
    heldout_split: str = "test"  # split scored as the "real data" row
    metrics: tuple[str, ...] = ()  # empty: the defaults for the data kind
    # {"model": name, "config": {...}} for the untrained row, or a list of them (one row each)
    untrained: dict[str, Any] | tuple[dict[str, Any], ...] | None = None

    def untrained_plans(self) -> list["ModelPlan"]:
        """One plan per untrained reference row (config presets already resolved by ``load_suite``)."""
        rows = [self.untrained] if isinstance(self.untrained, dict) else list(self.untrained or ())
        return [ModelPlan(u["model"], self.name, dict(u.get("config", {}))) for u in rows]

    @property
    def task(self) -> str | None:
        """The dataset's task in the registry ("super-resolution"), None for plain image and point sets."""
        from ganbench.registry import DATASETS

        return DATASETS.meta(self.name).get("task")


@dataclass(frozen=True)
class ModelPlan:
    model: str  # zoo registry name
    dataset: str  # a dataset of the suite
    config: dict[str, Any] = field(default_factory=dict)  # architecture overrides
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides
    seeds: tuple[int, ...] = (0,)  # training seeds, one job each


@dataclass(frozen=True)
class BenchPlan:
    """A throughput step after training: ``ganbench bench`` on each trained model of the suite."""

    batch_sizes: tuple[int, ...] = (1, 64)
    device: str = "auto"  # cpu, cuda or auto (CUDA when present)
    precision: str = "fp32"
    repeats: int = 10
    warmup: int = 3
    train: bool = False  # also time one training step


@dataclass(frozen=True)
class Job:
    """One unit of work: train (if a model) and evaluate, producing one result."""

    id: str  # stable: derived from every input that changes the result
    kind: str  # "model", "real", "untrained", "bicubic" (super-resolution data) or "bench"
    dataset: DatasetPlan
    model: ModelPlan | None  # None for the real-data row
    seed: int  # training seed (untrained: initialisation seed)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    path: Path  # the TOML it was read from
    results: str  # results directory (relative to the working directory)
    leaderboard: str  # markdown leaderboard path
    sample_seed: int  # seed of the evaluation latents
    datasets: dict[str, DatasetPlan]
    models: list[ModelPlan]
    bench: BenchPlan | None = None  # the [bench] table, or ``ganbench run --bench``

    def jobs(self) -> list[Job]:
        jobs = []
        for ds in self.datasets.values():
            jobs.append(Job(_job_id("real", ds.name, {"ds": ds, "seed": self.sample_seed}), "real", ds, None, 0))
            if ds.task == "super-resolution":  # the reference every SR model is compared with
                jobs.append(Job(_job_id("bicubic", ds.name, {"ds": ds}), "bicubic", ds, None, 0))
            for plan in ds.untrained_plans():
                jobs.append(Job(_job_id(f"untrained_{plan.model}", ds.name, {"ds": ds, "m": plan, "s": self.sample_seed}),
                                "untrained", ds, plan, 0))
        for m in self.models:
            ds = self.datasets[m.dataset]
            for seed in m.seeds:
                key = {"ds": ds, "m": m, "seed": seed, "sample_seed": self.sample_seed}
                jobs.append(Job(_job_id(f"{m.model}_s{seed}", ds.name, key), "model", ds, m, seed))
        if self.bench is not None:
            for m in self.models:  # one per architecture config: throughput does not depend on the seed
                ds = self.datasets[m.dataset]
                key = {"ds": ds.name, "model": m.model, "config": m.config, "bench": self.bench}
                jobs.append(Job(_job_id(f"bench_{m.model}", ds.name, key), "bench", ds, m, m.seeds[0]))
        return jobs


def _job_id(prefix: str, dataset: str, inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, default=lambda o: o.__dict__)
    return f"{prefix}-{dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _suite_error(path: Path, msg: str) -> ValueError:
    return ValueError(f"suite {str(path)!r}: {msg}")


def _with_preset(path: Path, table: dict[str, Any], what: str) -> dict[str, Any]:
    """A model table with its ``preset`` (a named config of the zoo entry) merged under its ``config``.

    The preset is resolved here, so a job id, a checkpoint and a result record the full configuration: a preset
    edited later gives new jobs instead of being mistaken for the old one.
    """
    from ganbench.registry import MODELS

    if table.get("model") not in MODELS:
        raise _suite_error(path, f"{what}: " + MODELS._unknown_message(str(table.get("model"))))
    preset = table.pop("preset", None)
    if preset is not None:
        entry = MODELS.get(table["model"])
        if preset not in entry.presets:
            raise _suite_error(path, f"{what}: {table['model']} has no preset {preset!r}; valid: "
                                     f"{', '.join(sorted(entry.presets)) or 'none'}")
        table["config"] = {**entry.presets[preset], **table.get("config", {})}
    return table


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by registry name, or a suite TOML file by path."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.exists()):
        path = SUITES.get(name_or_path)
    doc = tomllib.loads(Path(path).read_text())
    from ganbench.registry import DATASETS, EXTRACTORS, MODELS

    datasets = {}
    for d in doc.get("datasets", []):
        if d.get("name") not in DATASETS:
            raise _suite_error(path, DATASETS._unknown_message(str(d.get("name"))))
        if d.get("extractor") not in EXTRACTORS:
            raise _suite_error(path, EXTRACTORS._unknown_message(str(d.get("extractor"))))
        d = dict(d)
        d["metrics"] = tuple(d.get("metrics", ()))
        untrained = d.get("untrained")
        if isinstance(untrained, list):
            d["untrained"] = tuple(_with_preset(path, dict(u), f"dataset {d['name']!r} untrained row") for u in untrained)
        elif isinstance(untrained, dict):
            d["untrained"] = _with_preset(path, dict(untrained), f"dataset {d['name']!r} untrained row")
        try:
            datasets[d["name"]] = DatasetPlan(**d)
        except TypeError as e:
            raise _suite_error(path, f"dataset {d['name']!r}: {e}") from None
    models = []
    for m in doc.get("models", []):
        if m.get("model") not in MODELS:
            raise _suite_error(path, MODELS._unknown_message(str(m.get("model"))))
        if m.get("dataset") not in datasets:
            raise _suite_error(path, f"model {m['model']!r} names dataset {m.get('dataset')!r}, "
                                     f"which the suite does not define ({', '.join(datasets)})")
        m = _with_preset(path, dict(m), f"model {m['model']!r}")
        m["seeds"] = tuple(m.get("seeds", (0,)))
        try:
            models.append(ModelPlan(**m))
        except TypeError as e:
            raise _suite_error(path, f"model {m['model']!r}: {e}") from None
    bench = None
    if "bench" in doc:
        b = dict(doc["bench"])
        b["batch_sizes"] = tuple(b.get("batch_sizes", BenchPlan.batch_sizes))
        try:
            bench = BenchPlan(**b)
        except TypeError as e:
            raise _suite_error(path, f"[bench]: {e}; valid keys: batch_sizes, device, precision, repeats, warmup, train")
    return Suite(doc["name"], doc.get("description", ""), Path(path), doc.get("results", f"results/{doc['name']}"),
                 doc.get("leaderboard", f"leaderboards/{doc['name']}.md"), int(doc.get("sample_seed", 0)),
                 datasets, models, bench)


for _p in sorted(BUILTIN_DIR.glob("*.toml")):
    SUITES.register(_p.stem, _p, description=tomllib.loads(_p.read_text()).get("description", ""))
