"""StyleGAN2's training step (Karras et al. 2020, arXiv:1912.04958), for ``ModelEntry.train_step``.

Follows NVlabs/stylegan2-ada-pytorch ``training/loss.py`` (``StyleGAN2Loss``) and the phase loop of
``training/training_loop.py``. One ganbench step is one reference iteration over one real batch, in its order:

1. Gmain: the non-saturating logistic loss softplus(-D(G(z))) (z with style mixing);
2. Greg, every ``pl_interval``-th step (step % pl_interval == 0) when ``pl_weight`` > 0: path-length
   regularisation on ``batch // pl_batch_shrink`` samples, ``pl_weight * (|J_w^T y| - a)^2`` with y ~ N(0, I) / R
   and ``a`` the running mean of path lengths (decay ``pl_decay``), kept in the generator's ``pl_mean`` buffer;
3. Dmain: softplus(D(G(z))) + softplus(-D(x));
4. Dreg, every ``r1_interval``-th step when ``r1_gamma`` > 0: R1, ``gamma / 2 * |grad_x D(x)|^2`` on the real
   batch (Mescheder et al. 2018).

Each phase is its own Adam step with its own latents; a lazy regulariser is multiplied by its interval, and Adam's
learning rate and betas are scaled by ``interval / (interval + 1)`` (``lr * c``, ``beta ** c``), as the reference
does. Style mixing (probability ``style_mixing_prob``): one cutoff per batch, uniform in [1, num_ws), the styles
from the cutoff on taken from a second latent. Every random number comes from the step's generator, so a resumed
run equals an uninterrupted one.

What differs: the EMA of G is ganbench's ``--ema DECAY`` (a constant decay; the reference's is a half-life of
``ema_kimg`` thousand images with a ramp-up: for the cifar config 0.5 ** (64 / 500000) ~= 0.99991 after the
ramp-up); no adaptive augmentation (ADA), no gradient NaN scrubbing, one process.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.zoo.stylegan2 import BETAS, LR, StyleGAN2Config, StyleGAN2Generator


def r1_penalty(D: nn.Module, real: torch.Tensor, create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sample |grad_x D(x)|^2 (N,), D(x) (N,)) at the real images: Mescheder et al. 2018, eq. 9 without the
    gamma / 2 factor."""
    x = real.detach().requires_grad_(True)
    logits = D(x)
    (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=create_graph)
    return grads.square().sum(dim=list(range(1, grads.dim()))), logits


def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Per-sample path length |J_w^T y| of the StyleGAN2 paper's eq. 4, averaged over the ``num_ws`` styles as in
    the reference: sqrt(mean_l sum_d (d <img, noise> / d ws[n, l, d])^2). ``noise`` is y / sqrt(H W)."""
    (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def mixed_styles(G: StyleGAN2Generator, z: torch.Tensor, prob: float, generator: torch.Generator,
                 update_w_avg: bool = True) -> torch.Tensor:
    """ws of ``z``; with probability ``prob`` the styles from a random cutoff on come from a second latent."""
    ws = G.mapping(z, update_w_avg=update_w_avg)
    if prob <= 0:
        return ws
    cutoff = int(torch.randint(1, ws.shape[1], (), generator=generator))
    if float(torch.rand((), generator=generator)) >= prob:
        return ws
    ws2 = G.mapping(torch.randn(z.shape, generator=generator).to(z.device), update_w_avg=False)
    return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)


def _set_lazy_hyperparameters(opt: torch.optim.Optimizer, lr: float, interval: int) -> None:
    """Adam's lr and betas scaled for lazy regularisation (reference ``training_loop.py``, ``mb_ratio``)."""
    c = interval / (interval + 1)
    for group in opt.param_groups:
        group["lr"] = lr * c
        group["betas"] = (BETAS[0] ** c, BETAS[1] ** c)


def stylegan2_step(ctx) -> dict[str, float]:
    """One StyleGAN2 iteration (Gmain, Greg, Dmain, Dreg) on ``ctx.real``; returns the losses to log."""
    G, D, cfg = ctx.G, ctx.D, ctx.model_config
    if not isinstance(cfg, StyleGAN2Config):
        raise TypeError(f"stylegan2_step needs a StyleGAN2Config, got {type(cfg).__name__}")
    gen, real, step = ctx.generator, ctx.real, ctx.step
    batch, device = real.shape[0], real.device

    def randn(*shape: int) -> torch.Tensor:  # from the step's (CPU) generator, then onto the batch's device
        return torch.randn(shape, generator=gen).to(device)

    tc = ctx.train_config
    _set_lazy_hyperparameters(ctx.opt_g, tc.lr_g or LR, cfg.pl_interval)
    _set_lazy_hyperparameters(ctx.opt_d, tc.lr_d or LR, cfg.r1_interval)
    row: dict[str, float] = {}

    # Gmain
    D.requires_grad_(False)
    z = randn(batch, cfg.z_dim)
    fake = G.synthesis(mixed_styles(G, z, cfg.style_mixing_prob, gen), "random", gen)
    logits_fake = D(fake)
    loss_g = F.softplus(-logits_fake).mean()
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    row["loss_g"] = loss_g.item()

    # Greg: lazy path-length regularisation
    if cfg.pl_weight > 0 and step % cfg.pl_interval == 0:
        n = max(batch // cfg.pl_batch_shrink, 1)
        z = randn(batch, cfg.z_dim)[:n]
        ws = mixed_styles(G, z, cfg.style_mixing_prob, gen)
        img = G.synthesis(ws, "random", gen)
        noise = randn(*img.shape) / math.sqrt(img.shape[2] * img.shape[3])
        lengths = path_lengths(img, ws, noise)
        pl_mean = G.pl_mean.lerp(lengths.mean(), cfg.pl_decay)
        G.pl_mean.copy_(pl_mean.detach())
        loss_pl = (lengths - pl_mean).square().mean() * cfg.pl_weight
        ctx.opt_g.zero_grad(set_to_none=True)
        (loss_pl * cfg.pl_interval).backward()
        ctx.opt_g.step()
        row["loss_pl"] = loss_pl.item()
        row["pl_mean"] = float(G.pl_mean)
    D.requires_grad_(True)

    # Dmain
    G.requires_grad_(False)
    z = randn(batch, cfg.z_dim)
    with torch.no_grad():
        fake = G.synthesis(mixed_styles(G, z, cfg.style_mixing_prob, gen), "random", gen)
    logits_fake = D(fake)
    logits_real = D(real)
    loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
    ctx.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    ctx.opt_d.step()
    row.update(loss_d=loss_d.item(), d_real=logits_real.mean().item(), d_fake=logits_fake.mean().item())

    # Dreg: lazy R1
    if cfg.r1_gamma > 0 and step % cfg.r1_interval == 0:
        penalty, _ = r1_penalty(D, real)
        loss_r1 = (penalty * (cfg.r1_gamma / 2)).mean()
        ctx.opt_d.zero_grad(set_to_none=True)
        (loss_r1 * cfg.r1_interval).backward()
        ctx.opt_d.step()
        row["r1_penalty"] = penalty.mean().item()
    G.requires_grad_(True)
    return row
