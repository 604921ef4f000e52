"""Pix2Pix (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks",
arXiv:1611.07004), as in the authors' PyTorch reference junyanz/pytorch-CycleGAN-and-pix2pix
(``models/networks.py``: ``UnetGenerator``, ``UnetSkipConnectionBlock``, ``NLayerDiscriminator``;
``models/pix2pix_model.py`` for the defaults).

Generator: a U-Net of ``log2(resolution)`` stride-2 4x4 convolutions down to a 1x1 bottleneck (``unet_256`` has
8, ``unet_128`` 7), each level's decoder output concatenated with its encoder input (the skip connection);
LeakyReLU(0.2) going down, ReLU going up, Tanh on the output, dropout 0.5 in the innermost
``num_downs - 5`` decoder blocks (the paper's only source of noise), batch norm (the reference's pix2pix
default) everywhere except the outermost layers. Discriminator: the PatchGAN, 4x4 convolutions with
``n_layers`` stride-2 layers (3 gives the 70x70 receptive field and a 30x30 map of logits for 256x256 input),
seeing the (input, output) pair concatenated along channels. Weights from N(0, 0.02), batch-norm scales from
N(1, 0.02) (the reference's ``init_type='normal'``).

The module tree mirrors the reference's, so its state-dict keys are the reference's and its checkpoints load
as they are. What differs: the encoder's LeakyReLU is not applied in place; the reference's in-place version
makes each skip connection carry the activated encoder features, and this one passes those same activated
features explicitly. ``norm="instance"`` uses the reference's current instance norm (no affine parameters, no
running statistics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.zoo.base import StepContext, register_model
from ganbench.zoo.dcgan import dcgan_init
from ganbench.zoo.objectives import nonsaturating, nonsaturating_g
from ganbench.zoo.translator import set_requires_grad, translation_entry

NORMS = ("batch", "instance")


@dataclass
class Pix2PixConfig:
    resolution: int = 256  # image side (a power of two >= 32); the U-Net has log2(resolution) down-samplings
    in_channels: int = 3  # channels of the input domain A
    out_channels: int = 3  # channels of the target domain B
    ngf: int = 64  # generator width at the outermost level (8 x ngf at most inside)
    ndf: int = 64  # discriminator width of the first layer
    n_layers_d: int = 3  # PatchGAN stride-2 layers: 3 is the paper's 70x70 PatchGAN
    dropout: bool = True  # dropout 0.5 in the innermost num_downs - 5 decoder blocks (the reference's default)
    norm: str = "batch"  # "batch" (the reference's pix2pix default) or "instance"
    lambda_l1: float = 100.0  # weight of L1(G(a), b) in G's loss

    def __post_init__(self) -> None:
        if self.resolution < 32 or self.resolution & (self.resolution - 1):
            raise ValueError(f"Pix2Pix resolution must be a power of two >= 32 (the U-Net reaches 1x1 through at "
                             f"least 5 levels), got {self.resolution}")
        if self.norm not in NORMS:
            raise ValueError(f"Pix2Pix norm must be one of {NORMS}, got {self.norm!r}")
        for name in ("in_channels", "out_channels", "ngf", "ndf", "n_layers_d"):
            if getattr(self, name) < 1:
                raise ValueError(f"Pix2Pix {name} must be >= 1, got {getattr(self, name)}")

    @property
    def num_downs(self) -> int:
        return int(math.log2(self.resolution))

    def reversed(self) -> "Pix2PixConfig":
        """The same recipe translating B -> A."""
        return replace(self, in_channels=self.out_channels, out_channels=self.in_channels)


PRESETS: dict[str, dict[str, Any]] = {
    # 32x32 grayscale, 5 U-Net levels (so no dropout block, as the reference builds it at this depth), a
    # 34x34-receptive-field PatchGAN (6x6 logits): trains in minutes on 2 CPU cores.
    "tiny": {"resolution": 32, "in_channels": 1, "out_channels": 1, "ngf": 16, "ndf": 16, "n_layers_d": 2},
    # The paper's facades/maps/edges2shoes networks: unet_256 and the 70x70 PatchGAN, RGB to RGB.
    "paper": {"resolution": 256, "in_channels": 3, "out_channels": 3, "ngf": 64, "ndf": 64, "n_layers_d": 3},
}


def norm_layer(kind: str, channels: int, affine: bool = False) -> nn.Module:
    """The reference's ``get_norm_layer``: batch norm with affine parameters and running statistics, or
    instance norm without running statistics (with learnable scale/shift only when ``affine``)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class UNetBlock(nn.Module):
    """One U-Net level: down-sample, the inner levels, up-sample, then (below the outermost level) the output
    concatenated with the level's input.

    Args:
        outer: Channels this level returns to its parent (before the concatenation).
        inner: Channels of this level's down-sampled features.
        inner_block: The next level down; None makes this the innermost level.
        in_channels: Channels of the input when it differs from ``outer`` (the image at the outermost level).
        outermost: The image-facing level: no normalisation, Tanh output, no skip.
        norm: "batch" or "instance".
        dropout: Dropout 0.5 after the decoder's normalisation.
    """

    def __init__(self, outer: int, inner: int, inner_block: "UNetBlock | None" = None, in_channels: int | None = None,
                 *, outermost: bool = False, norm: str = "batch", dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"  # batch norm's shift makes a conv bias redundant
        down = nn.Conv2d(in_channels or outer, inner, 4, 2, 1, bias=bias)
        up_in = inner if inner_block is None else inner * 2  # the inner level returns its output with its input
        if outermost:
            layers = [down, inner_block, nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh()]
        elif inner_block is None:
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias),
                      norm_layer(norm, outer)]
        else:
            layers = [nn.LeakyReLU(0.2), down, norm_layer(norm, inner), inner_block, nn.ReLU(),
                      nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        # The skip carries the activated input: the reference's in-place LeakyReLU overwrites x before the concat.
        x = self.model[0](x)
        h = x
        for layer in self.model[1:]:
            h = layer(h)
        return torch.cat([x, h], 1)


class UNetGenerator(nn.Module):
    """image A (N, in_channels, R, R) in [-1, 1] -> image B (N, out_channels, R, R) in [-1, 1]."""

    def __init__(self, cfg: Pix2PixConfig):
        super().__init__()
        self.config = cfg
        ngf, norm = cfg.ngf, cfg.norm
        block = UNetBlock(ngf * 8, ngf * 8, norm=norm)
        for _ in range(cfg.num_downs - 5):
            block = UNetBlock(ngf * 8, ngf * 8, block, norm=norm, dropout=cfg.dropout)
        for mult in (4, 2, 1):
            block = UNetBlock(ngf * mult, ngf * mult * 2, block, norm=norm)
        self.model = UNetBlock(cfg.out_channels, ngf, block, cfg.in_channels, outermost=True, norm=norm)
        dcgan_init(self)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (every level halves them)."""
        return 2 ** self.config.num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """The reference's ``NLayerDiscriminator``: image (N, C, H, W) -> a map of patch logits (N, 1, h, w).

    Args:
        in_channels: Channels it sees (Pix2Pix: input and output concatenated).
        ndf: Width of the first layer (8 x ndf at most).
        n_layers: Stride-2 layers; 3 gives 70x70 receptive fields and 30x30 logits at 256x256.
        norm: "batch" or "instance".
        affine: Learnable instance-norm scale/shift.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch", affine: bool = False):
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1  # the last hidden layer keeps the resolution
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias), norm_layer(norm, ndf * mult, affine),
                       nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Pix2PixDiscriminator(PatchDiscriminator):
    """(input a, output b) pairs -> patch logits: the conditional PatchGAN of the paper."""

    def __init__(self, cfg: Pix2PixConfig):
        super().__init__(cfg.in_channels + cfg.out_channels, cfg.ndf, cfg.n_layers_d, cfg.norm)
        self.config = cfg

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.model(torch.cat([a, b], 1))


def pix2pix_step(ctx: StepContext) -> dict[str, float]:
    """One Pix2Pix update: D then G, as the reference's ``Pix2PixModel.optimize_parameters``."""
    a, b = ctx.batch["a"], ctx.batch["b"]
    G, D = ctx.nets["G_ab"], ctx.nets["D"]
    fake_b = G(a)
    d_fake, d_real = D(a, fake_b.detach()), D(a, b)  # the reference's order (it moves batch-norm running stats)
    loss_d = 0.5 * nonsaturating(d_real, d_fake)
    ctx.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    ctx.opt_d.step()

    set_requires_grad([D], False)
    loss_gan = nonsaturating_g(D(a, fake_b))
    loss_l1 = F.l1_loss(fake_b, b)
    ctx.opt_g.zero_grad(set_to_none=True)
    (loss_gan + ctx.model_config.lambda_l1 * loss_l1).backward()
    ctx.opt_g.step()
    set_requires_grad([D], True)
    return {"loss_d": loss_d.item(), "loss_g_gan": loss_gan.item(), "l1": loss_l1.item(),
            "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}


PIX2PIX = register_model(translation_entry(
    "pix2pix", True, Pix2PixConfig, UNetGenerator, Pix2PixDiscriminator, pix2pix_step,
    "Isola, Zhu, Zhou & Efros 2017, arXiv:1611.07004", PRESETS, batch_size=1))
