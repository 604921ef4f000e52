"""Adversarial objectives: discriminator and generator losses from D's raw outputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nonsaturating(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """D loss of Goodfellow et al. 2014: binary cross-entropy, real -> 1, fake -> 0."""
    return F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))


def nonsaturating_g(d_fake: torch.Tensor) -> torch.Tensor:
    """G loss: -log D(G(z)), the non-saturating heuristic of the same paper."""
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


def least_squares(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """D loss of LSGAN (Mao et al. 2017, eq. 9 with a=0, b=c=1)."""
    return 0.5 * ((d_real - 1) ** 2).mean() + 0.5 * (d_fake ** 2).mean()


def least_squares_g(d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((d_fake - 1) ** 2).mean()


OBJECTIVES = {
    "nonsaturating": (nonsaturating, nonsaturating_g),
    "least_squares": (least_squares, least_squares_g),
}


def objective(name: str):
    """(discriminator_loss, generator_loss) for an objective name."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; valid: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
