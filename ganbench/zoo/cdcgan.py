"""Class-conditional DCGAN: the DCGAN networks (Radford, Metz & Chintala 2015, arXiv:1511.06434) conditioned on a
class label by concatenating its one-hot code to the input, as in Mirza & Osindero 2014 ("Conditional Generative
Adversarial Nets", arXiv:1411.1784).

The generator follows omniart-eye-generator (Knoester 2019, PyPI ``omniart-eye-generator`` 0.1, MIT; a 128x128
eye generator over 8 iris colours): ``z`` (nz) and the one-hot label (n_classes) are concatenated into one
(nz + n_classes, 1, 1) input of DCGAN's transposed-convolution stack, whose widths halve from ``ngf * 2^(stages-1)``
to ``ngf``; that package puts ``Dropout(0.2)`` after the first block (``dropout``), which is the identity in eval
mode. Its tensor names equal ``CDCGANGenerator.main``'s, so its state dict loads unmapped.

What differs: the package takes a one-hot float tensor; ``CDCGANGenerator`` takes integer class labels and builds
the one-hot code itself (the same numbers). The package ships no discriminator or training code;
``CDCGANDiscriminator`` is DCGAN's discriminator with the one-hot label broadcast to extra input planes, the usual
cDCGAN choice. ``ganbench train cdcgan`` trains it through ``conditional_step`` below (real labels from the dataset,
fake labels uniform over the classes).

Training (``conditional_step``, run by ``ganbench.train.loop``): Mirza & Osindero 2014 ("Conditional Generative Adversarial Nets", arXiv:1411.1784), Section 3.2: the GAN minimax game
with both players given the class label, ``min_G max_D E[log D(x|y)] + E[log(1 - D(G(z|y)|y))]``, here with
Goodfellow et al.'s non-saturating generator loss ``-log D(G(z|y)|y)`` and DCGAN's Adam settings (entry: 2e-4,
betas (0.5, 0.999)). One D update on (real, real labels) and (G(z, y_fake), y_fake), then one G update through the
updated D with the same z and y_fake, as ``ganbench.zoo.base.adversarial_step`` does for unconditional models.

The real labels come from ``ctx.labels`` (the dataset's); the latents and the fake labels (uniform over the classes)
are drawn from ``ctx.generator``, the step's seeded random source, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.zoo.base import Generator, ModelEntry, StepContext, register_model, to_uint8
from ganbench.zoo.dcgan import DCGAN_PAPER, DCGANConfig, DCGANDiscriminator, dcgan_init, generator_layers
from ganbench.zoo.objectives import nonsaturating, nonsaturating_g


@dataclass
class CDCGANConfig:
    resolution: int = 32  # output side: 32, 64 or 128
    channels: int = 1  # image channels
    nz: int = 100  # latent dimension (without the label code)
    n_classes: int = 10  # number of class labels
    ngf: int = 64  # generator width (channels of the last hidden layer)
    ndf: int = 64  # discriminator width (channels of the first layer)
    dropout: float = 0.0  # G dropout after its first block (omniart: 0.2); 0 adds no layer

    def __post_init__(self) -> None:
        if self.n_classes < 2:
            raise ValueError(f"cDCGAN needs at least 2 classes, got n_classes={self.n_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"cDCGAN dropout must be in [0, 1), got {self.dropout}")
        self.dcgan()  # checks the resolution

    def dcgan(self, channels: int | None = None) -> DCGANConfig:
        """The DCGAN configuration of the unconditional trunk."""
        return DCGANConfig(self.resolution, self.channels if channels is None else channels, self.nz, self.ngf,
                           self.ndf)


def one_hot(labels: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """(N,) integer labels -> (N, n_classes) one-hot rows, with a clear error for labels out of range."""
    if labels.dtype.is_floating_point or labels.dim() != 1:
        raise ValueError(f"class labels must be a 1-D integer tensor, got {labels.dtype} {tuple(labels.shape)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"class labels must lie in [0, {n_classes}), got [{int(labels.min())}, {int(labels.max())}]")
    return F.one_hot(labels.long(), n_classes).to(dtype)


class CDCGANGenerator(nn.Module):
    """(z (N, nz), labels (N,) int) -> image (N, C, R, R) in [-1, 1]."""

    def __init__(self, cfg: CDCGANConfig):
        super().__init__()
        self.nz = cfg.nz
        self.n_classes = cfg.n_classes
        self.main = nn.Sequential(*generator_layers(cfg.dcgan(), cfg.nz + cfg.n_classes, cfg.dropout))
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError("the class-conditional DCGAN needs class labels: call G(z, labels), or sample through "
                             "ConditionalGenerator.sample")
        if len(labels) != len(z):
            raise ValueError(f"got {len(z)} latents but {len(labels)} labels")
        x = torch.cat([z.reshape(len(z), -1), one_hot(labels, self.n_classes, z.dtype)], dim=1)
        return self.main(x.view(len(x), -1, 1, 1))


class CDCGANDiscriminator(nn.Module):
    """(image (N, C, R, R), labels (N,) int) -> one logit per image (N,); the label enters as one-hot planes."""

    def __init__(self, cfg: CDCGANConfig):
        super().__init__()
        self.n_classes = cfg.n_classes
        self.body = DCGANDiscriminator(cfg.dcgan(channels=cfg.channels + cfg.n_classes))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        planes = one_hot(labels, self.n_classes, x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.body(torch.cat([x, planes], dim=1))


class ConditionalGenerator(Generator):
    """``Generator`` with the class-conditional sampling contract ``sample(n, seed, labels=None)``.

    Without labels every class is drawn equally often: sample ``i`` gets label ``i % n_classes``, so a protocol's
    samples are balanced and do not depend on the batch size.
    """

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch_size: int = 500, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = torch.randn(n, self.net.nz, generator=torch.Generator().manual_seed(seed))
        labels = torch.arange(n) % self.net.n_classes if labels is None else torch.as_tensor(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        outs = [self.net(z[i:i + batch_size], labels[i:i + batch_size]) for i in range(0, n, batch_size)]
        return to_uint8(torch.cat(outs)) if outs else torch.empty(0, dtype=torch.uint8)


def conditional_step(ctx: StepContext) -> dict[str, float]:
    """One D and one G update of the conditional GAN; returns the losses and mean D logits to log."""
    if ctx.labels is None:
        raise ValueError("the class-conditional DCGAN trains on a labelled dataset (mnist, digits8, ...); this "
                         "dataset split has no labels")
    if ctx.D is None or ctx.opt_d is None:
        raise ValueError("the class-conditional DCGAN step needs a discriminator and its optimizer")
    G, D = ctx.G, ctx.D
    n = len(ctx.real)
    g = ctx.generator  # on the networks' device when they are not on the CPU (the throughput bench)
    z = torch.randn(n, G.nz, generator=g, device=g.device)
    fake_labels = torch.randint(G.n_classes, (n,), generator=g, device=g.device)
    fake = G(z, fake_labels)

    d_real, d_fake = D(ctx.real, ctx.labels), D(fake.detach(), fake_labels)
    loss_d = nonsaturating(d_real, d_fake)
    ctx.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    ctx.opt_d.step()

    loss_g = nonsaturating_g(D(fake, fake_labels))
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": d_real.mean().item(),
            "d_fake": d_fake.mean().item()}


CDCGAN_PAPER = f"Mirza & Osindero 2014, arXiv:1411.1784 (one-hot label concatenated to z) on DCGAN, {DCGAN_PAPER}"


def balanced_inputs(cfg: CDCGANConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A latent per sample and labels 0, 1, ..., n_classes - 1 in turn (every class equally often)."""
    return torch.randn(batch, cfg.nz, generator=generator), torch.arange(batch) % cfg.n_classes


# "tiny": 32x32 grey MNIST at DCGAN tiny's width; "paper": the published omniart eyes128 checkpoint's configuration
CDCGAN_PRESETS = {"tiny": {"resolution": 32, "channels": 1, "nz": 100, "n_classes": 10, "ngf": 32, "ndf": 32},
                  "paper": {"resolution": 128, "channels": 3, "nz": 100, "n_classes": 8, "ngf": 64, "ndf": 64,
                            "dropout": 0.2}}
CDCGAN = register_model(ModelEntry("cdcgan", "cdcgan", "class_conditional", "images", CDCGANConfig, CDCGANGenerator,
                                   CDCGANDiscriminator, "nonsaturating", 2e-4, 2e-4, (0.5, 0.999), CDCGAN_PAPER,
                                   presets=CDCGAN_PRESETS, generator_inputs=balanced_inputs, train_step=conditional_step,
                                   wrapper=ConditionalGenerator))
