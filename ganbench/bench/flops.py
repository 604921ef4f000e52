"""FLOPs of a region of work, and the device's measured FLOP/s ceiling.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``, which counts 2 FLOPs per
multiply-accumulate of matrix products and convolutions (transposed ones included) and their backward
passes; elementwise work (activations, normalisation, optimiser updates) is not counted, as in the
papers' FLOP figures. The DCGAN-64 generator counts 209.26 MFLOP per image (tests check the closed form).

The ceiling is measured, not taken from a datasheet: a dense square matrix product in the precision of
the benchmark, timed in the same process, so "utilisation" is achieved FLOP/s over what this device,
driver, library build and thread count deliver on the friendliest dense workload. Convolutions can beat
it slightly (oneDNN's direct convolutions on a CPU, for instance), so utilisation may exceed 1 a little.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganbench.bench.timer import time_region


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (matrix products and convolutions, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class Ceiling:
    flops_per_s: float  # median FLOP/s of the timed products
    size: int  # side of the square matrices
    dtype: str
    tf32: bool  # CUDA float32 products allowed TensorFloat-32 (as cuDNN convolutions are by default)
    repeats: int


def matmul_ceiling(device: torch.device, dtype: torch.dtype, size: int | None = None, repeats: int = 10) -> Ceiling:
    """Dense ``size`` x ``size`` matrix product FLOP/s on ``device`` in ``dtype``.

    On CUDA, float32 products use TensorFloat-32 exactly when cuDNN's convolutions do
    (``torch.backends.cudnn.allow_tf32``, on by default), so convolution-heavy networks are compared with
    a ceiling of the same arithmetic.
    """
    if size is None:
        size = 8192 if device.type == "cuda" else 1024
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=g).to(device=device, dtype=dtype)
    tf32 = False
    previous = torch.backends.cuda.matmul.allow_tf32
    if device.type == "cuda" and dtype == torch.float32:
        tf32 = bool(torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        timing = time_region(lambda i: torch.mm(a, b), device, repeats=repeats, warmup=3,
                             min_seconds=0.5 if device.type == "cpu" else 0.0)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return Ceiling(2.0 * size ** 3 / timing.median, size, str(dtype).removeprefix("torch."), tf32, len(timing.seconds))
