"""The translation contract: a trained image-to-image generator used through ``translate(images) -> images``,
uint8 NCHW in and out, the counterpart of ``Generator.sample`` for Pix2Pix, CycleGAN and DiscoGAN.

Metrics see only the translated images, never the network. Files are safetensors with one ``ganbench``
metadata key (format, architecture, config, direction), like ``Generator.save`` writes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ganbench.results.store import atomic_path, file_sha256
from ganbench.zoo import from_uint8, to_uint8
from ganbench.zoo.cyclegan import PRESETS as CYCLEGAN_PRESETS
from ganbench.zoo.cyclegan import CycleGANConfig, CycleGANGenerator, load_vintagify_generator
from ganbench.zoo.discogan import DiscoGANConfig, DiscoGANGenerator
from ganbench.zoo.pix2pix import Pix2PixConfig, UNetGenerator

TRANSLATOR_FORMAT = "ganbench.translator/1"

# architecture name (the method's registry name) -> (config dataclass, generator class)
ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "pix2pix": (Pix2PixConfig, UNetGenerator),
    "cyclegan": (CycleGANConfig, CycleGANGenerator),
    "discogan": (DiscoGANConfig, DiscoGANGenerator),
}
DIRECTIONS = ("ab", "ba")


def build_translation_generator(architecture: str, config: Any) -> nn.Module:
    """A freshly initialised generator of ``architecture`` for ``config`` (one translation direction)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown translation architecture {architecture!r}; valid: {', '.join(ARCHITECTURES)}")
    config_cls, net_cls = ARCHITECTURES[architecture]
    if not isinstance(config, config_cls):
        raise TypeError(f"{architecture} needs a {config_cls.__name__}, got {type(config).__name__}")
    return net_cls(config)


class Translator:
    """A generator network translating one domain into another, with ``translate(uint8 NCHW) -> uint8 NCHW``.

    The network runs in eval mode: batch norm uses its running statistics and dropout is off, so a translation
    does not depend on the batch it is in. (The reference's test scripts keep Pix2Pix and DiscoGAN in training
    mode at test time; that output depends on the batch.)

    Args:
        architecture: "pix2pix", "cyclegan" or "discogan".
        config: The config of this direction (``config.reversed()`` of the training config for B -> A).
        net: The generator network.
        direction: "ab" or "ba", relative to the training data's domains.
        weights_sha256: sha256 of the file the weights came from, when they came from one.
        name: Display name (default: architecture and direction).
    """

    def __init__(self, architecture: str, config: Any, net: nn.Module, direction: str = "ab",
                 weights_sha256: str | None = None, name: str | None = None):
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.architecture = architecture
        self.config = config
        self.net = net.eval()
        self.direction = direction
        self.weights_sha256 = weights_sha256
        self.name = name or f"{architecture}.{direction}"

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    @torch.no_grad()
    def translate(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """uint8 (N, in_channels, H, W) -> uint8 (N, out_channels, H, W), on the CPU.

        Raises:
            ValueError: If ``images`` is not uint8 NCHW with the input domain's channels, or its sides are not
                multiples of what the network down-samples by.
        """
        if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.ndim != 4:
            got = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
            raise ValueError(f"{self.name} translates uint8 NCHW images, got {got}")
        if images.shape[1] != self.in_channels:
            raise ValueError(f"{self.name} takes {self.in_channels}-channel images, got {images.shape[1]} channels")
        multiple = getattr(self.net, "size_multiple", 1)
        if images.shape[2] % multiple or images.shape[3] % multiple:
            raise ValueError(f"{self.name} needs image sides that are multiples of {multiple}, got "
                             f"{tuple(images.shape[2:])}")
        device = next(self.net.parameters()).device
        outs = [to_uint8(self.net(from_uint8(images[i:i + batch_size]).to(device))).cpu()
                for i in range(0, len(images), batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, self.out_channels, *images.shape[2:], dtype=torch.uint8)

    def save(self, path: str | Path) -> str:
        """Write the weights as safetensors (atomically); returns the file's sha256."""
        # One metadata key: a multi-key header is written in hash order, so identical weights would hash differently.
        meta = {"ganbench": json.dumps({"format": TRANSLATOR_FORMAT, "architecture": self.architecture,
                                        "direction": self.direction, "config": dataclasses.asdict(self.config)},
                                       sort_keys=True)}
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}, str(tmp),
                      metadata=meta)
        self.weights_sha256 = file_sha256(path)
        return self.weights_sha256


def load_translator(path: str | Path) -> Translator:
    """Load a translator written by ``Translator.save`` (the trainer's ``generator_ab.safetensors`` and
    ``generator_ba.safetensors``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"translator weights {str(path)!r} do not exist")
    with safe_open(str(path), "pt") as f:
        meta = json.loads((f.metadata() or {}).get("ganbench", "{}"))
    if meta.get("format") != TRANSLATOR_FORMAT:
        raise ValueError(f"{str(path)!r} is not a ganbench translator file (metadata format {meta.get('format')!r}, "
                         f"expected {TRANSLATOR_FORMAT!r})")
    architecture = meta["architecture"]
    if architecture not in ARCHITECTURES:
        raise ValueError(f"{str(path)!r} holds an unknown architecture {architecture!r}; valid: "
                         f"{', '.join(ARCHITECTURES)}")
    config = ARCHITECTURES[architecture][0](**meta["config"])
    net = build_translation_generator(architecture, config)
    net.load_state_dict(load_file(str(path)), strict=True)
    return Translator(architecture, config, net, meta["direction"], file_sha256(path))


def vintage256_translator(path: str | Path | None = None) -> Translator:
    """The ``cyclegan.vintage256`` weights: vintagify's modern -> vintage CycleGAN generator (RGB, any multiple of
    4 px; trained at 256 px).

    Args:
        path: The package's ``G_A2B_epoch33.pth``; None finds it in the installed ``vintagify`` package.
    """
    from ganbench.zoo.cyclegan import vintagify_weights_path

    path = Path(path) if path is not None else vintagify_weights_path()
    net = load_vintagify_generator(path)
    return Translator("cyclegan", CycleGANConfig(**CYCLEGAN_PRESETS["vintage256"]), net, "ab", file_sha256(path),
                      name="cyclegan.vintage256")
