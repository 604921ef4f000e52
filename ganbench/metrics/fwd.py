"""Fréchet Wavelet Distance (Veeramacheneni et al. 2025, "Fréchet Wavelet Distance: A Domain-Agnostic Metric for Image
Generation", ICLR, arXiv:2312.15289): the Fréchet distance of Gaussian fits, per wavelet packet, averaged over the
packets. No pretrained network is involved, so it runs offline on any dataset.

The reference implementation is ``pytorchfwd`` (BonnBytes/PyTorch-FWD, ``compute_fwd``): images read as RGB floats in
[0, 1] (``ToTensor``), a level-``max_level`` 2-D wavelet packet transform (ptwt's ``WaveletPacket2D``, Haar and level 4
by default, no log scale), each of the 4^level packets flattened over channels and space, a Gaussian (mean, unbiased
covariance) fitted per packet to each image set, the Fréchet distance per packet (TTUR's ``calculate_frechet_distance``,
scipy's ``sqrtm``) and their mean.

What differs here: the transform is the orthonormal Haar packet transform written in torch (each level splits every
packet's 2x2 blocks into their four Haar coefficients); it equals ptwt's and PyWavelets' Haar packets up to the sign
of detail coefficients, which no Fréchet distance sees. Statistics and distances are float64, and each distance is
computed from a symmetric eigendecomposition (the formulation of ``ganbench.metrics.frechet``), batched over packets.
Grey images are repeated to three channels, as the reference's ``convert("RGB")`` does. The level is at most
``MAX_LEVEL`` and at most what the image side allows (2^level must divide it); the tests compare with an independent
PyWavelets implementation of the same definition. The spread is a bootstrap over the generated samples (the reference
statistics fixed).
"""

from __future__ import annotations

import numpy as np
import torch

from ganbench.metrics.fidelity import bootstrap_interval
from ganbench.results.schema import Score

MAX_LEVEL = 4  # the reference's default --max_level
FWD_BOOTSTRAP = 50  # bootstrap replicates for the interval


def packet_level(height: int, width: int, max_level: int = MAX_LEVEL) -> int:
    """The deepest Haar packet level up to ``max_level`` whose 2^level divides both sides (at least 1)."""
    level = 0
    while level < max_level and height % 2 ** (level + 1) == 0 and width % 2 ** (level + 1) == 0:
        level += 1
    if level == 0:
        raise ValueError(f"FWD needs even image sides for a Haar packet transform, got {height}x{width}")
    return level


def haar_packets(images: torch.Tensor, level: int) -> torch.Tensor:
    """uint8 NCHW -> (N, 4^level, 3 * (H / 2^level) * (W / 2^level)) float64 Haar packet coefficients of the images
    read as RGB in [0, 1]."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"FWD takes uint8 NCHW images with 1 or 3 channels, got {images.dtype} {tuple(images.shape)}")
    x = (images.double() / 255.0).unsqueeze(1)  # (N, packets, C, H, W)
    for _ in range(level):
        a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
        c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
        x = torch.stack([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], dim=2) / 2
        x = x.flatten(1, 2)
    if x.shape[2] == 1:  # grey: the transform is per channel, so repeat the coefficients rather than the pixels
        x = x.expand(-1, -1, 3, -1, -1)
    return x.flatten(2)


def packet_gaussians(packets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-packet mean (P, D) and unbiased covariance (P, D, D) of (N, P, D) coefficients."""
    n = packets.shape[0]
    mu = packets.mean(0)
    centred = (packets - mu).transpose(0, 1)  # (P, N, D): one batched product per packet
    return mu, centred.transpose(1, 2) @ centred / (n - 1)


def _symmetric_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh((sigma + sigma.transpose(-1, -2)) / 2)
    return (v * w.clamp_min(0).sqrt().unsqueeze(-2)) @ v.transpose(-1, -2)


def packet_frechet(mu_g: torch.Tensor, sigma_g: torch.Tensor, mu_r: torch.Tensor, sigma_r: torch.Tensor,
                   root_r: torch.Tensor | None = None) -> torch.Tensor:
    """(P,) Fréchet distances ||mu_g - mu_r||^2 + tr S_g + tr S_r - 2 tr (R S_g R)^(1/2), R = S_r^(1/2), per packet."""
    root_r = _symmetric_sqrt(sigma_r) if root_r is None else root_r
    m = root_r @ sigma_g @ root_r
    eig = torch.linalg.eigvalsh((m + m.transpose(-1, -2)) / 2)
    tr_covmean = eig.clamp_min(0).sqrt().sum(-1)
    diff = mu_g - mu_r
    trace = torch.diagonal(sigma_g, dim1=-2, dim2=-1).sum(-1) + torch.diagonal(sigma_r, dim1=-2, dim2=-1).sum(-1)
    return (diff * diff).sum(-1) + trace - 2 * tr_covmean


def fwd_value(gen_images: torch.Tensor, ref_images: torch.Tensor, max_level: int = MAX_LEVEL) -> float:
    """FWD between two uint8 image sets (no interval)."""
    level = packet_level(*ref_images.shape[-2:], max_level=max_level)
    mu_g, s_g = packet_gaussians(haar_packets(gen_images, level))
    mu_r, s_r = packet_gaussians(haar_packets(ref_images, level))
    return float(packet_frechet(mu_g, s_g, mu_r, s_r).mean())


def frechet_wavelet_distance(gen_images: torch.Tensor, ref_images: torch.Tensor, seed: int = 0,
                             bootstrap: int = FWD_BOOTSTRAP, max_level: int = MAX_LEVEL) -> Score:
    """FWD of the generated images against the reference images, with a bootstrap interval over the generated ones."""
    if gen_images.shape[-2:] != ref_images.shape[-2:]:
        raise ValueError(f"FWD compares images of one size, got {tuple(gen_images.shape[-2:])} generated and "
                         f"{tuple(ref_images.shape[-2:])} reference")
    if len(gen_images) < 2 or len(ref_images) < 2:
        raise ValueError("FWD needs at least 2 images per set")
    level = packet_level(*ref_images.shape[-2:], max_level=max_level)
    gen = haar_packets(gen_images, level)
    mu_r, s_r = packet_gaussians(haar_packets(ref_images, level))
    root_r = _symmetric_sqrt(s_r)
    value = float(packet_frechet(*packet_gaussians(gen), mu_r, s_r, root_r).mean())
    rng = np.random.default_rng(seed)
    reps = np.array([float(packet_frechet(*packet_gaussians(gen[torch.from_numpy(rng.integers(0, len(gen), len(gen)))]),
                                          mu_r, s_r, root_r).mean()) for _ in range(bootstrap)])
    std, lo, hi = bootstrap_interval(reps)
    return Score(value, std, lo, hi, len(gen), False,
                 f"bootstrap({bootstrap}) over generated samples; Haar packets, level {level} ({4 ** level} packets)")


__all__ = ["FWD_BOOTSTRAP", "MAX_LEVEL", "frechet_wavelet_distance", "fwd_value", "haar_packets", "packet_frechet",
           "packet_gaussians", "packet_level"]
