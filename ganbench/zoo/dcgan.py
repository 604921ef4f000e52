"""DCGAN (Radford, Metz & Chintala 2015, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks"), as in the reference PyTorch example (pytorch/examples ``dcgan``).

Strided convolutions in D, fractionally strided (transposed) convolutions in G, batch norm in every layer
except D's input layer and G's output, ReLU in G with Tanh on the output, LeakyReLU(0.2) in D, weights
from N(0, 0.02) and Adam(2e-4, beta1=0.5). The 64x64 configuration is the paper's; 32x32 drops one
up/down-sampling stage, as the reference's CIFAR/MNIST ports do; 128x128 adds one (as the conditional
generator of ``cdcgan`` does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ganbench.zoo.base import ModelEntry, register_model


@dataclass
class DCGANConfig:
    resolution: int = 32  # output side: 32, 64 or 128
    channels: int = 1  # image channels
    nz: int = 100  # latent dimension
    ngf: int = 64  # generator width (channels of the last hidden layer)
    ndf: int = 64  # discriminator width (channels of the first layer)

    def __post_init__(self) -> None:
        if self.resolution not in (32, 64, 128):
            raise ValueError(f"DCGAN resolution must be 32, 64 or 128, got {self.resolution}")

    @property
    def stages(self) -> int:
        return int(math.log2(self.resolution)) - 2  # 4x4 -> resolution in this many doublings


def dcgan_init(module: nn.Module) -> None:
    """The paper's initialisation: conv weights N(0, 0.02), batch-norm scale N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def generator_layers(cfg: DCGANConfig, in_channels: int, dropout: float = 0.0) -> list[nn.Module]:
    """G's layers from a (N, in_channels, 1, 1) input to the image.

    Args:
        cfg: Resolution, channels and width.
        in_channels: Input vector length: ``nz``, or ``nz`` plus the one-hot label length of a conditional G.
        dropout: Dropout after the first block (omniart's conditional DCGAN uses 0.2); 0 adds no layer, so the
            layer indices (and state-dict keys) of the plain DCGAN do not move.
    """
    mult = 2 ** (cfg.stages - 1)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_channels, cfg.ngf * mult, 4, 1, 0, bias=False),
        nn.BatchNorm2d(cfg.ngf * mult),
        nn.ReLU(True),
    ]
    if dropout:
        layers.append(nn.Dropout(dropout))
    for _ in range(cfg.stages - 1):
        layers += [
            nn.ConvTranspose2d(cfg.ngf * mult, cfg.ngf * mult // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(cfg.ngf * mult // 2),
            nn.ReLU(True),
        ]
        mult //= 2
    layers += [nn.ConvTranspose2d(cfg.ngf, cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
    return layers


class DCGANGenerator(nn.Module):
    """z (N, nz) -> image (N, C, R, R) in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.nz = cfg.nz
        self.main = nn.Sequential(*generator_layers(cfg, cfg.nz))
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    """image (N, C, R, R) in [-1, 1] -> one logit per image (N,)."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, cfg.ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(cfg.stages - 1):
            layers += [
                nn.Conv2d(cfg.ndf * mult, cfg.ndf * mult * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(cfg.ndf * mult * 2),
                nn.LeakyReLU(0.2, True),
            ]
            mult *= 2
        layers += [nn.Conv2d(cfg.ndf * mult, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


def from_tutorial_checkpoint(checkpoint: Any) -> dict[str, torch.Tensor]:
    """G's state dict from a checkpoint of the PyTorch DCGAN tutorial's training script.

    The tutorial (pytorch/tutorials ``beginner_source/dcgan_faces_tutorial.py``) and the packages built on it
    (``gan-face-generate``) save ``{"netG_state_dict": ..., "netD_state_dict": ..., ...}``; a bare generator state
    dict passes through. The tutorial's ``Generator.main`` has the same layers in the same order as
    ``DCGANGenerator.main`` at 64x64, so the tensor names need no mapping.

    Raises:
        ValueError: The checkpoint holds neither.
    """
    if isinstance(checkpoint, dict) and "netG_state_dict" in checkpoint:
        checkpoint = checkpoint["netG_state_dict"]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        keys = list(checkpoint)[:5] if isinstance(checkpoint, dict) else "-"
        raise ValueError(f"expected a DCGAN tutorial checkpoint ({{'netG_state_dict': ...}}) or a generator state "
                         f"dict, got {type(checkpoint).__name__} with keys {keys}")
    return dict(checkpoint)


DCGAN_PAPER = "Radford, Metz & Chintala 2015, arXiv:1511.06434"
# "tiny": what the quick suite trains on 2 CPU cores; "paper": the published architecture (DCGAN at 64x64 RGB).
DCGAN_PRESETS = {"tiny": {"resolution": 32, "channels": 1, "ngf": 32, "ndf": 32},
                 "paper": {"resolution": 64, "channels": 3, "ngf": 64, "ndf": 64}}
DCGAN = register_model(ModelEntry("dcgan", "dcgan", "unconditional", "images", DCGANConfig, DCGANGenerator,
                                  DCGANDiscriminator, "nonsaturating", 2e-4, 2e-4, (0.5, 0.999), DCGAN_PAPER,
                                  presets=DCGAN_PRESETS))
LSGAN = register_model(ModelEntry("lsgan", "dcgan", "unconditional", "images", DCGANConfig, DCGANGenerator,
                                  DCGANDiscriminator, "least_squares", 2e-4, 2e-4, (0.5, 0.999),
                                  "Mao et al. 2017, arXiv:1611.04076 (DCGAN networks, least-squares objective)",
                                  presets=DCGAN_PRESETS))
