"""FLOPs of a region of work, and the device's measured FLOP/s ceiling.

FLOPs are counted with the formulas of ``torch.utils.flop_counter`` (``FlopCounterMode``'s), which count 2 FLOPs per
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
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ganbench.bench.timer import time_region


class _TotalFlops(TorchDispatchMode):
    """``FlopCounterMode``'s formulas (its ``flop_registry``) summed over every dispatched op, without its per-module
    attribution: that installs backward hooks on every module, which ``torch.autograd.grad`` refuses ("A leaf node
    was passed to _will_engine_execute_node"), so gradient penalties (WGAN-GP, R1) could not be counted."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in flop_registry:  # as FlopCounterMode: count what a composite op decomposes into
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (matrix products and convolutions, forward and backward, double backward too)."""
    with _TotalFlops() as counter:
        fn()
    return counter.total


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
