"""Reading checkpoints without running them, for the zoo: the readers of ``ganbench.weights``.

Safetensors files are read as they are; everything else only through ``torch.load(weights_only=True)``, PyTorch's
restricted unpickler, which refuses every global that is not a tensor or a plain container before creating it. A
refused pickle raises ``UnsafeCheckpointError`` (naming what it pickles and how to convert the file); a file that is
no checkpoint at all (random bytes, text) raises ``NotACheckpointError``, a ``ValueError`` naming the file. The
implementation is ``ganbench.weights``, so the extractors, the losses and the zoo read files one way; the names
stay importable from here for the zoo's modules.
"""

from __future__ import annotations

from ganbench.weights import (SAFETENSORS_SUFFIX, NotACheckpointError, UnsafeCheckpointError, flat_state_dict,
                              is_safetensors, load_checkpoint)

__all__ = ["NotACheckpointError", "SAFETENSORS_SUFFIX", "UnsafeCheckpointError", "flat_state_dict", "is_safetensors",
           "load_checkpoint"]
