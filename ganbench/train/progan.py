"""ProGAN's training step (Karras et al. 2018, arXiv:1710.10196), for ``ModelEntry.train_step``.

Follows tkarras/progressive_growing_of_gans ``train.py`` and ``loss.py`` (``D_wgangp_acgan``, ``G_wgan_acgan``):

- the stage (depth, fade-in alpha) is ``progan_stage(config, step)``, a pure function of the step, so a resumed
  run takes exactly the steps of an uninterrupted one; when a fade-in starts or ends, Adam's state is cleared
  (``reset_opt_for_new_lod``), which is also a function of the step;
- the real batch is brought to the stage's resolution by average pooling and, while a resolution fades in, lerped
  with its own 2x average-pooled, nearest-upsampled copy by 1 - alpha (``process_reals``, "FadeLOD");
- one D update, then one G update (``D_repeats`` 1), each with its own latents;
- D minimises D(G(z)) - D(x) + lambda (|grad D(x_hat)| - target)^2 / target^2 + epsilon D(x)^2 with x_hat a
  per-sample uniform mix of real and fake (WGAN-GP, Gulrajani et al. 2017, plus the paper's drift term);
  G minimises -D(G(z)).

What differs: networks run at the stage's resolution (the reference upsamples every image to the final size and
pools it back down inside D: the same numbers at more cost); one minibatch size for all stages; no mirror
augmentation; no loss scaling (fp32 only). The generator's moving average is ganbench's ``--ema``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ganbench.zoo.progan import ProGANConfig, progan_stage


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     mix: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """Per-sample (|grad_x critic(x)| - target)^2 at x = real + (fake - real) * mix (``mix`` (N,) in [0, 1])."""
    if mix.shape != (real.shape[0],):
        raise ValueError(f"mixing factors must have shape ({real.shape[0]},), got {tuple(mix.shape)}")
    x = torch.lerp(real.detach(), fake.detach(), mix.reshape(-1, *[1] * (real.dim() - 1))).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (grads.flatten(1).norm(dim=1) - target).square()


def reals_at_stage(real: torch.Tensor, depth: int, alpha: float) -> torch.Tensor:
    """Real images at side 4 * 2 ** depth by average pooling; while fading (alpha < 1) lerped towards their 2x
    average-pooled, nearest-upsampled copy by 1 - alpha, as the reference's ``process_reals`` does."""
    side = 4 * 2 ** depth
    if real.shape[-1] % side:
        raise ValueError(f"real images of side {real.shape[-1]} cannot be pooled to {side}")
    x = F.avg_pool2d(real, real.shape[-1] // side) if real.shape[-1] != side else real
    if alpha < 1.0 and depth > 0:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x


def _phase(cfg: ProGANConfig, step: int) -> tuple[int, bool]:
    depth, alpha = progan_stage(cfg, step)
    return depth, alpha < 1.0


def progan_step(ctx) -> dict[str, float]:
    """One D (WGAN-GP + drift) and one G update at the stage of ``ctx.step``; returns the losses to log."""
    G, D, cfg, gen, step = ctx.G, ctx.D, ctx.model_config, ctx.generator, ctx.step
    if not isinstance(cfg, ProGANConfig):
        raise TypeError(f"progan_step needs a ProGANConfig, got {type(cfg).__name__}")
    depth, alpha = progan_stage(cfg, step)
    if cfg.reset_optimizer and step > 0 and _phase(cfg, step) != _phase(cfg, step - 1):
        ctx.opt_g.state.clear()
        ctx.opt_d.state.clear()
    batch, device = ctx.real.shape[0], ctx.real.device
    real = reals_at_stage(ctx.real, depth, alpha)

    def critic(x: torch.Tensor) -> torch.Tensor:
        return D(x, depth, alpha)

    # D
    z = torch.randn(batch, cfg.nz, generator=gen).to(device)  # drawn on the step generator's CPU
    with torch.no_grad():
        fake = G(z, depth, alpha, full_size=False)
    d_real, d_fake = critic(real), critic(fake)
    mix = torch.rand(batch, generator=gen).to(device)
    gp = gradient_penalty(critic, real, fake, mix, cfg.wgan_target)
    loss_d = (d_fake - d_real + gp * (cfg.wgan_lambda / cfg.wgan_target ** 2)
              + d_real.square() * cfg.wgan_epsilon).mean()
    ctx.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    ctx.opt_d.step()

    # G
    D.requires_grad_(False)
    z = torch.randn(batch, cfg.nz, generator=gen).to(device)
    loss_g = -critic(G(z, depth, alpha, full_size=False)).mean()
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    D.requires_grad_(True)
    with torch.no_grad():
        G.schedule_step.fill_(step + 1)
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": d_real.mean().item(),
            "d_fake": d_fake.mean().item(), "gp": gp.mean().item(), "resolution": 4 * 2 ** depth, "alpha": alpha}
