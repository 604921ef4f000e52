"""Timing a region of work on a CPU or a CUDA device without the classic errors.

GPU work is asynchronous: a host clock read right after a kernel launch measures the launch, not the
kernel. Every timed region here is bracketed by CUDA events recorded on the current stream, with the
device synchronised before the first event and after the last, so the elapsed time is the device's own
(as in Triton's ``do_bench`` and torch.utils.benchmark). Warm-up runs come first and are not timed (cuDNN
autotuning, allocator growth, lazy initialisation, compilation). Each repetition gets its own inputs, and
on CUDA the L2 cache is flushed between repetitions by writing a buffer larger than it, so no repetition
reads its inputs from a cache the previous one left hot.

On a CPU the host clock is the device clock (``time.perf_counter``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

L2_FLUSH_BYTES = 256 * 1024 * 1024  # larger than any current GPU's L2 (H100 50 MB, H200 60 MB)


@dataclass(frozen=True)
class Timing:
    """Seconds per call of a timed region over ``len(seconds)`` repetitions."""

    seconds: tuple[float, ...]
    warmup: int  # untimed calls before the first timed one
    clock: str  # "cuda events" or "perf_counter"

    @property
    def median(self) -> float:
        return float(np.median(self.seconds))

    @property
    def p10(self) -> float:
        return float(np.percentile(self.seconds, 10))

    @property
    def p90(self) -> float:
        return float(np.percentile(self.seconds, 90))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_region(fn: Callable[[int], object], device: torch.device, repeats: int, warmup: int,
                min_seconds: float = 0.0) -> Timing:
    """Time ``fn(i)`` (``i`` the call index, so each call can use its own inputs).

    Args:
        repeats: Timed calls (at least this many).
        warmup: Untimed calls made first.
        min_seconds: Keep making timed calls until their total reaches this, so that fast regions are
            timed over enough calls to be stable.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for i in range(warmup):
        fn(i)
    synchronize(device)
    if device.type == "cuda":
        flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.float32, device=device)
        seconds: list[float] = []
        i = 0
        while len(seconds) < repeats or sum(seconds) < min_seconds:
            flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(warmup + i)
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000.0)
            i += 1
        return Timing(tuple(seconds), warmup, "cuda events")
    seconds = []
    i = 0
    while len(seconds) < repeats or sum(seconds) < min_seconds:
        t0 = time.perf_counter()
        fn(warmup + i)
        seconds.append(time.perf_counter() - t0)
        i += 1
    return Timing(tuple(seconds), warmup, "perf_counter")
