"""Reading checkpoints without running them: safetensors, or pickles through torch's weights-only unpickler.

A ``torch.save`` file is a pickle, and unpickling can call any importable function (``__reduce__`` returning
``(os.system, ("...",))`` runs a shell command at load time). GAN checkpoints are commonly shared that way.
ganbench therefore reads safetensors (a JSON header and raw tensor bytes: nothing to execute), and everything
else only with ``torch.load(weights_only=True)``, PyTorch's restricted unpickler that rebuilds tensors and plain
containers (dict, list, tuple, OrderedDict, numbers, strings) and refuses every other global before creating it
(see the "weights_only" section of the ``torch.load`` documentation). A refusal becomes ``UnsafeCheckpointError``
with what was refused, and never the advice, in torch's own message, to retry with ``weights_only=False``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

SAFETENSORS_SUFFIX = ".safetensors"


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that pickles something other than tensors and plain containers; it was not unpickled."""


def is_safetensors(path: Path) -> bool:
    """Whether the file starts like safetensors: an 8-byte little-endian header length, then a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= os.path.getsize(path) - 8 and head[8:9] == b"{"


def load_checkpoint(path: str | os.PathLike[str]) -> Any:
    """The contents of a checkpoint file on the CPU, without executing anything in it.

    Safetensors files give their flat dict of tensors. Anything else goes through
    ``torch.load(weights_only=True)`` (memory-mapped when the file is in torch's zip format) and may be a nested
    structure (e.g. ``{"netG_state_dict": {...}, "epoch": 5}``) of tensors and plain containers.

    Raises:
        FileNotFoundError: No such file.
        UnsafeCheckpointError: The file pickles a global that the weights-only unpickler does not allow (for
            instance a function to call); nothing in it was executed.
        ValueError: The file is neither safetensors nor a readable torch checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix == SAFETENSORS_SUFFIX or is_safetensors(path):
        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own SafetensorError for malformed headers
            raise ValueError(f"checkpoint {str(path)!r} is not a valid safetensors file: {e}") from None
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:  # the legacy (pre-1.6, non-zip) format cannot be memory-mapped
            if "mmap" not in str(e):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"refusing to load checkpoint {str(path)!r}: it pickles something other than tensors and plain "
            f"containers ({_refused_part(e)}). ganbench unpickles only with torch.load(weights_only=True), because "
            "other objects in a pickle can run code when loaded; ask for the weights as safetensors or as a plain "
            "state dict") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"checkpoint {str(path)!r} is neither safetensors nor a readable torch.save file: "
                         f"{e}") from None


def _refused_part(error: Exception) -> str:
    """The line of torch's weights-only error that says what was refused."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line or "unsupported" in line:
            return line.rstrip(".")
    return lines[0].rstrip(".") if lines else type(error).__name__


def flat_state_dict(obj: Any, what: str) -> dict[str, torch.Tensor]:
    """``obj`` if it is a flat ``{name: tensor}`` dict, else a ``ValueError`` naming ``what`` and what it holds."""
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{what} is not a state dict of tensors (got {type(obj).__name__})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        kinds = sorted({type(obj[k]).__name__ for k in bad[:5]})
        raise ValueError(f"{what} is not a flat state dict of tensors: {bad[:5]} hold {', '.join(kinds)}")
    return obj


__all__ = ["UnsafeCheckpointError", "flat_state_dict", "is_safetensors", "load_checkpoint"]
