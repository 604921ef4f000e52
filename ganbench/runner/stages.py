"""The stages of a suite's jobs: train, sample, evaluate, bench; each checks its artifact before it runs and writes
it atomically. ``ganbench.runner`` plans and drives them (locally or on Ray); see its docstring for the layout.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganbench.data import load
from ganbench.evaluate import Protocol, Row, evaluate
from ganbench.results.schema import Result, SampleInfo
from ganbench.results.store import atomic_path, read_result
from ganbench.runner.suite import Job, Suite
from ganbench.tasks import SampleSet, Task, get_task, reference_row
from ganbench.train import TrainConfig, finished_run, train
from ganbench.zoo import get_model, untrained_generator

log = logging.getLogger(__name__)

SAMPLES_FORMAT = "ganbench.samples/2"


@dataclass(frozen=True)
class StageTask:
    """One stage of one job."""

    id: str  # "<job id>:<stage>"
    stage: str  # "train", "sample", "evaluate" or "bench"
    job: Job
    deps: tuple[str, ...]  # ids of the stage tasks whose artifacts this one reads


def plan_tasks(suite: Suite) -> list[StageTask]:
    """The suite's stage tasks in an order that respects their dependencies."""
    tasks: list[StageTask] = []
    for job in suite.jobs():
        if job.kind == "model":
            tasks.append(StageTask(f"{job.id}:train", "train", job, ()))
    for job in suite.jobs():
        if job.kind == "bench":
            # No dependency: throughput depends on the architecture, not the weights. The local executor runs
            # every train task first, so the trained generator is timed when there is one; a rerun that only
            # lacks throughput results does not retrain anything to get them.
            tasks.append(StageTask(f"{job.id}:bench", "bench", job, ()))
            continue
        dep = (f"{job.id}:train",) if job.kind == "model" else ()
        tasks.append(StageTask(f"{job.id}:sample", "sample", job, dep))
        tasks.append(StageTask(f"{job.id}:evaluate", "evaluate", job, (f"{job.id}:sample",) + dep))
    return tasks


# -- what a job is ---------------------------------------------------------------------------------------


def protocol_of(job: Job, suite: Suite) -> Protocol:
    """The protocol a job's dataset table states: a named one (with the table's resolution and reference), or the
    table's own fields."""
    ds = job.dataset
    if ds.protocol is not None:
        from ganbench.protocols import get_protocol

        return get_protocol(ds.protocol).protocol(ds.name, suite.sample_seed, ds.resolution, ds.reference,
                                                  ds.heldout_split)
    return Protocol(ds.name, ds.extractor, ds.n_samples, suite.sample_seed, ds.resolution, ds.reference_split,
                    ds.heldout_split, tuple(ds.metrics), ds.reference)


def task_of_job(job: Job, suite: Suite) -> Task:
    """The task whose outputs a job scores: its model's, or the task that owns its reference row."""
    if job.model is not None:
        return get_task(get_model(job.model.model).task)
    owners = dict(suite.reference_rows(job.dataset.name))
    return get_task(owners[job.row])


def companions_of(job: Job, suite: Suite, task: Task) -> tuple[Task, ...]:
    """The other tasks scored on the job's data (their extras join its reference rows)."""
    return tuple(get_task(t) for t in suite.tasks_on(job.dataset.name) if t != task.name)


def _train_config(job: Job) -> TrainConfig:
    return TrainConfig(seed=job.seed, **job.model.train)


def _train_split(job: Job):
    ds = job.dataset
    return load(ds.name, ds.reference_split, ds.resolution)


def trained_generator(job: Job, work_dir: Path):
    """The job's trained generator if its train stage finished with these inputs (checked), else None."""
    return finished_run(get_model(job.model.model), _train_split(job), work_dir / job.id, _train_config(job),
                        job.model.config)


def job_model(job: Job, work_dir: Path) -> Any:
    """The model a job draws from: its trained generator, an untrained network, or None for a data row."""
    if job.model is None:
        return None
    if job.row == "untrained":
        return untrained_generator(job.model.model, seed=job.seed, **job.model.config)
    generator = trained_generator(job, work_dir)
    if generator is None:
        raise RuntimeError(f"job {job.id}: no finished training run in {str(work_dir / job.id)!r}")
    return generator


# -- artifacts ------------------------------------------------------------------------------------------


def existing_result(results_dir: Path, job: Job) -> Result | None:
    """The job's result if one exists and is valid; an unreadable file is treated as missing."""
    for path in sorted(Path(results_dir).glob(f"{job.id}__*.json")):
        try:
            result = read_result(path)
        except (ValueError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as e:
            log.warning("ignoring unreadable result %s: %s", path, e)
            continue
        if result.run_id == job.id:
            return result
    return None


def _samples_path(job: Job, work_dir: Path) -> Path:
    return work_dir / job.id / "samples.safetensors"


def _expected_samples_meta(job: Job, suite: Suite, weights_sha256: str | None) -> dict[str, Any]:
    return {"format": SAMPLES_FORMAT, "job": job.id, "n": job.dataset.n_samples, "seed": suite.sample_seed,
            "weights_sha256": weights_sha256}


def existing_samples(job: Job, suite: Suite, work_dir: Path, weights_sha256: str | None) -> SampleSet | None:
    """The job's samples if the file exists and records the same job, count, seed and generator."""
    from safetensors import safe_open

    path = _samples_path(job, work_dir)
    if not path.exists():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("ganbench", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        info = SampleInfo(**meta["info"])
    except Exception as e:  # noqa: BLE001  (a damaged file is redone, whatever the damage)
        log.warning("ignoring unreadable samples %s: %s", path, e)
        return None
    expected = _expected_samples_meta(job, suite, weights_sha256)
    outputs = tensors.pop("samples", None)
    if any(meta.get(k) != v for k, v in expected.items()) or outputs is None or len(outputs) != expected["n"]:
        return None
    extras = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return SampleSet(outputs, info, float(meta.get("seconds", 0.0)), extras)


# -- stages ---------------------------------------------------------------------------------------------


def train_stage(job: Job, suite: Suite, work_dir: Path, progress: bool = True, fresh: bool = False) -> dict[str, Any]:
    """Train (or resume) the job's model; returns the training info its result records.

    With ``fresh`` the model is retrained from step 0 in a staging directory beside the run (``.<job>.fresh``, which
    a killed fresh run resumes), and only a finished run replaces the old one, by two renames that
    ``repair_replacements`` completes if a kill falls between them: the old weights and samples stay until the new
    ones exist."""
    entry = get_model(job.model.model)
    cfg = _train_config(job)
    run_dir = work_dir / job.id
    out_dir = _staging(work_dir, job.id) if fresh else run_dir
    outcome = train(entry, _train_split(job), out_dir, cfg, job.model.config, resume=True, progress=progress)
    if fresh:
        old = work_dir / f".{job.id}.old"
        if run_dir.exists():
            os.rename(run_dir, old)
        os.rename(out_dir, run_dir)
        shutil.rmtree(old, ignore_errors=True)
    return {"weights_sha256": outcome.generator.weights_sha256, "seconds": outcome.seconds,
            "resumed_from": outcome.resumed_from}


def _staging(work_dir: Path, job_id: str) -> Path:
    return work_dir / f".{job_id}.fresh"


def repair_replacements(work_dir: Path) -> list[str]:
    """Finish what a killed ``--fresh`` run left between its two renames: a job whose run directory is missing gets
    its finished fresh run (``.<job>.fresh`` with a ``train.json``) or else its old one back; a leftover old run
    beside a run directory is removed. Returns the job ids repaired."""
    repaired = []
    if not work_dir.is_dir():
        return repaired
    for old in sorted(work_dir.glob(".*.old")):
        job_id = old.name[1:-len(".old")]
        run_dir, fresh = work_dir / job_id, _staging(work_dir, job_id)
        if not run_dir.exists():
            os.rename(fresh if (fresh / "train.json").is_file() else old, run_dir)
            repaired.append(job_id)
        shutil.rmtree(old, ignore_errors=True)
    return repaired


def _train_info(job: Job, resumed_from: int | None) -> dict[str, Any]:
    entry = get_model(job.model.model)
    split = _train_split(job)
    cfg = dataclasses.replace(_train_config(job), batch_size=_train_config(job).batch_size or entry.batch_size)
    return {**dataclasses.asdict(cfg), "objective": entry.objective, "dataset": f"{split.dataset}/{split.split}",
            "data_sha256": split.sha256, "resumed_from": resumed_from}


def sample_stage(job: Job, suite: Suite, work_dir: Path) -> SampleSet:
    """Draw the job's outputs through its task and write them (atomically) beside its run."""
    from safetensors.torch import save_file

    task, protocol = task_of_job(job, suite), protocol_of(job, suite)
    data = task.load(protocol.dataset, protocol.reference_split, protocol.heldout_split, protocol.resolution)
    model = job_model(job, work_dir)
    if model is None:
        samples = task.draw_reference(reference_row(job.row), data, protocol.n, protocol.seed)
    else:
        samples = task.draw(model, data, protocol.n, protocol.seed)
    sha = model.weights_sha256 if model is not None and job.kind == "model" else None
    meta = {**_expected_samples_meta(job, suite, sha), "info": dataclasses.asdict(samples.info),
            "seconds": samples.seconds}
    tensors = {"samples": samples.outputs.contiguous(), **{f"extra.{k}": v.contiguous()
                                                           for k, v in samples.extras.items()}}
    with atomic_path(_samples_path(job, work_dir)) as tmp:
        save_file(tensors, str(tmp), metadata={"ganbench": json.dumps(meta)})
    return samples


def evaluate_stage(job: Job, suite: Suite, work_dir: Path, progress: bool = True,
                   train_seconds: float | None = None, resumed_from: int | None = None) -> Result:
    """Score the job's samples through the one evaluation path; the result is returned, not written."""
    task, protocol = task_of_job(job, suite), protocol_of(job, suite)
    model = job_model(job, work_dir)
    sha = model.weights_sha256 if model is not None and job.kind == "model" else None
    samples = existing_samples(job, suite, work_dir, sha) or sample_stage(job, suite, work_dir)
    timings = {"train": train_seconds} if job.kind == "model" and train_seconds is not None else {}
    row = Row(reference_row(job.row) if job.row else None, run_id=job.id, timings=timings,
              name=get_model(job.model.model).name if job.kind == "model" else None,
              train=_train_info(job, resumed_from) if job.kind == "model" else None)
    return evaluate(protocol, task=task, model=model, samples=samples, row=row,
                    companions=companions_of(job, suite, task), progress=progress)


def bench_stage(job: Job, suite: Suite, work_dir: Path, progress: bool = True) -> Result:
    """Throughput of a suite model: the trained generator when its run has finished, else a fresh network of
    the same config (throughput depends on the architecture, not on the weights)."""
    from ganbench.bench import BenchSettings, bench_model, to_result
    from ganbench.results.schema import DatasetInfo

    assert job.model is not None and suite.bench is not None
    plan, b = job.model, suite.bench
    split = _train_split(job)
    trained = [j for j in suite.jobs() if j.kind == "model" and j.model == plan and j.seed == job.seed]
    gen = trained_generator(trained[0], work_dir) if trained else None
    net, sha = (gen.net, gen.weights_sha256) if gen is not None else (None, None)
    config = dict(plan.config)
    if job.dataset.resolution is not None and "resolution" not in config and split.kind == "images":
        config.update(resolution=job.dataset.resolution, channels=int(split.data.shape[1]))
    settings = BenchSettings(device=b.device, batch_sizes=b.batch_sizes, precision=b.precision, repeats=b.repeats,
                             warmup=b.warmup)
    report = bench_model(plan.model, settings, train=b.train, config=config, net=net, progress=progress)
    images = split.kind != "points"
    resolution = int((split.data if split.kind == "images" else split.b).shape[-1]) if images else None
    dataset = DatasetInfo(split.dataset, split.split, split.sha256, len(split), resolution, split.resize, split.source)
    return to_result(report, run_id=job.id, dataset=dataset, model_name=plan.model, weights_sha256=sha)


def run_task(task: StageTask, suite: Suite, work_dir: Path, progress: bool = True, fresh: bool = False,
             inputs: dict[str, Any] | None = None, threads: int | None = None) -> Any:
    """Run one stage; returns what later stages or the driver need (training info, or a Result).

    ``threads`` pins torch's intra-op threads, so a task on a Ray worker (which Ray starts with one thread
    per CPU it reserved) computes exactly what the same task computes in the driver.
    """
    if threads:
        torch.set_num_threads(threads)
    inputs = inputs or {}
    if task.stage == "train":
        return train_stage(task.job, suite, work_dir, progress, fresh)
    if task.stage == "sample":
        if not fresh:
            gen = trained_generator(task.job, work_dir) if task.job.kind == "model" else None
            if existing_samples(task.job, suite, work_dir, gen.weights_sha256 if gen else None) is not None:
                return None
        sample_stage(task.job, suite, work_dir)
        return None
    if task.stage == "evaluate":
        info = inputs.get(f"{task.job.id}:train") or {}
        return evaluate_stage(task.job, suite, work_dir, progress, info.get("seconds"), info.get("resumed_from"))
    if task.stage == "bench":
        return bench_stage(task.job, suite, work_dir, progress)
    raise ValueError(f"unknown stage {task.stage!r} of task {task.id}")
