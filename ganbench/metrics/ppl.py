"""Perceptual path length (PPL; Karras et al. 2019, "A Style-Based Generator Architecture for Generative Adversarial
Networks", CVPR, arXiv:1812.04948, sec. 3; NVlabs/stylegan ``metrics/perceptual_path_length.py`` and
stylegan2-ada-pytorch ``metrics/perceptual_path_length.py``).

PPL is the mean of d(G(l(t)), G(l(t + eps))) / eps^2 over random latent pairs (z0, z1) and positions t, where l
interpolates from z0 to z1 and d is a perceptual distance: how much the image changes per small step through latent
space. Lower is smoother. The published choices, all kept here: eps = 1e-4; t ~ U(0, 1) ("full") or t = 0 ("end");
spherical interpolation (slerp) in Z and linear interpolation (lerp) in W (StyleGAN's mapped latent); images scaled to
[0, 255]; for FFHQ the face crop (rows 3/8..7/8, columns 2/8..6/8); images larger than 256 area-downsampled to 256;
distance LPIPS (VGG16); the 1st and 99th percentiles of the distances as bounds outside which pairs are rejected
(``np.percentile`` with "lower" and "higher" interpolation), and the mean of the rest.

This module is the maths only, on callables and tensors (``generate``: latents -> float images in [-1, 1];
``distance``: two image batches in [0, 255] -> one distance per pair); which model, which latent space and which
distance is the task's business (``ganbench.tasks.unconditional``), which records the distance by name in the score's
method. What differs from NVlabs:

- ``slerp`` is NVlabs' (normalise both ends, rotate, normalise) times the linear interpolation of the two norms, so a
  latent keeps the scale its generator was trained on. StyleGAN and ProGAN normalise their latent first (pixel norm),
  so for them the result equals NVlabs'; DCGAN-style generators, which do not, see latents of the usual norm.
- The number of pairs is ``PathLengthConfig.pairs`` (NVlabs: 100 000; StyleGAN2: 50 000).
- The spread: a bootstrap over pairs (percentile filter re-applied in each replicate).

torch-fidelity's ``calculate_ppl`` is the "end" variant (t = 0) with a configurable interpolation and similarity; the
tests run it on the same generator and latents (``tests/test_ppl.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ganbench.metrics.fidelity import bootstrap_interval
from ganbench.results.schema import Score

EPSILON = 1e-4  # the published step
PPL_BOOTSTRAP = 100  # bootstrap replicates over pairs
DISTANCE_SIDE = 256  # images larger than this are area-downsampled to it before the distance (NVlabs, for VGG)


@dataclass(frozen=True)
class PathLengthConfig:
    """How PPL is drawn from a generator (the task reads this; the maths below takes the pieces)."""

    pairs: int = 1000  # latent pairs (NVlabs: 100 000, StyleGAN2's ppl2_wend: 50 000)
    epsilon: float = EPSILON  # interpolation step
    space: str = "z"  # "z": slerp between latents; "w": lerp between mapped latents (StyleGAN2 only)
    sampling: str = "full"  # "full": t ~ U(0, 1); "end": t = 0
    crop: bool = False  # NVlabs' FFHQ face crop
    lower: float | None = 1.0  # reject distances below this percentile (None: keep)
    upper: float | None = 99.0  # reject distances above this percentile (None: keep)
    batch_size: int = 100  # pairs per generator call
    distance: str = "auto"  # "lpips" (VGG16 LPIPS), "features" (the extractor's), or "auto": LPIPS when its weights
    # are present, else the features
    extractor: str | None = None  # extractor of "features" (None: the protocol's, when the caller passes it)
    seed: int | None = None  # latent and bootstrap seed (None: the evaluation's)

    def __post_init__(self) -> None:
        if self.pairs < 2 or self.batch_size < 1 or not self.epsilon > 0:
            raise ValueError(f"PathLengthConfig needs pairs >= 2, batch_size >= 1 and epsilon > 0, got {self}")
        if self.space not in ("z", "w") or self.sampling not in ("full", "end"):
            raise ValueError(f"PathLengthConfig space must be 'z' or 'w' and sampling 'full' or 'end', got {self}")
        if self.distance not in ("auto", "lpips", "features"):
            raise ValueError(f"PathLengthConfig distance must be 'auto', 'lpips' or 'features', got {self.distance!r}")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a + (b - a) t, t broadcast over the trailing dimensions."""
    return a + (b - a) * t


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """NVlabs' spherical interpolation of the directions of (N, D) latents, scaled by the lerp of their norms."""
    ua, ub = _unit(a), _unit(b)
    d = (ua * ub).sum(-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = _unit(ub - d * ua)
    direction = _unit(ua * torch.cos(p) + c * torch.sin(p))
    return direction * lerp(a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True), t)


def path_endpoints(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, epsilon: float,
                   interpolate: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(l(t), l(t + eps)) for each pair, l interpolating z0 -> z1 over the last dimension (t: (N,))."""
    shape = z0.shape
    a, b = z0.reshape(len(z0), -1), z1.reshape(len(z1), -1)
    tt = t.reshape(-1, 1).to(a.dtype)
    return interpolate(a, b, tt).reshape(shape), interpolate(a, b, tt + epsilon).reshape(shape)


def face_crop(images: torch.Tensor) -> torch.Tensor:
    """NVlabs' FFHQ crop: rows 3c..7c and columns 2c..6c, c = H // 8."""
    c = images.shape[2] // 8
    return images[:, :, c * 3:c * 7, c * 2:c * 6]


def distance_input(images: torch.Tensor, crop: bool = False) -> torch.Tensor:
    """Generator output in [-1, 1] -> what the distance reads: optionally cropped, area-downsampled to at most
    ``DISTANCE_SIDE``, scaled to [0, 255] (float, not rounded: a step of 1e-4 would not survive rounding; a float64
    generator's output stays float64)."""
    x = images if images.dtype.is_floating_point else images.float()
    if crop:
        x = face_crop(x)
    factor = x.shape[2] // DISTANCE_SIDE
    if factor > 1:
        x = torch.nn.functional.avg_pool2d(x, factor)
    return (x + 1) * (255 / 2)


@torch.no_grad()
def path_lengths(generate: Callable[[torch.Tensor], torch.Tensor],
                 distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], e0: torch.Tensor, e1: torch.Tensor,
                 epsilon: float = EPSILON, batch_size: int = 100, crop: bool = False) -> torch.Tensor:
    """d(G(e0_i), G(e1_i)) / eps^2 for every pair, float64 (N,).

    Args:
        generate: Latents (or mapped latents) -> float images in [-1, 1]; called on e0 and e1 together, per batch.
        distance: (images_a, images_b) in [0, 255] -> (B,) distances.
    """
    out = []
    for i in range(0, len(e0), batch_size):
        a, b = e0[i:i + batch_size], e1[i:i + batch_size]
        images = distance_input(generate(torch.cat([a, b])), crop)
        ia, ib = images[:len(a)], images[len(a):]
        out.append(distance(ia, ib).double().reshape(-1) / epsilon ** 2)
    return torch.cat(out)


def filtered(lengths: np.ndarray, lower: float | None = 1.0, upper: float | None = 99.0) -> np.ndarray:
    """The lengths between the ``lower`` ("lower" interpolation) and ``upper`` ("higher") percentiles, inclusive."""
    keep = np.ones(len(lengths), dtype=bool)
    if lower is not None:
        keep &= lengths >= np.percentile(lengths, lower, method="lower")
    if upper is not None:
        keep &= lengths <= np.percentile(lengths, upper, method="higher")
    return lengths[keep]


def perceptual_path_length(lengths: torch.Tensor | np.ndarray, lower: float | None = 1.0, upper: float | None = 99.0,
                           seed: int = 0, bootstrap: int = PPL_BOOTSTRAP, what: str = "") -> Score:
    """PPL from per-pair path lengths: the mean inside the percentile bounds, with a bootstrap interval over pairs.

    Args:
        what: How the lengths were drawn (space, sampling, distance), appended to the score's method.
    """
    x = lengths.double().numpy() if torch.is_tensor(lengths) else np.asarray(lengths, dtype=np.float64)
    if len(x) < 2 or not np.isfinite(x).all():
        raise ValueError(f"PPL needs at least 2 finite path lengths, got {len(x)}")
    value = float(filtered(x, lower, upper).mean())
    rng = np.random.default_rng(seed)
    reps = np.array([filtered(x[rng.integers(0, len(x), len(x))], lower, upper).mean() for _ in range(bootstrap)])
    std, lo, hi = bootstrap_interval(reps)
    bounds = f"percentiles {lower}..{upper} kept" if lower is not None or upper is not None else "no filter"
    return Score(value, std, lo, hi, len(x), False,
                 f"bootstrap({bootstrap}) over {len(x)} latent pairs; {bounds}" + (f"; {what}" if what else ""))


__all__ = ["DISTANCE_SIDE", "EPSILON", "PPL_BOOTSTRAP", "PathLengthConfig", "distance_input", "face_crop", "filtered",
           "lerp", "path_endpoints", "path_lengths", "perceptual_path_length", "slerp"]
