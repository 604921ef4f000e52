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

import logging
from pathlib import Path
from typing import Any, Callable

from ganbench.results.schema import Result
from ganbench.results.store import directory_lock, sweep_temporaries, write_result
from ganbench.runner.stages import (StageTask, existing_result, existing_samples, plan_tasks, repair_replacements,
                                    run_task, trained_generator)
from ganbench.runner.suite import BenchPlan, Job, Suite, load_suite
from ganbench.tasks import Check, get_task

log = logging.getLogger(__name__)

__all__ = ["BenchPlan", "EXECUTORS", "Job", "StageTask", "Suite", "existing_result", "load_suite", "plan_tasks",
           "reference_checks", "run_suite", "run_task"]

EXECUTORS = ("local", "ray")


# -- the suite ------------------------------------------------------------------------------------------


def pending_tasks(suite: Suite, results_dir: Path, work_dir: Path, fresh: bool
                  ) -> tuple[list[StageTask], dict[str, Result]]:
    """(stage tasks still to run, valid results by job id). A job with a valid result needs no task; a train task
    runs only for a job still to do, and not when its checked artifact exists (its dependants read that). A model's
    result is valid only while it names the weights its finished run holds and its samples are there: a run replaced
    by a fresh one makes the old result stale, and the job is sampled and scored again."""
    done = {}
    for j in ([] if fresh else suite.jobs()):
        r = existing_result(results_dir, j)
        if r is not None and j.kind == "model":
            gen = trained_generator(j, work_dir)
            if gen is not None and (gen.weights_sha256 != r.model.weights_sha256
                                    or existing_samples(j, suite, work_dir, gen.weights_sha256) is None):
                log.info("the result of %s does not match its run's weights and samples: scoring it again", j.id)
                r = None
        if r is not None:
            done[j.id] = r
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
        fresh: Recompute every job from scratch (train from step 0, score again). Each new run and result replaces
            the old one only when it is complete, so an interrupted fresh run loses nothing already written.

    Raises:
        DirectoryLocked: Another run holds the results or work directory (the message names it).
        executor: "local" (this process) or "ray" (tasks on a Ray cluster; ``address`` as for ``ray.init``).
        on_job: Called with (job, state) as each result job is skipped, starts and finishes.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    results_dir = Path(results_dir or suite.results)
    work_dir = Path(work_dir or Path("runs") / suite.name)
    with directory_lock(results_dir, f"ganbench run {suite.name}"), directory_lock(work_dir, f"ganbench run {suite.name}"):
        return _run_locked(suite, results_dir, work_dir, progress, on_job, fresh, executor, address)


def _run_locked(suite: Suite, results_dir: Path, work_dir: Path, progress: bool,
                on_job: Callable[[Job, str], None] | None, fresh: bool, executor: str, address: str | None
                ) -> list[Result]:
    swept = sweep_temporaries(results_dir, work_dir)
    if swept:
        log.info("removed %d temporary files left by an interrupted run", swept)
    repaired = repair_replacements(work_dir)
    if repaired:
        log.info("completed the replacement of %d runs a killed --fresh run left half done", len(repaired))
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
