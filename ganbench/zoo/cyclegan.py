"""CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", arXiv:1703.10593), as in the authors' PyTorch reference junyanz/pytorch-CycleGAN-and-pix2pix
(``models/networks.py``: ``ResnetGenerator``, ``ResnetBlock``, ``NLayerDiscriminator``;
``models/cycle_gan_model.py`` for the defaults).

Generator: Johnson et al.'s transformation network as the paper's appendix gives it: a reflection-padded 7x7
convolution, two stride-2 3x3 convolutions down, residual blocks (two reflection-padded 3x3 convolutions each; 6
blocks at 128x128 and below, 9 at 256x256), two stride-2 transposed convolutions up, a reflection-padded 7x7
convolution and Tanh; instance norm and ReLU after every hidden convolution. Discriminator: the 70x70 PatchGAN
of Pix2Pix (``ganbench.zoo.pix2pix.PatchDiscriminator``) with instance norm, seeing one domain's images.
Weights from N(0, 0.02).

The module tree mirrors the reference's (``model.<i>``, ``model.<i>.conv_block.<j>``), so its state-dict keys are
the reference's. Instance norm has no running statistics, as in the reference's current ``get_norm_layer`` (early
versions tracked them; the reference's loader drops those buffers from old checkpoints). ``affine_norm=True``
adds learnable instance-norm scale/shift, which the generator of the ``vintagify`` package has; its checkpoint
loads through :func:`from_vintagify`.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.results.store import file_sha256
from ganbench.zoo.base import StepContext, register_model
from ganbench.zoo.dcgan import dcgan_init
from ganbench.zoo.objectives import least_squares
from ganbench.zoo.pix2pix import NORMS, PatchDiscriminator, norm_layer
from ganbench.zoo.safe_load import flat_state_dict, load_checkpoint
from ganbench.zoo.translator import TranslationPair, Translator, set_requires_grad, translation_entry


@dataclass
class CycleGANConfig:
    resolution: int = 256  # training image side (a multiple of 4; the networks are fully convolutional)
    in_channels: int = 3  # channels of domain A
    out_channels: int = 3  # channels of domain B
    ngf: int = 64  # generator width of the first layer (4 x ngf in the residual blocks)
    ndf: int = 64  # discriminator width of the first layer
    n_blocks: int | None = None  # residual blocks; None: the paper's rule, 6 at <= 128 px and 9 above
    n_layers_d: int = 3  # PatchGAN stride-2 layers: 3 is the 70x70 PatchGAN
    norm: str = "instance"  # "instance" (the paper's) or "batch"
    affine_norm: bool = False  # learnable instance-norm scale/shift (vintagify's generator has them)
    dropout: bool = False  # dropout 0.5 inside residual blocks (off in the paper: the reference's --no_dropout)
    lambda_cycle: float = 10.0  # weight of each cycle-consistency L1 term (the reference's lambda_A = lambda_B)
    lambda_identity: float = 0.5  # identity-loss weight as a fraction of lambda_cycle; 0 turns it off
    pool_size: int = 50  # generated images each discriminator's history pool holds (Shrivastava et al. 2017)

    def __post_init__(self) -> None:
        if self.resolution < 4 or self.resolution % 4:
            raise ValueError(f"CycleGAN resolution must be a positive multiple of 4, got {self.resolution}")
        if self.norm not in NORMS:
            raise ValueError(f"CycleGAN norm must be one of {NORMS}, got {self.norm!r}")
        if self.n_blocks is not None and self.n_blocks < 0:
            raise ValueError(f"CycleGAN n_blocks must be >= 0 or None, got {self.n_blocks}")
        if self.lambda_identity > 0 and self.in_channels != self.out_channels:
            raise ValueError(f"the identity loss feeds B images to G_AB, so it needs in_channels == out_channels "
                             f"(got {self.in_channels} and {self.out_channels}); set lambda_identity=0")
        if self.pool_size < 0:
            raise ValueError(f"CycleGAN pool_size must be >= 0, got {self.pool_size}")

    @property
    def blocks(self) -> int:
        if self.n_blocks is not None:
            return self.n_blocks
        return 6 if self.resolution <= 128 else 9

    def reversed(self) -> "CycleGANConfig":
        """The same recipe translating B -> A (the reference's G_B and D_B)."""
        return replace(self, in_channels=self.out_channels, out_channels=self.in_channels)


PRESETS: dict[str, dict[str, Any]] = {
    # 32x32 grayscale, 3 residual blocks of 64 channels at 8x8: trains in minutes on 2 CPU cores.
    "tiny": {"resolution": 32, "in_channels": 1, "out_channels": 1, "ngf": 16, "ndf": 16, "n_blocks": 3,
             "n_layers_d": 2},
    # The paper's 256x256 networks (resnet_9blocks, 70x70 PatchGAN); resolution=128 gives resnet_6blocks.
    "paper": {"resolution": 256, "in_channels": 3, "out_channels": 3, "ngf": 64, "ndf": 64, "n_layers_d": 3},
    # The vintagify package's generator: resnet_9blocks with affine instance norm.
    "vintage256": {"resolution": 256, "in_channels": 3, "out_channels": 3, "ngf": 64, "ndf": 64, "n_blocks": 9,
                   "affine_norm": True},
}


class ResnetBlock(nn.Module):
    """x + two reflection-padded 3x3 convolutions (norm, ReLU between them, norm after the second)."""

    def __init__(self, dim: int, norm: str, affine: bool, dropout: bool):
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias),
                                   norm_layer(norm, dim, affine), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(norm, dim, affine)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class CycleGANGenerator(nn.Module):
    """image A (N, in_channels, H, W) in [-1, 1] -> image B (N, out_channels, H, W) in [-1, 1]."""

    def __init__(self, cfg: CycleGANConfig):
        super().__init__()
        self.config = cfg
        ngf, norm, affine = cfg.ngf, cfg.norm, cfg.affine_norm
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(cfg.in_channels, ngf, 7, bias=bias),
                                   norm_layer(norm, ngf, affine), nn.ReLU()]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1, bias=bias),
                       norm_layer(norm, ngf * mult * 2, affine), nn.ReLU()]
        layers += [ResnetBlock(ngf * 4, norm, affine, cfg.dropout) for _ in range(cfg.blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm_layer(norm, ngf * mult // 2, affine), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cfg.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        dcgan_init(self)

    @property
    def size_multiple(self) -> int:
        return 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class CycleGANDiscriminator(PatchDiscriminator):
    """Images of the config's output domain (N, out_channels, H, W) -> patch logits (N, 1, h, w)."""

    def __init__(self, cfg: CycleGANConfig):
        super().__init__(cfg.out_channels, cfg.ndf, cfg.n_layers_d, cfg.norm, cfg.affine_norm)
        self.config = cfg


# --- the vintagify package's generator (PyPI ``vintagify``, MIT) ------------------------------------------------

VINTAGIFY_DISTRIBUTION = "vintagify"
VINTAGIFY_WEIGHTS = "vintagify/resources/G_A2B_epoch33.pth"  # the modern -> vintage generator it ships
_VINTAGIFY_BLOCK = re.compile(r"^model\.(\d+)\.block\.")


def vintagify_weights_path() -> Path:
    """The generator checkpoint inside the installed ``vintagify`` distribution (found without importing it).

    Raises:
        FileNotFoundError: If the package is not installed or its file is missing.
    """
    try:
        dist = importlib.metadata.distribution(VINTAGIFY_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError("the vintagify CycleGAN weights come with the 'vintagify' package, which is not "
                                "installed: pip install vintagify") from None
    path = Path(str(dist.locate_file(VINTAGIFY_WEIGHTS)))
    if not path.is_file():
        raise FileNotFoundError(f"vintagify {dist.version} is installed but {str(path)!r} is missing; reinstall it: "
                                f"pip install --force-reinstall vintagify")
    return path


def from_vintagify(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """vintagify's ``ResnetGenerator`` state dict -> this module's keys.

    Its layer indices are the reference's; only the residual blocks' inner sequence is called ``block`` there
    and ``conv_block`` here. Load the result strictly into ``CycleGANGenerator`` built with the ``vintage256``
    preset (its instance norms have affine parameters).

    Raises:
        TypeError: If a value is not a tensor.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not torch.is_tensor(value):
            raise TypeError(f"vintagify state dict entry {key!r} is a {type(value).__name__}, expected a tensor")
        out[_VINTAGIFY_BLOCK.sub(r"model.\1.conv_block.", key)] = value
    return out


def load_vintagify_generator(path: str | Path | None = None) -> CycleGANGenerator:
    """vintagify's modern -> vintage generator as a ``CycleGANGenerator`` (eval mode).

    Args:
        path: The ``.pth`` file; None uses the installed package's (:func:`vintagify_weights_path`).
    """
    path = Path(path) if path is not None else vintagify_weights_path()
    # A third party's pickle: read through torch's weights-only unpickler, never executed.
    state = flat_state_dict(load_checkpoint(path), f"vintagify checkpoint {str(path)!r}")
    net = CycleGANGenerator(CycleGANConfig(**PRESETS["vintage256"]))
    net.load_state_dict(from_vintagify(state), strict=True)
    return net.eval()


def cyclegan_step(ctx: StepContext) -> dict[str, float]:
    """One CycleGAN update: both generators, then both discriminators on pooled fakes, as the reference's
    ``CycleGANModel.optimize_parameters``."""
    cfg, a, b, g = ctx.model_config, ctx.batch["a"], ctx.batch["b"], ctx.generator
    G_ab, G_ba, D_a, D_b = ctx.nets["G_ab"], ctx.nets["G_ba"], ctx.nets["D_a"], ctx.nets["D_b"]
    pools = ctx.state.extras
    fake_b, fake_a = G_ab(a), G_ba(b)
    rec_a, rec_b = G_ba(fake_b), G_ab(fake_a)

    set_requires_grad([D_a, D_b], False)
    lam = cfg.lambda_cycle
    if cfg.lambda_identity > 0:
        idt_b = F.l1_loss(G_ab(b), b) * lam * cfg.lambda_identity  # G_ab should leave B images alone
        idt_a = F.l1_loss(G_ba(a), a) * lam * cfg.lambda_identity
    else:
        idt_a = idt_b = torch.zeros((), device=a.device)
    pred_b, pred_a = D_b(fake_b), D_a(fake_a)
    gan_ab = F.mse_loss(pred_b, torch.ones_like(pred_b))
    gan_ba = F.mse_loss(pred_a, torch.ones_like(pred_a))
    cycle_a, cycle_b = F.l1_loss(rec_a, a) * lam, F.l1_loss(rec_b, b) * lam
    ctx.opt_g.zero_grad(set_to_none=True)
    (gan_ab + gan_ba + cycle_a + cycle_b + idt_a + idt_b).backward()
    ctx.opt_g.step()
    set_requires_grad([D_a, D_b], True)

    # least_squares is 0.5 (D(real) - 1)^2 + 0.5 D(fake)^2: the reference's halved D loss.
    loss_d_b = least_squares(D_b(b), D_b(pools["pool.b"].query(fake_b, g)))
    loss_d_a = least_squares(D_a(a), D_a(pools["pool.a"].query(fake_a, g)))
    ctx.opt_d.zero_grad(set_to_none=True)
    (loss_d_a + loss_d_b).backward()
    ctx.opt_d.step()
    return {"loss_d_a": loss_d_a.item(), "loss_d_b": loss_d_b.item(), "gan_ab": gan_ab.item(),
            "gan_ba": gan_ba.item(), "cycle_a": cycle_a.item(), "cycle_b": cycle_b.item(), "idt_a": idt_a.item(),
            "idt_b": idt_b.item()}


def _pair(cfg: CycleGANConfig) -> TranslationPair:
    return TranslationPair(CycleGANGenerator(cfg), CycleGANGenerator(cfg.reversed()))


def _discriminators(cfg: CycleGANConfig) -> nn.ModuleDict:
    return nn.ModuleDict({"a": CycleGANDiscriminator(cfg.reversed()), "b": CycleGANDiscriminator(cfg)})


CYCLEGAN = register_model(translation_entry(
    "cyclegan", False, CycleGANConfig, _pair, _discriminators, cyclegan_step,
    "Zhu, Park, Isola & Efros 2017, arXiv:1703.10593", {k: v for k, v in PRESETS.items() if k in ("tiny", "paper")},
    batch_size=1, pools=("a", "b")))


def vintage256_translator(path: str | Path | None = None) -> Translator:
    """The ``cyclegan.vintage256`` weights: vintagify's modern -> vintage CycleGAN generator (RGB, any multiple of
    4 px; trained at 256 px), one direction only.

    Args:
        path: The package's ``G_A2B_epoch33.pth``; None finds it in the installed ``vintagify`` package.
    """
    path = Path(path) if path is not None else vintagify_weights_path()
    net = load_vintagify_generator(path)
    return Translator(CYCLEGAN, CycleGANConfig(**PRESETS["vintage256"]), net, file_sha256(path),
                      name="cyclegan.vintage256")
