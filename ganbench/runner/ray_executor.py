"""The Ray executor: each stage task of a suite becomes one Ray task.

Dependencies are passed as object refs, so Ray schedules a sample task only after its train task has
finished and a train task's output (its training info) flows to the evaluate task that records it. Each
task reserves the CPUs it computes with (torch's intra-op threads of the driver, pinned inside the task,
so it computes what the local executor computes) and a GPU when a throughput step asks for CUDA. Results
come back to the driver, which alone writes the results store; training runs and samples are files under
the work directory, which must be on a filesystem every node sees (a local instance, NFS, a mounted
bucket). The driver reports each task as it completes, as they complete, not in submission order.

Install with ``pip install 'ganbench[ray]'``. On an existing cluster: ``ganbench run SUITE --executor ray
--address auto`` on a node of it (or ``ray://head:10001`` from outside it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import torch

from ganbench.results.schema import Result

INSTALL_HINT = "the ray executor needs Ray, which is an optional dependency: pip install 'ganbench[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RuntimeError(INSTALL_HINT) from e
    return ray


def _execute(task: Any, suite: Any, work_dir: str, fresh: bool, threads: int, progress: bool, dep_ids: list[str],
             *dep_values: Any) -> Any:
    from ganbench.runner.stages import run_task

    return run_task(task, suite, Path(work_dir), progress, fresh, dict(zip(dep_ids, dep_values)), threads=threads)


def _needs_gpu(task: Any, suite: Any) -> bool:
    if task.stage != "bench" or suite.bench is None:
        return False
    return suite.bench.device.startswith("cuda")


def run_tasks_on_ray(tasks: list, suite: Any, work_dir: Path, fresh: bool, address: str | None,
                     started: Callable[[Any], None], finished: Callable[[Any, Result], None],
                     progress: bool = True, cpus_per_task: int | None = None) -> None:
    """Submit ``tasks`` (in dependency order) to Ray and hand each result to ``finished`` as it arrives."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    threads = cpus_per_task or torch.get_num_threads()
    cluster_cpus = int(ray.cluster_resources().get("CPU", threads))
    remote = ray.remote(_execute)
    refs: dict[str, Any] = {}
    pending: dict[Any, Any] = {}
    for task in tasks:
        deps = [d for d in task.deps if d in refs]
        options = {"num_cpus": min(threads, cluster_cpus), "num_gpus": 1 if _needs_gpu(task, suite) else 0,
                   "max_retries": 0, "name": task.id}
        ref = remote.options(**options).remote(task, suite, str(work_dir), fresh, threads, progress, deps,
                                               *[refs[d] for d in deps])
        refs[task.id] = ref
        pending[ref] = task
        started(task)
    failures: list[str] = []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        task = pending.pop(ready[0])
        try:
            out = ray.get(ready[0])
        except Exception as e:  # noqa: BLE001  (report every failed task, keep collecting the others)
            failures.append(f"{task.id}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            print(f"[ray] {task.id} failed", file=sys.stderr)
            continue
        if isinstance(out, Result):
            finished(task, out)
    if failures:
        raise RuntimeError(f"{len(failures)} Ray task(s) failed; finished results were kept:\n" + "\n".join(failures))
