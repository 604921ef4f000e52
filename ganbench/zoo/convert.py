"""Converters: the closed set of functions that map a third-party checkpoint's tensors onto a ganbench module.

A model card names its converter by registry name (``convert = "dcgan_tutorial"``), never by code: a card is data,
and a ``module:function`` path in it would let whoever writes the card choose what ganbench imports and calls (as
``convert = "ganbench.zoo.user:load_from_file"`` once did, with a checkpoint that was just the string naming a
Python file to run). Each converter is registered here, in code, by its ``module:attr`` and imported on first use
(``ganbench.registry``'s lazy loading); ``CONVERTERS`` has no entry-point group, so installed packages cannot add
to it either.

A converter is given exactly one thing: a flat ``{name: tensor}`` dict. Whatever the checkpoint holds is reduced
to that before the converter runs (``converter_input``), and anything else (a string, a list, a dict with
non-tensor values) is refused with a ``ValueError`` naming the checkpoint; the converter's output is checked the
same way. A converter may declare ``state_key``: the entry of a training checkpoint that holds the generator's
state dict (the PyTorch DCGAN tutorial saves ``{"netG_state_dict": ..., "epoch": ...}``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ganbench.registry import Registry
from ganbench.weights import flat_state_dict

StateDict = dict[str, torch.Tensor]

CONVERTERS: Registry[Callable[[StateDict], StateDict]] = Registry("converter")

CONVERTERS.register("dcgan_tutorial", "ganbench.zoo.dcgan:from_tutorial_checkpoint", state_key="netG_state_dict",
                    description="PyTorch DCGAN tutorial generator (gan-face-generate): tensor names kept as they are")
CONVERTERS.register("vintagify", "ganbench.zoo.cyclegan:from_vintagify", state_key=None,
                    description="vintagify's ResnetGenerator: residual 'block' renamed 'conv_block'")


def converter_names() -> list[str]:
    """Every registered converter name, sorted."""
    return CONVERTERS.list()


def converter_input(name: str | None, checkpoint: Any, what: str) -> StateDict:
    """The flat ``{name: tensor}`` dict that converter ``name`` (or the identity, for None) is given.

    Args:
        name: A registered converter name, or None.
        checkpoint: What ``ganbench.weights.load_checkpoint`` read.
        what: The checkpoint, for messages.

    Raises:
        ganbench.registry.UnknownNameError: ``name`` is not registered (the message lists the valid converters).
        ValueError: The checkpoint (or its ``state_key`` entry) is not a flat dict of tensors.
    """
    state_key = CONVERTERS.meta(name).get("state_key") if name is not None else None
    if state_key is not None and isinstance(checkpoint, dict) and state_key in checkpoint:
        checkpoint, what = checkpoint[state_key], f"{what}[{state_key!r}]"
    return flat_state_dict(checkpoint, what)


def convert_checkpoint(name: str | None, checkpoint: Any, what: str) -> StateDict:
    """Converter ``name`` applied to the checkpoint's flat tensors (the identity for None), its output checked.

    Raises:
        ganbench.registry.UnknownNameError: ``name`` is not registered; nothing was imported or called.
        ValueError: The checkpoint or the converter's output is not a flat dict of tensors; the converter was not
            called when its input was refused.
    """
    state = converter_input(name, checkpoint, what)
    if name is None:
        return state
    converted = CONVERTERS.get(name)(dict(state))
    return flat_state_dict(converted, f"{what} after converter {name!r}")


__all__ = ["CONVERTERS", "convert_checkpoint", "converter_input", "converter_names"]
