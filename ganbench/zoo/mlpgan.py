"""The fully connected GAN of the mode-collapse literature for 2D toy data.

Matches the setting of PacGAN (Lin et al. 2018) and VEEGAN (Srivastava et al. 2017) on ring8/grid25:
a latent of 2 (here configurable) Gaussian dimensions, G and D with three hidden layers of 400 units in
PacGAN (128 here by default, which suffices on these sets and trains in seconds on a CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ganbench.zoo.base import ModelEntry, register_model


@dataclass
class MLPGANConfig:
    nz: int = 2  # latent dimension
    hidden: int = 128  # units per hidden layer
    depth: int = 3  # hidden layers in G and in D
    dim: int = 2  # data dimension


def _mlp(inp: int, hidden: int, depth: int, out: int, act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(inp if i == 0 else hidden, hidden), act()]
    layers.append(nn.Linear(hidden, out))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, cfg: MLPGANConfig):
        super().__init__()
        self.nz = cfg.nz
        self.net = _mlp(cfg.nz, cfg.hidden, cfg.depth, cfg.dim, nn.ReLU)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    def __init__(self, cfg: MLPGANConfig):
        super().__init__()
        self.net = _mlp(cfg.dim, cfg.hidden, cfg.depth, 1, lambda: nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


MLPGAN = register_model(ModelEntry("mlpgan", "mlpgan", "unconditional", "points", MLPGANConfig, MLPGenerator,
                                   MLPDiscriminator, "nonsaturating", 1e-4, 1e-4, (0.5, 0.999),
                                   "Goodfellow et al. 2014 MLP GAN on the 2D sets of Lin et al. 2018 (PacGAN)",
                                   presets={"tiny": {}, "paper": {"hidden": 400, "depth": 3}}))
