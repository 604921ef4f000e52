"""Sample diversity: mean MS-SSIM between random pairs of generated images (torchmetrics).

Odena et al. 2017 (AC-GAN) introduced MS-SSIM across pairs of samples as a diversity score: lower is more
diverse; a collapsed generator approaches 1. The 5-scale MS-SSIM of Wang et al. needs images above 160
pixels; smaller images use fewer scales (the weights renormalised) and a smaller Gaussian window, and the
score's method string says which.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim

from ganbench.results.schema import Score

BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003 scale weights


def _scales_and_kernel(side: int) -> tuple[tuple[float, ...], int]:
    for kernel in (11, 7, 5, 3):
        for scales in range(5, 0, -1):
            if side // 2 ** (scales - 1) > kernel - 1 and side > (kernel - 1) * 2 ** (scales - 1):
                betas = BETAS[:scales]
                return tuple(b / sum(betas) for b in betas), kernel
    raise ValueError(f"images of side {side} are too small for MS-SSIM")


def ms_ssim_diversity(images: torch.Tensor, pairs: int = 500, seed: int = 0) -> dict[str, Score]:
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) < 2:
        raise ValueError(f"MS-SSIM diversity needs at least 2 uint8 NCHW images, got {images.dtype} {tuple(images.shape)}")
    betas, kernel = _scales_and_kernel(min(images.shape[-2:]))
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(len(images), (pairs,), generator=g)
    b = (a + torch.randint(1, len(images), (pairs,), generator=g)) % len(images)  # never the same image
    x, y = images[a].double() / 255, images[b].double() / 255
    vals = ms_ssim(x, y, data_range=1.0, kernel_size=kernel, betas=betas, reduction="none", normalize="relu")
    vals = vals.numpy()
    se = float(vals.std(ddof=1) / np.sqrt(pairs))
    mean = float(vals.mean())
    return {"ms_ssim": Score(mean, se, mean - 1.96 * se, mean + 1.96 * se, len(images), False,
                             f"{pairs} random pairs; std = standard error; {len(betas)} scales, kernel {kernel}")}
