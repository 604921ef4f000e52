"""Thread pools of the metric stage, set deliberately.

The metric stage alternates between two math libraries with their own thread pools: torch (MKL through
OpenMP) and numpy/scipy (OpenBLAS). Each sizes its pool to every core and lets idle workers spin for a
while after each call. On a machine that other processes share, a pool of as many threads as cores
oversubscribes it: one descheduled worker stalls every other worker of the same BLAS call at its next
barrier, and the spinning workers of the idle library steal time from the busy one. The issue that this
module answers (ganbench issue 16) measured the FID interval at 3.3 s with one thread and 42-180 s with
two under load.

``metric_threads`` runs a block with both libraries' pools (and any other BLAS or OpenMP pool that
threadpoolctl finds) limited to the same number of threads: the cores this process may run on, less the
cores other processes are using now (``/proc/loadavg``'s count of runnable tasks), at least one. A loaded
machine then slows the stage in proportion to the load rather than through barrier stalls; the
competing-process measurement is in ``benchmarks/metric_scaling.py``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
from threadpoolctl import threadpool_limits

ENV = "GANBENCH_METRIC_THREADS"  # a fixed thread count for the metric stage, overriding the load estimate


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_runnable_threads() -> int:
    """Threads of this process that are running or runnable now (``/proc/self/task/*/stat`` state R)."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        count += state == "R"
    return max(count, 1)


def busy_cores_elsewhere() -> int:
    """Runnable tasks of other processes right now: ``/proc/loadavg``'s runnable count less this process's own
    runnable threads (spinning OpenMP workers included); 0 where the file does not exist."""
    try:
        with open("/proc/loadavg") as f:
            runnable = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(runnable - _own_runnable_threads(), 0)


def metric_thread_count() -> int:
    """The threads the metric stage uses: ``GANBENCH_METRIC_THREADS`` if set, else the usable cores not busy
    with other processes, at least 1."""
    fixed = os.environ.get(ENV)
    if fixed:
        try:
            n = int(fixed)
        except ValueError:
            raise ValueError(f"{ENV} must be a positive integer, got {fixed!r}") from None
        if n < 1:
            raise ValueError(f"{ENV} must be a positive integer, got {fixed!r}")
        return n
    cores = usable_cores()
    return max(1, min(cores, cores - busy_cores_elsewhere()))


@contextmanager
def metric_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with torch's intra-op pool and every BLAS/OpenMP pool limited to ``n`` threads (default
    ``metric_thread_count()``); both are restored afterwards. Yields the count used."""
    n = metric_thread_count() if n is None else int(n)
    if n < 1:
        raise ValueError(f"thread count must be at least 1, got {n}")
    before = torch.get_num_threads()
    with threadpool_limits(limits=n):
        torch.set_num_threads(n)
        try:
            yield n
        finally:
            torch.set_num_threads(before)


__all__ = ["ENV", "busy_cores_elsewhere", "metric_thread_count", "metric_threads", "usable_cores"]
