"""Resize modes: the ways images are brought to a common size, each a named, registered function.

FID moves with the resize filter more than with most model differences (Parmar, Zhang & Zhu 2022, "On Aliased
Resizing and Surprising Subtleties in GAN Evaluation": up to 6.5 FID on FFHQ's real images from the filter alone),
so a number must say which one it used, and samples and reference must go through the same one. The modes:

- ``bilinear``: ganbench's default, ``torch.nn.functional.interpolate`` bilinear with antialiasing when shrinking
  (the resize every built-in dataset loader applies);
- ``clean``: clean-fid's "clean" resize: each channel as a float32 PIL image, ``Image.BICUBIC`` (which filters
  with the scaled kernel when shrinking: antialiased), clipped to [0, 255] (clean-fid ``resize.make_resizer("PIL",
  False, "bicubic", size)``);
- ``legacy_tensorflow``: the TensorFlow 1.x bilinear resize of the original FID code, as torch-fidelity ports it
  (``interpolate_bilinear_2d_like_tensorflow1x``, align_corners False);
- ``legacy_pytorch``: ``F.interpolate`` bilinear, align_corners False, no antialiasing (pytorch-fid's and
  clean-fid's "legacy_pytorch");
- ``none``: the images must already have the size.

``resize_float`` returns float32 images in [0, 255] (what an extractor that takes floats reads); ``resize_uint8``
rounds them back to uint8, the representation images cross every other boundary in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.registry import Registry


@dataclass(frozen=True)
class ResizeMode:
    """A named resize: (uint8 or float NCHW, (height, width)) -> float32 NCHW in [0, 255]."""

    name: str
    fn: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]
    description: str


RESIZE_MODES: Registry[ResizeMode] = Registry("resize mode")


def _register(name: str, description: str):
    def add(fn: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]):
        RESIZE_MODES.register(name, ResizeMode(name, fn, description), description=description)
        return fn

    return add


@_register("bilinear", "torch bilinear, antialiased when shrinking (ganbench's default, the dataset loaders')")
def _bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=shrink).clamp(0, 255)


@_register("clean", "clean-fid's clean: PIL bicubic per channel on float32, antialiased, clipped")
def _clean(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    from PIL import Image

    h, w = size
    arr = x.detach().cpu().float().numpy()
    out = np.empty((arr.shape[0], arr.shape[1], h, w), dtype=np.float32)
    for i in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            img = Image.fromarray(arr[i, c], mode="F").resize((w, h), resample=Image.BICUBIC)
            out[i, c] = np.asarray(img).clip(0, 255)
    return torch.from_numpy(out)


@_register("legacy_tensorflow", "TensorFlow 1.x bilinear of the original FID code (torch-fidelity's port)")
def _legacy_tensorflow(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    return interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=size, align_corners=False).clamp(0, 255)


@_register("legacy_pytorch", "torch bilinear, align_corners False, no antialiasing (pytorch-fid's)")
def _legacy_pytorch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False).clamp(0, 255)


@_register("none", "no resize: the images must have the size already")
def _none(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(f"resize mode 'none': images are {tuple(x.shape[-2:])}, the comparison needs {tuple(size)}; "
                         f"choose a resize mode ({', '.join(RESIZE_MODES.list())})")
    return x.float()


def get_resize(name: str) -> ResizeMode:
    return RESIZE_MODES.get(name)


def resize_float(images: torch.Tensor, size: int | tuple[int, int], mode: str, chunk: int = 256) -> torch.Tensor:
    """``images`` (uint8 or float NCHW in [0, 255]) at ``size`` through ``mode``: float32 in [0, 255]."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if images.dim() != 4:
        raise ValueError(f"resize takes NCHW images, got shape {tuple(images.shape)}")
    fn = get_resize(mode).fn
    if tuple(images.shape[-2:]) == size and mode != "none":
        return images.float()
    return torch.cat([fn(images[i:i + chunk], size) for i in range(0, len(images), chunk)]) if len(images) else \
        images.float().new_empty((0, images.shape[1], *size))


def resize_uint8(images: torch.Tensor, size: int | tuple[int, int], mode: str) -> torch.Tensor:
    """``resize_float`` rounded to uint8: the comparison-resolution step, applied alike to samples and reference."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == size and images.dtype == torch.uint8:
        return images
    return resize_float(images, size, mode).round().clamp(0, 255).to(torch.uint8)


__all__ = ["RESIZE_MODES", "ResizeMode", "get_resize", "resize_float", "resize_uint8"]
