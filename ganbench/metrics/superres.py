"""Super-resolution metrics: PSNR and SSIM on the luma channel with the border cropped, LPIPS, and the bicubic row.

The protocol of the SR literature, as Ledig et al. 2017 (SRGAN, Sec. 3.1) state it: "PSNR [dB] and SSIM were
calculated on the y-channel of center-cropped, removal of a 4-pixel wide strip from each border, images", i.e. a
strip as wide as the scale factor (BasicSR's ``crop_border = scale``):

- Y channel: ITU-R BT.601 luma in studio swing, ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in
  [0, 255], rounded to 8 bits, as MATLAB's ``rgb2ycbcr`` returns it for uint8 images (the SR benchmark scripts
  compute PSNR on that). scikit-image's ``rgb2ycbcr`` is the same transform in floating point. A 1-channel image is
  its own luma (no studio-swing rescaling).
- PSNR and SSIM are then ``ganbench.metrics.translation``'s per-pair ``psnr_values`` (data range 255) and
  ``ssim_values`` (Wang et al. 2004, Gaussian 11x11, sigma 1.5, averaged over the valid region) on that luma, each
  mean with a percentile bootstrap over the images (``translation.mean_score``).
- LPIPS (Zhang et al. 2018) of each output to its HR target on the full RGB (or repeated gray) image, through
  ``ganbench.metrics.lpips``, when its weights are on disk.
- The reference row: the same scores for ``bicubic_upscale`` of the LR inputs (``ganbench.tasks``), the baseline
  every SR paper tabulates first.

Registered (family ``superres``) as ``psnr_y``, ``ssim_y`` and ``lpips_sr``; they read ``MetricInputs.images`` (the
super-resolved outputs), ``targets`` (the HR images) and ``scale``.
"""

from __future__ import annotations

import numpy as np
import torch

from ganbench.data.superres import SCALE
from ganbench.metrics import lpips
from ganbench.metrics.base import MetricInputs, register_metric
from ganbench.metrics.translation import mean_score, psnr_values, ssim_values
from ganbench.results.schema import Score

# MATLAB rgb2ycbcr's first row and offset (ITU-R BT.601, studio swing), for R, G, B in [0, 1] -> Y in [16, 235]
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0


def y_channel(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, H, W) luma of uint8 NCHW images: BT.601 studio-swing Y rounded to 8 bits for RGB (MATLAB's
    ``rgb2ycbcr``), the image itself for one channel."""
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        got = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"SR images must be uint8 NCHW with 1 or 3 channels, got {got}")
    if images.shape[1] == 1:
        return images
    w = torch.tensor(Y_WEIGHTS, dtype=torch.float64).view(1, 3, 1, 1) / 255.0
    return ((images.double() * w).sum(1, keepdim=True) + Y_OFFSET).round().clamp(0, 255).to(torch.uint8)


def crop_border(images: torch.Tensor, border: int) -> torch.Tensor:
    """NCHW images without a ``border``-pixel strip on every side."""
    if border < 0 or 2 * border >= min(images.shape[-2:]):
        raise ValueError(f"cannot crop a {border}-pixel border from {tuple(images.shape[-2:])} images")
    return images[..., border:images.shape[-2] - border, border:images.shape[-1] - border] if border else images


def _luma_pairs(outputs: torch.Tensor, targets: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    if outputs.shape != targets.shape:
        raise ValueError(f"SR outputs {tuple(outputs.shape)} and HR targets {tuple(targets.shape)} must have the same "
                         "shape")
    return crop_border(y_channel(outputs), scale), crop_border(y_channel(targets), scale)


def psnr_y_values(outputs: torch.Tensor, targets: torch.Tensor, scale: int = SCALE) -> np.ndarray:
    """Per-image PSNR (dB) of the luma with a ``scale``-pixel border left out."""
    return psnr_values(*_luma_pairs(outputs, targets, scale))


def ssim_y_values(outputs: torch.Tensor, targets: torch.Tensor, scale: int = SCALE) -> np.ndarray:
    """Per-image SSIM of the luma with a ``scale``-pixel border left out."""
    return ssim_values(*_luma_pairs(outputs, targets, scale))


def psnr_y(outputs: torch.Tensor, targets: torch.Tensor, scale: int = SCALE, seed: int = 0) -> Score:
    """Mean per-image luma PSNR in dB (higher is better), border of ``scale`` pixels left out."""
    return mean_score(psnr_y_values(outputs, targets, scale), True,
                      f"images, PSNR (dB) of BT.601 Y, {scale}-px border cropped", seed)


def ssim_y(outputs: torch.Tensor, targets: torch.Tensor, scale: int = SCALE, seed: int = 0) -> Score:
    """Mean per-image luma SSIM (higher is better), border of ``scale`` pixels left out."""
    return mean_score(ssim_y_values(outputs, targets, scale), True,
                      f"images, SSIM gaussian 11x11 sigma 1.5 of BT.601 Y, {scale}-px border cropped", seed)


@register_metric("psnr_y", {"psnr_y": True}, {"pairs"}, "super-resolution: mean PSNR of the BT.601 luma to the HR "
                 "image, border of the scale cropped (dB)", family="superres", paper="Ledig et al. 2017, Sec. 3.1",
                 checked_against="MATLAB rgb2ycbcr luma and skimage peak_signal_noise_ratio")
def _psnr_y(x: MetricInputs) -> dict[str, Score]:
    return {"psnr_y": psnr_y(x.images, x.targets, x.scale, x.seed)}


@register_metric("ssim_y", {"ssim_y": True}, {"pairs"}, "super-resolution: mean SSIM of the BT.601 luma to the HR "
                 "image, border of the scale cropped", family="superres", paper="Ledig et al. 2017, Sec. 3.1",
                 checked_against="skimage structural_similarity on the luma")
def _ssim_y(x: MetricInputs) -> dict[str, Score]:
    return {"ssim_y": ssim_y(x.images, x.targets, x.scale, x.seed)}


@register_metric("lpips_sr", {"lpips_to_target": False}, {"pairs", "lpips_weights"},
                 "super-resolution: mean LPIPS (VGG16) to the HR image, when LPIPS weights are present",
                 family="superres", paper="Zhang et al. 2018, arXiv:1801.03924", checked_against="torch-fidelity lpips-vgg16")
def _lpips_sr(x: MetricInputs) -> dict[str, Score]:
    return lpips.lpips_to_target(x.images, x.targets)


__all__ = ["Y_OFFSET", "Y_WEIGHTS", "crop_border", "psnr_y", "psnr_y_values", "ssim_y", "ssim_y_values", "y_channel"]
