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
    protocol: str | None = None  # a named protocol (ganbench ls protocols) the dataset's rows are scored under
    reference: str | None = None  # REF instead of the dataset's reference split: a folder, .zip, .npz, dataset:split

    def untrained_plans(self) -> list["ModelPlan"]:
        """One plan per untrained reference row (config presets already resolved by ``load_suite``)."""
        rows = [self.untrained] if isinstance(self.untrained, dict) else list(self.untrained or ())
        return [ModelPlan(u["model"], self.name, dict(u.get("config", {}))) for u in rows]

    @property
    def task(self) -> str | None:
        """The dataset's own task in the registry ("super_resolution", "paired_translation"), None for plain image
        and point sets (whose task is their models')."""
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
    """One unit of work producing one result: a model (trained, then scored), a reference row, or a throughput run."""

    id: str  # stable: derived from every input that changes the result
    kind: str  # "model", "reference" or "bench"
    dataset: DatasetPlan
    model: ModelPlan | None  # None for a data reference row (real, identity, bicubic)
    seed: int  # training seed (untrained: initialisation seed)
    row: str | None = None  # reference jobs: the reference row ("real", "untrained", "identity", "bicubic")


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

    def tasks_on(self, dataset: str) -> list[str]:
        """The tasks scored on a dataset: its own (if it has one), then its models', without repeats."""
        from ganbench.registry import MODELS

        own = [self.datasets[dataset].task] if self.datasets[dataset].task else []
        models = [MODELS.get(m.model).task for m in self.models if m.dataset == dataset]
        return list(dict.fromkeys(own + models)) or ["unconditional"]

    def reference_rows(self, dataset: str) -> list[tuple[str, str]]:
        """(row, owning task) of every data reference row of a dataset: the rows its tasks declare, each drawn by
        the first task that declares it (untrained rows come from the dataset's ``untrained`` table instead)."""
        from ganbench.tasks import get_task

        rows: dict[str, str] = {}
        for task in self.tasks_on(dataset):
            for row in get_task(task).reference_rows:
                if row.name != "untrained":
                    rows.setdefault(row.name, task)
        order = ["real", "identity", "bicubic"]
        return sorted(rows.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))

    def jobs(self) -> list[Job]:
        jobs = []
        for ds in self.datasets.values():
            for row, _ in self.reference_rows(ds.name):
                key = {"ds": ds} if row == "bicubic" else {"ds": ds, "seed": self.sample_seed}
                jobs.append(Job(_job_id(row, ds.name, key), "reference", ds, None, 0, row))
            for plan in ds.untrained_plans():
                jobs.append(Job(_job_id(f"untrained_{plan.model}", ds.name, {"ds": ds, "m": plan, "s": self.sample_seed}),
                                "reference", ds, plan, 0, "untrained"))
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


LATER_FIELDS = {"protocol", "reference"}  # plan fields added after suites were first run: in a job id only when set


def _fields(o: Any) -> dict[str, Any]:
    return {k: v for k, v in o.__dict__.items() if not (k in LATER_FIELDS and v is None)}


def _job_id(prefix: str, dataset: str, inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, default=_fields)
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


def _table(path: Path, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _suite_error(path, f"{what} must be a table, got {type(value).__name__}")
    return dict(value)


def _tables(path: Path, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise _suite_error(path, f"[[{key}]] must be an array of tables, got {type(value).__name__}")
    return [_table(path, v, f"each [[{key}]] entry") for v in value]


def _check_data_kind(path: Path, model: str, dataset: str) -> None:
    """Refuse a model on data of a kind it does not train on (known from the registries, before any data loads)."""
    from ganbench.registry import DATASETS, MODELS

    entry, kind = MODELS.get(model), DATASETS.meta(dataset).get("kind")
    fits = (entry.data_kind in ("paired", "unpaired")) == (kind == "translation") and \
        (kind == "translation" or entry.data_kind == kind or kind is None)
    if not fits:
        raise _suite_error(path, f"model {model!r} trains on {entry.data_kind} data; dataset {dataset!r} holds {kind}")


def load_suite(name_or_path: str) -> Suite:
    """A built-in suite by registry name, or a suite TOML file by path.

    Raises:
        ValueError: Naming the file and what is wrong: not TOML, a missing ``name``, an unknown dataset, model,
            extractor or key, a model on data it cannot train on.
    """
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.is_file()):
        path = SUITES.get(name_or_path)
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise _suite_error(path, f"is not valid TOML: {e}") from None
    from ganbench.registry import DATASETS, EXTRACTORS, MODELS

    unknown = set(doc) - {"name", "description", "results", "leaderboard", "sample_seed", "datasets", "models", "bench"}
    if unknown:
        raise _suite_error(path, f"unknown top-level keys {sorted(unknown)}; valid: name, description, results, "
                                 f"leaderboard, sample_seed, [[datasets]], [[models]], [bench]")
    name = doc.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise _suite_error(path, f"needs a 'name' of letters, digits, '_' or '-', got {name!r}")
    for key in ("description", "results", "leaderboard"):
        if key in doc and not isinstance(doc[key], str):
            raise _suite_error(path, f"{key!r} must be a string, got {type(doc[key]).__name__}")
    sample_seed = doc.get("sample_seed", 0)
    if not isinstance(sample_seed, int) or isinstance(sample_seed, bool) or sample_seed < 0:
        raise _suite_error(path, f"'sample_seed' must be a non-negative integer, got {sample_seed!r}")

    datasets = {}
    for d in _tables(path, doc, "datasets"):
        if not isinstance(d.get("name"), str) or d.get("name") not in DATASETS:
            raise _suite_error(path, DATASETS._unknown_message(str(d.get("name"))))
        if d.get("protocol") is not None and "extractor" not in d:
            from ganbench.registry import PROTOCOLS

            if d["protocol"] in PROTOCOLS:
                d["extractor"] = PROTOCOLS.get(d["protocol"]).extractor
        if not isinstance(d.get("extractor"), str) or d.get("extractor") not in EXTRACTORS:
            raise _suite_error(path, EXTRACTORS._unknown_message(str(d.get("extractor"))))
        if d.get("protocol") is not None:
            from ganbench.registry import PROTOCOLS

            if d["protocol"] not in PROTOCOLS:
                raise _suite_error(path, f"dataset {d['name']!r}: " + PROTOCOLS._unknown_message(str(d["protocol"])))
            fixed = PROTOCOLS.get(d["protocol"])
            for key, value in (("n_samples", fixed.n), ("extractor", fixed.extractor)):
                if key in d and d[key] != value:
                    raise _suite_error(path, f"dataset {d['name']!r}: {key} {d[key]!r} conflicts with protocol "
                                             f"{d['protocol']!r}, which fixes it to {value!r}")
            d.setdefault("n_samples", fixed.n)
        n = d.get("n_samples")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise _suite_error(path, f"dataset {d['name']!r}: n_samples must be a positive integer, got {n!r}")
        d["metrics"] = tuple(d.get("metrics", ()))
        untrained = d.get("untrained")
        if isinstance(untrained, list):
            d["untrained"] = tuple(_with_preset(path, _table(path, u, "an untrained row"),
                                                f"dataset {d['name']!r} untrained row") for u in untrained)
        elif isinstance(untrained, dict):
            d["untrained"] = _with_preset(path, dict(untrained), f"dataset {d['name']!r} untrained row")
        try:
            datasets[d["name"]] = DatasetPlan(**d)
        except TypeError as e:
            raise _suite_error(path, f"dataset {d['name']!r}: {e}") from None
        for u in datasets[d["name"]].untrained_plans():
            _check_data_kind(path, u.model, d["name"])
    models = []
    for m in _tables(path, doc, "models"):
        if not isinstance(m.get("model"), str) or m.get("model") not in MODELS:
            raise _suite_error(path, MODELS._unknown_message(str(m.get("model"))))
        if m.get("dataset") not in datasets:
            raise _suite_error(path, f"model {m['model']!r} names dataset {m.get('dataset')!r}, "
                                     f"which the suite does not define ({', '.join(datasets)})")
        _check_data_kind(path, m["model"], m["dataset"])
        m = _with_preset(path, m, f"model {m['model']!r}")
        seeds = m.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(x, int) and x >= 0 for x in seeds):
            raise _suite_error(path, f"model {m['model']!r}: seeds must be a list of non-negative integers, got "
                                     f"{seeds!r}")
        m["seeds"] = tuple(seeds)
        for key in ("config", "train"):
            if not isinstance(m.get(key, {}), dict):
                raise _suite_error(path, f"model {m['model']!r}: {key} must be a table")
        try:
            models.append(ModelPlan(**m))
        except TypeError as e:
            raise _suite_error(path, f"model {m['model']!r}: {e}") from None
    bench = None
    if "bench" in doc:
        b = _table(path, doc["bench"], "[bench]")
        b["batch_sizes"] = tuple(b.get("batch_sizes", BenchPlan.batch_sizes))
        try:
            bench = BenchPlan(**b)
        except TypeError as e:
            raise _suite_error(path, f"[bench]: {e}; valid keys: batch_sizes, device, precision, repeats, warmup, train")
    return Suite(name, doc.get("description", ""), path, doc.get("results", f"results/{name}"),
                 doc.get("leaderboard", f"leaderboards/{name}.md"), sample_seed, datasets, models, bench)


for _p in sorted(BUILTIN_DIR.glob("*.toml")):
    SUITES.register(_p.stem, _p, description=tomllib.loads(_p.read_text()).get("description", ""))
