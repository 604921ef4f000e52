"""Training step of the class-conditional DCGAN (``ModelEntry.train_step`` of the ``cdcgan`` zoo entry).

Mirza & Osindero 2014 ("Conditional Generative Adversarial Nets", arXiv:1411.1784), Section 3.2: the GAN minimax game
with both players given the class label, ``min_G max_D E[log D(x|y)] + E[log(1 - D(G(z|y)|y))]``, here with
Goodfellow et al.'s non-saturating generator loss ``-log D(G(z|y)|y)`` and DCGAN's Adam settings (entry: 2e-4,
betas (0.5, 0.999)). One D update on (real, real labels) and (G(z, y_fake), y_fake), then one G update through the
updated D with the same z and y_fake, as ``ganbench.train.loop.adversarial_step`` does for unconditional models.

The real labels come from ``ctx.labels`` (the dataset's); the latents and the fake labels (uniform over the classes)
are drawn from ``ctx.generator``, the step's seeded random source, so a resumed run repeats an uninterrupted one.

This module imports nothing from ``ganbench.zoo`` at import time: the zoo entry imports it to register the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ganbench.train.objectives import nonsaturating, nonsaturating_g

if TYPE_CHECKING:
    from ganbench.train.loop import StepContext


def train_step(ctx: "StepContext") -> dict[str, float]:
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
