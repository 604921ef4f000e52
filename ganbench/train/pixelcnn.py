"""Maximum-likelihood training step of the PixelCNN zoo entry (``ModelEntry.train_step``).

The loss is the mean negative log-likelihood of the real batch's sub-pixels under the 256-way softmax, as in van den
Oord et al. 2016 (arXiv:1601.06759, Section 5.1: "all our models are trained ... using the discrete softmax
distribution"); it is logged in bits per sub-pixel. There is no discriminator: ``ctx.D`` and ``ctx.opt_d`` are None,
and the step draws no random numbers (the loop has already drawn the batch from the step's generator), so a resumed
run repeats an uninterrupted one.

This module imports nothing from ``ganbench.zoo`` at import time: the zoo entry imports it to register the step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from ganbench.train.loop import StepContext


def levels_of(real: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (as the training loop passes them, from uint8) -> integer levels 0..255."""
    return ((real.float() + 1.0) * 127.5).round().clamp(0, 255).long()


def train_step(ctx: "StepContext") -> dict[str, float]:
    """One Adam step on the mean sub-pixel cross-entropy of ``ctx.real``; returns {"nll_bits": bits per sub-pixel}."""
    if ctx.real.dim() != 4:
        raise ValueError(f"PixelCNN trains on images (B, C, H, W), got a batch of shape {tuple(ctx.real.shape)}")
    logits = ctx.G.logits(ctx.real)  # (B, C, 256, H, W)
    loss = F.cross_entropy(logits.transpose(1, 2), levels_of(ctx.real))  # class dimension second
    ctx.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    ctx.opt_g.step()
    return {"nll_bits": loss.item() / math.log(2)}
