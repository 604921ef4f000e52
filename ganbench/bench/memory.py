"""Peak memory of a region of work, and the hardware and software it ran on.

On CUDA: the caching allocator's peak of allocated bytes (``torch.cuda.max_memory_allocated``) after
resetting it, i.e. what the tensors of the region needed at most, not what the allocator reserved.
On Linux CPUs: the process's peak resident set (``VmHWM``), which the kernel resets when 5 is written to
``/proc/self/clear_refs``; it includes the interpreter and everything already resident, so it is
reported beside the resident size before the region. Elsewhere ``resource.getrusage``'s lifetime peak
is the best available and is labelled so.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class PeakMemory:
    peak_mb: float
    baseline_mb: float  # allocated (CUDA) or resident (CPU) before the region
    method: str


def _status_kb(key: str) -> float:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise KeyError(key)


class MemoryMeter:
    """Context manager: ``with MemoryMeter(device) as m: ...`` then ``m.result``."""

    def __init__(self, device: torch.device):
        self.device = device
        self.result: PeakMemory | None = None
        self._resettable = False

    def __enter__(self) -> "MemoryMeter":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._baseline = torch.cuda.memory_allocated(self.device) / 2 ** 20
        else:
            try:
                _CLEAR_REFS.write_text("5")
                self._resettable = True
                self._baseline = _status_kb("VmRSS") / 1024
            except OSError:
                self._baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak, method = torch.cuda.max_memory_allocated(self.device) / 2 ** 20, "cuda max_memory_allocated"
        elif self._resettable:
            peak, method = _status_kb("VmHWM") / 1024, "process peak RSS (VmHWM, reset before the region)"
        else:
            peak, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process lifetime peak RSS"
        self.result = PeakMemory(round(peak, 1), round(self._baseline, 1), method)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def hardware(device: torch.device) -> dict[str, Any]:
    """What a benchmark ran on: device name, driver and CUDA versions, torch, threads."""
    info: dict[str, Any] = {
        "device": str(device),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, multiprocessors=props.multi_processor_count,
                    memory_gb=round(props.total_memory / 2 ** 30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), driver=nvidia_driver())
    else:
        info["device_name"] = info["cpu"]
    return info
