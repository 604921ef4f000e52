"""Running a suite: jobs expand into stage tasks (train, sample, evaluate, bench) that an executor runs.

Every job of a suite (a trained model, a reference row of one of its tasks, a throughput run) becomes up to three
stage tasks with deterministic ids derived from the job's inputs:

- ``train`` (trained models): ``runs/<suite>/<job>/generator.safetensors`` and ``train.json`` through the one
  training loop (``ganbench.train``); resumes from the run's last checkpoint after an interruption;
- ``sample``: ``runs/<suite>/<job>/samples.safetensors``: the outputs the job's task draws (``Task.draw`` from the
  model, ``Task.draw_reference`` for a data row: the real split, the identity mapping, bicubic upsampling), with
  the extras its metrics read (round trips, captions) and their typed provenance;
- ``evaluate``: the result document, through ``ganbench.evaluate.evaluate`` (the one evaluation path);
  ``bench``: a throughput result.

Which reference rows a dataset gets is what its tasks declare (``Task.reference_rows``), plus the untrained networks
its table lists; what a model must beat is what its task checks (``Task.checks``, ``reference_checks`` here).

Before a stage runs, its artifact is checked, not just looked for: a result must parse and name its job, a trained
generator must hash to the sha256 its ``train.json`` records for the same inputs, a samples file must record the same
count, seed and generator hash. Every artifact is written atomically (temporary file, fsync, rename), so a process
killed at any point (SIGKILL included) leaves either nothing or a complete file; temporary files it left are swept at
the next start. Results are written only by the driver, so executors on other machines return them instead of
touching the store.

Executors: ``local`` (in this process, in dependency order) and ``ray`` (``ganbench.runner.ray_executor``: one Ray task
per stage with its CPU/GPU needs, dependencies passed as object refs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ganbench.data import load
from ganbench.evaluate import Protocol, Row, evaluate
from ganbench.results.schema import Result, SampleInfo
from ganbench.results.store import atomic_path, read_result, write_result
from ganbench.runner.suite import BenchPlan, Job, Suite, load_suite
from ganbench.tasks import Check, SampleSet, Task, get_task, reference_row
from ganbench.train import TrainConfig, finished_run, train
from ganbench.zoo import get_model, untrained_generator

log = logging.getLogger(__name__)

__all__ = ["Job", "Suite", "StageTask", "BenchPlan", "load_suite", "plan_tasks", "run_suite", "run_task",
           "existing_result", "reference_checks", "EXECUTORS"]

SAMPLES_FORMAT = "ganbench.samples/2"
EXECUTORS = ("local", "ray")


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
    ds = job.dataset
    return Protocol(ds.name, ds.extractor, ds.n_samples, suite.sample_seed, ds.resolution, ds.reference_split,
                    ds.heldout_split, tuple(ds.metrics))


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


def sweep_temporaries(*dirs: Path) -> int:
    """Remove temporary files (``.<name>.<random>.tmp``) that a killed writer left; returns how many."""
    removed = 0
    for d in dirs:
        if Path(d).is_dir():
            for tmp in Path(d).rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


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
    """Train (or resume) the job's model; returns the training info its result records."""
    entry = get_model(job.model.model)
    cfg = _train_config(job)
    if fresh and (work_dir / job.id).exists():
        shutil.rmtree(work_dir / job.id)
    outcome = train(entry, _train_split(job), work_dir / job.id, cfg, job.model.config, resume=True,
                    progress=progress)
    return {"weights_sha256": outcome.generator.weights_sha256, "seconds": outcome.seconds,
            "resumed_from": outcome.resumed_from}


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


# -- the suite ------------------------------------------------------------------------------------------


def pending_tasks(suite: Suite, results_dir: Path, work_dir: Path, fresh: bool
                  ) -> tuple[list[StageTask], dict[str, Result]]:
    """(stage tasks still to run, valid results by job id). A job with a valid result needs no task; a train task
    runs only for a job still to do, and not when its checked artifact exists (its dependants read that)."""
    done = {} if fresh else {j.id: r for j in suite.jobs() if (r := existing_result(results_dir, j)) is not None}
    tasks = plan_tasks(suite)
    wanted = {t.id for t in tasks if t.stage != "train" and t.job.id not in done}
    wanted |= {d for t in tasks if t.id in wanted for d in t.deps}
    todo = [t for t in tasks if t.id in wanted]
    if not fresh:
        todo = [t for t in todo if not (t.stage == "train" and trained_generator(t.job, work_dir) is not None)]
    return todo, done


def run_suite(suite: Suite, results_dir: Path | None = None, work_dir: Path | None = None, progress: bool = True,
              on_job: Callable[[Job, str], None] | None = None, fresh: bool = False, executor: str = "local",
              address: str | None = None) -> list[Result]:
    """Run every job of ``suite`` that has no valid result yet; returns all its results in job order.

    Args:
        fresh: Recompute every job from scratch (train from step 0, score again). Each new result replaces the
            old one atomically when its job finishes, so an interrupted fresh run loses nothing already written.
        executor: "local" (this process) or "ray" (tasks on a Ray cluster; ``address`` as for ``ray.init``).
        on_job: Called with (job, state) as each result job is skipped, starts and finishes.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    results_dir = Path(results_dir or suite.results)
    work_dir = Path(work_dir or Path("runs") / suite.name)
    swept = sweep_temporaries(results_dir, work_dir)
    if swept:
        log.info("removed %d temporary files left by an interrupted run", swept)
    todo, done = pending_tasks(suite, results_dir, work_dir, fresh)
    for job in suite.jobs():
        if job.id in done and on_job:
            on_job(job, "skipped (result exists)")

    def finished(task: StageTask, result: Result) -> None:
        write_result(result, results_dir)
        done[task.job.id] = result
        if on_job:
            on_job(task.job, "done")

    def started(task: StageTask) -> None:
        if on_job and task.stage in ("evaluate", "bench"):
            on_job(task.job, "running")

    if executor == "ray":
        from ganbench.runner.ray_executor import run_tasks_on_ray

        run_tasks_on_ray(todo, suite, work_dir, fresh, address, started, finished, progress)
    else:
        outputs: dict[str, Any] = {}
        for task in todo:
            started(task)
            out = run_task(task, suite, work_dir, progress, fresh, outputs)
            outputs[task.id] = out
            if isinstance(out, Result):
                finished(task, out)
    return [done[j.id] for j in suite.jobs() if j.id in done]


def reference_checks(results: list[Result]) -> list[Check]:
    """What each model of a suite must beat, checked by its task (``Task.checks``): its untrained network's FID,
    the identity mapping on the main metric of a translation task, bicubic on PSNR-Y, chance for CAS and
    R-precision, uniform bits/dim."""
    checks = []
    for r in results:
        if r.kind == "model" and r.dataset is not None:
            checks.extend(get_task(r.task).checks(r, results))
    return checks
