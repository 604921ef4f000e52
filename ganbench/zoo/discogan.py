"""DiscoGAN (Kim, Cha, Kim, Lee & Kim 2017, "Learning to Discover Cross-Domain Relations with Generative
Adversarial Networks", arXiv:1703.05192), as in the authors' PyTorch reference SKTBrain/DiscoGAN
(``discogan/model.py``: ``Generator``, ``Discriminator``; ``discogan/image_translation.py`` for the recipe).

Generator: an encoder-decoder without skip connections: stride-2 4x4 convolutions down to 4x4 (LeakyReLU(0.2),
batch norm after all but the first), stride-2 4x4 transposed convolutions back up (batch norm, ReLU), no biases,
a Sigmoid output. The reference's ``extra_layers`` variant (``bottleneck=100`` here) squeezes the 4x4 map through
a 4x4 convolution into a 1x1 code and expands it again. Discriminator: the DCGAN discriminator (a 4x4
stride-1 convolution to one logit at the end) that also returns its hidden activations for the feature-matching
loss. Both keep PyTorch's default initialisation, as the reference does.

The reference works on pixels in [0, 1]. These networks take and return ganbench's [-1, 1] and map to and from
[0, 1] at the boundary, so the same weights compute the same functions as the reference's and its loss scales
carry over unchanged; their module names are the reference's (``main.<i>`` in G, ``conv1``..``bn4`` in D at 64x64),
so its state dicts load as they are. What differs: any power-of-two resolution >= 16 (the reference is fixed at
64x64 RGB, where this is identical), any channel counts, and D returns logits (the loss applies the sigmoid
inside a numerically stable binary cross-entropy) instead of probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.zoo.base import StepContext, register_model
from ganbench.zoo.objectives import nonsaturating, nonsaturating_g
from ganbench.zoo.translator import TranslationPair, set_requires_grad, translation_entry


@dataclass
class DiscoGANConfig:
    resolution: int = 64  # image side, a power of two >= 16 (every experiment in the paper uses 64)
    in_channels: int = 3  # channels of domain A
    out_channels: int = 3  # channels of domain B
    ngf: int = 64  # generator width of the first layer (doubling at each down-sampling)
    ndf: int = 64  # discriminator width of the first layer
    bottleneck: int = 0  # 1x1 code size of the reference's extra_layers generator (100); 0: no bottleneck
    gan_curriculum: int = 10000  # steps that use starting_rate before default_rate takes over
    starting_rate: float = 0.01  # reconstruction weight (vs. 1 - it for the GAN terms) during the curriculum
    default_rate: float = 0.5  # reconstruction weight after the curriculum
    update_interval: int = 3  # every update_interval-th step updates D, the others update G (the reference's)
    weight_decay: float = 1e-5  # Adam weight decay of both optimizers
    fm_weight: float = 0.9  # share of feature matching in each GAN term (the rest is the plain GAN loss)

    def __post_init__(self) -> None:
        if self.resolution < 16 or self.resolution & (self.resolution - 1):
            raise ValueError(f"DiscoGAN resolution must be a power of two >= 16, got {self.resolution}")
        if self.update_interval < 2:
            raise ValueError(f"DiscoGAN update_interval must be >= 2 (one D step, then G steps), got "
                             f"{self.update_interval}")
        for name in ("starting_rate", "default_rate", "fm_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DiscoGAN {name} must lie in [0, 1], got {getattr(self, name)}")

    @property
    def stages(self) -> int:
        return int(math.log2(self.resolution)) - 2  # stride-2 layers from the image down to 4x4

    def reversed(self) -> "DiscoGANConfig":
        """The same recipe translating B -> A."""
        return replace(self, in_channels=self.out_channels, out_channels=self.in_channels)


PRESETS: dict[str, dict[str, Any]] = {
    # 32x32 grayscale, a 300-step curriculum (the reference's 10k is longer than a whole tiny run).
    "tiny": {"resolution": 32, "in_channels": 1, "out_channels": 1, "ngf": 16, "ndf": 16, "gan_curriculum": 300},
    # The paper's 64x64 RGB networks and recipe.
    "paper": {"resolution": 64, "in_channels": 3, "out_channels": 3, "ngf": 64, "ndf": 64},
}


class DiscoGANGenerator(nn.Module):
    """image A (N, in_channels, R, R) in [-1, 1] -> image B (N, out_channels, R, R) in [-1, 1]."""

    def __init__(self, cfg: DiscoGANConfig):
        super().__init__()
        self.config = cfg
        ngf = cfg.ngf
        layers: list[nn.Module] = [nn.Conv2d(cfg.in_channels, ngf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
        mult = 1
        for _ in range(cfg.stages - 1):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * mult * 2),
                       nn.LeakyReLU(0.2)]
            mult *= 2
        if cfg.bottleneck:
            layers += [nn.Conv2d(ngf * mult, cfg.bottleneck, 4, 1, 0, bias=False), nn.BatchNorm2d(cfg.bottleneck),
                       nn.LeakyReLU(0.2), nn.ConvTranspose2d(cfg.bottleneck, ngf * mult, 4, 1, 0, bias=False),
                       nn.BatchNorm2d(ngf * mult), nn.ReLU()]
        for _ in range(cfg.stages - 1):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU()]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, cfg.out_channels, 4, 2, 1, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)

    @property
    def size_multiple(self) -> int:
        return self.config.resolution if self.config.bottleneck else 2 ** self.config.stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main((x + 1) / 2) * 2 - 1  # the reference's [0, 1] pixels inside


class DiscoGANDiscriminator(nn.Module):
    """Images of the config's output domain (N, out_channels, R, R) in [-1, 1] -> (logits (N,), features).

    The features are the LeakyReLU outputs of layers 2 .. ``stages`` (``relu2``..``relu4`` at 64x64), which the
    reference's feature-matching loss compares between real and generated batches.
    """

    def __init__(self, cfg: DiscoGANConfig):
        super().__init__()
        self.config = cfg
        ndf = cfg.ndf
        self.conv1 = nn.Conv2d(cfg.out_channels, ndf, 4, 2, 1, bias=False)
        self.act = nn.LeakyReLU(0.2)
        for i in range(2, cfg.stages + 1):
            self.add_module(f"conv{i}", nn.Conv2d(ndf * 2 ** (i - 2), ndf * 2 ** (i - 1), 4, 2, 1, bias=False))
            self.add_module(f"bn{i}", nn.BatchNorm2d(ndf * 2 ** (i - 1)))
        self.add_module(f"conv{cfg.stages + 1}", nn.Conv2d(ndf * 2 ** (cfg.stages - 1), 1, 4, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        r = self.config.resolution
        if x.shape[-2:] != (r, r):
            raise ValueError(f"the DiscoGAN discriminator judges {r}x{r} images, got {tuple(x.shape[-2:])}")
        h = self.act(self.conv1((x + 1) / 2))
        features = []
        for i in range(2, self.config.stages + 1):
            h = self.act(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(h)))
            features.append(h)
        logits = getattr(self, f"conv{self.config.stages + 1}")(h)
        return logits.flatten(), features


def _feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """The reference's ``get_fm_loss``: per layer, the mean squared difference of the batch-mean activations
    (its HingeEmbeddingLoss with target 1 reduces to that mean), summed over layers."""
    return sum(((r.mean(0) - f.mean(0)) ** 2).mean() for r, f in zip(real, fake))


def _half_bce(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * nonsaturating(d_real, d_fake)


def discogan_rate(cfg: DiscoGANConfig, step: int) -> float:
    """Weight of the reconstruction terms at ``step`` (the reference's GAN curriculum)."""
    return cfg.starting_rate if step < cfg.gan_curriculum else cfg.default_rate


def discogan_step(ctx: StepContext) -> dict[str, float]:
    """One DiscoGAN iteration of the reference's loop: a D update when ``step % update_interval == 0``, a G
    update otherwise; the losses of both are computed and logged every step (``updated``: 0 for a D step, 1 for a
    G step)."""
    cfg, a, b, step = ctx.model_config, ctx.batch["a"], ctx.batch["b"], ctx.step
    G_ab, G_ba, D_a, D_b = ctx.nets["G_ab"], ctx.nets["G_ba"], ctx.nets["D_a"], ctx.nets["D_b"]
    update_d = step % cfg.update_interval == 0
    with torch.set_grad_enabled(not update_d):  # a D step needs no gradient through the generators
        ab, ba = G_ab(a), G_ba(b)
        aba, bab = G_ba(ab), G_ab(ba)
    # The reference's MSE is over [0, 1] pixels: a quarter of the MSE over ganbench's [-1, 1].
    recon_a, recon_b = F.mse_loss(aba, a) / 4, F.mse_loss(bab, b) / 4
    set_requires_grad([D_a, D_b], update_d)
    a_real, a_real_feats = D_a(a)
    a_fake, a_fake_feats = D_a(ba)
    b_real, b_real_feats = D_b(b)
    b_fake, b_fake_feats = D_b(ab)
    dis_a, dis_b = _half_bce(a_real, a_fake), _half_bce(b_real, b_fake)
    gen_a, gen_b = nonsaturating_g(a_fake), nonsaturating_g(b_fake)  # gen_a: G_ba fooling D_a
    fm_a, fm_b = _feature_matching(a_real_feats, a_fake_feats), _feature_matching(b_real_feats, b_fake_feats)
    rate, w = discogan_rate(cfg, step), cfg.fm_weight
    total_ab = (gen_b * (1 - w) + fm_b * w) * (1 - rate) + recon_a * rate  # the reference's gen_loss_A_total
    total_ba = (gen_a * (1 - w) + fm_a * w) * (1 - rate) + recon_b * rate
    if update_d:
        ctx.opt_d.zero_grad(set_to_none=True)
        (dis_a + dis_b).backward()
        ctx.opt_d.step()
    else:
        ctx.opt_g.zero_grad(set_to_none=True)
        (total_ab + total_ba).backward()
        ctx.opt_g.step()
    set_requires_grad([D_a, D_b], True)
    return {"updated": 0.0 if update_d else 1.0, "loss_d_a": dis_a.item(), "loss_d_b": dis_b.item(),
            "gan_ab": gen_b.item(), "gan_ba": gen_a.item(), "fm_a": fm_a.item(), "fm_b": fm_b.item(),
            "recon_a": recon_a.item(), "recon_b": recon_b.item(), "rate": rate}


def _pair(cfg: DiscoGANConfig) -> TranslationPair:
    return TranslationPair(DiscoGANGenerator(cfg), DiscoGANGenerator(cfg.reversed()))


def _discriminators(cfg: DiscoGANConfig) -> nn.ModuleDict:
    return nn.ModuleDict({"a": DiscoGANDiscriminator(cfg.reversed()), "b": DiscoGANDiscriminator(cfg)})


DISCOGAN = register_model(translation_entry(
    "discogan", False, DiscoGANConfig, _pair, _discriminators, discogan_step,
    "Kim, Cha, Kim, Lee & Kim 2017, arXiv:1703.05192", PRESETS, batch_size=64))
