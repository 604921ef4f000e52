"""Text-to-image GAN training: the matching-aware discriminator of Reed et al. 2016 (GAN-CLS, arXiv:1605.05396,
Algorithm 1) with StackGAN's conditioning-augmentation KL term (Zhang et al. 2017, arXiv:1612.03242, Eq. 3-4), as
hanzhanggit/StackGAN-Pytorch ``miscc/utils.py`` (``compute_discriminator_loss``, ``KL_loss``) computes them.

Each step takes the real batch and its class labels from the training loop (``ctx.real``, ``ctx.labels``; the
dataset must have labels, e.g. ``mnist``) and captions every real image from its pixels and label
(``ganbench.data.captions.build_captions``; deterministic). Then:

1. D on three kinds of pairs: (real image, its caption) -> 1; (real image, a wrong caption) -> 0; (G(z, caption),
   caption) -> 0, with binary cross-entropy, ``L_D = L_real + (L_wrong + L_fake) / 2``. The wrong caption of image
   i is the caption of image i - 1 of the batch (StackGAN pairs ``real[:-1]`` with ``cond[1:]``; rolling keeps all B
   pairs). About one in ten shares the digit; such a pair still differs in the attributes or is, rarely, the same
   caption, as in the reference.
2. G: ``-log D(G(z, caption), caption)`` plus ``kl_weight`` x the CA KL term, StackGAN's element mean
   ``-0.5 mean(1 + logvar - mu^2 - exp(logvar))``.

z and the CA noise eps come from the step's seeded generator, so a resumed run repeats an uninterrupted one.
Logged: ``loss_d``, ``loss_g``, ``kl`` (the KL divergence in nats per caption, summed over the code),
``d_real``, ``d_wrong``, ``d_fake`` (mean logits). Adam(2e-4, betas (0.5, 0.999)) as in both references.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganbench.data.captions import build_captions
from ganbench.zoo import to_uint8
from ganbench.zoo.text2img import Text2ImgConfig, kl_to_standard_normal, reparameterise


def real_captions(real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Caption token ids of a real batch in [-1, 1] with its class labels."""
    if labels is None:
        raise ValueError("text-to-image training captions each image from its class label: train on a dataset with "
                         "labels (e.g. mnist)")
    return build_captions(to_uint8(real.detach().cpu()), labels.cpu().numpy()).tokens.to(real.device)


def stackgan_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """StackGAN's ``KL_loss``: the KL divergence's summand averaged over batch and code elements."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean()


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def text2img_step(ctx) -> dict[str, float]:
    """One GAN-CLS + CA step on ``ctx`` (a ``ganbench.train.loop.StepContext``); returns the losses to log."""
    cfg: Text2ImgConfig = ctx.model_config
    G, D, opt_g, opt_d, g = ctx.G, ctx.D, ctx.opt_g, ctx.opt_d, ctx.generator
    real = ctx.real
    if real.dim() != 4 or tuple(real.shape[1:]) != (cfg.channels, cfg.resolution, cfg.resolution):
        raise ValueError(f"text-to-image config expects {cfg.channels}x{cfg.resolution}x{cfg.resolution} images, "
                         f"the dataset gives {tuple(real.shape[1:])}")
    right = real_captions(real, ctx.labels)
    wrong = right.roll(1, dims=0)
    n = len(real)
    z = torch.randn(n, cfg.nz, generator=g).to(real.device)
    eps = torch.randn(n, cfg.c_dim, generator=g).to(real.device)

    mu, logvar = G.condition(right)
    fake = G.decode(z, reparameterise(mu, logvar, eps))

    text_right, text_wrong = D.embed_text(right), D.embed_text(wrong)
    h_real = D.image(real)
    d_real = D.logits(h_real, text_right)
    d_wrong = D.logits(h_real, text_wrong)
    d_fake = D.logits(D.image(fake.detach()), text_right)
    loss_d = _bce(d_real, 1.0) + 0.5 * (_bce(d_wrong, 0.0) + _bce(d_fake, 0.0))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    adv = _bce(D(fake, right), 1.0)
    kl = stackgan_kl(mu, logvar)
    loss_g = adv + cfg.kl_weight * kl
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "kl": kl_to_standard_normal(mu, logvar).mean().item(),
            "d_real": d_real.mean().item(), "d_wrong": d_wrong.mean().item(), "d_fake": d_fake.mean().item()}


__all__ = ["real_captions", "stackgan_kl", "text2img_step"]
