"""Image-to-image translation metrics: paired fidelity, semantic preservation, cycle error, unpaired FID/KID.

- Paired (Isola et al. 2017, pix2pix; and the super-resolution / colorization literature): per-pair L1,
  PSNR and SSIM between each translated image and its ground truth, from torchmetrics, and LPIPS (Zhang et al.
  2018) to the target through ``ganbench.metrics.lpips`` when its weights are on disk. L1 is the mean absolute
  difference of pixels scaled to [0, 1]. PSNR is computed per image (``10 log10(255^2 / MSE)``) and averaged;
  an exact copy has infinite PSNR, and so then has the mean. SSIM is Wang et al. 2004's (Gaussian window 11,
  sigma 1.5, K1 0.01, K2 0.03, computed on [0, 1] intensities, channels averaged): torchmetrics computes the
  SSIM map over reflect-padded borders and averages all of it; ganbench averages only the pixels whose window
  lies inside the image, as Wang et al.'s reference ``ssim_index.m`` (``filter2(..., 'valid')``) and
  ``skimage.metrics.structural_similarity`` do, so the numbers match the reference implementation.
- Semantic preservation, the FCN-score idea of Isola et al. 2017 (Sec. 4.2: a classifier trained on real
  images of the target domain labels the translated ones, scored against the source's labels): here the
  digit classifier ``mnist_cnn`` on translated digits against the source digit's class, with a Wilson
  interval. It is meaningful when the classifier knows the target domain (translations into MNIST-like
  digits); its accuracy on the real targets is the ceiling to report beside it.
- Cycle reconstruction error (Zhu et al. 2017, CycleGAN; Kim et al. 2017, DiscoGAN): the L1 of
  ``G_BA(G_AB(a))`` against ``a``, given the two images.
- Unpaired (and paired): FID and KID of the translated images against the target domain's real training images,
  the sample metrics of ``ganbench.metrics.sample`` (the translation tasks of ``ganbench.tasks`` ask for them).

The spread of each per-pair mean is a percentile bootstrap over the image pairs (``BOOTSTRAP`` replicates):
``std`` is the bootstrap standard deviation, the interval its 2.5th..97.5th percentiles.

The metrics are registered (``ganbench.metrics.base.register_metric``) in the families ``paired``, ``semantic``
and ``cycle``, and read ``MetricInputs.images`` (the outputs), ``targets``, ``source_labels`` with the extractor's
``logits``, ``sources`` and ``reconstructions``.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ganbench.metrics import lpips
from ganbench.metrics.base import MetricInputs, register_metric
from ganbench.metrics.fidelity import bootstrap_interval, wilson_interval
from ganbench.results.schema import Score

BOOTSTRAP = 1000  # bootstrap replicates over image pairs
SSIM_SIGMA = 1.5  # Wang et al. 2004
SSIM_RADIUS = 5  # torchmetrics' window: int(3.5 * sigma + 0.5) pixels either side (11 x 11)


def _check_pairs(x: torch.Tensor, y: torch.Tensor, what: tuple[str, str]) -> None:
    for name, t in zip(what, (x, y)):
        if not torch.is_tensor(t) or t.dtype != torch.uint8 or t.dim() != 4 or t.shape[1] not in (1, 3):
            raise ValueError(f"{name} must be uint8 NCHW images with 1 or 3 channels, got "
                             f"{getattr(t, 'dtype', type(t).__name__)} {tuple(getattr(t, 'shape', ()))}")
    if x.shape != y.shape:
        raise ValueError(f"{what[0]} {tuple(x.shape)} and {what[1]} {tuple(y.shape)} must be paired: the same shape")
    if len(x) == 0:
        raise ValueError(f"{what[0]} and {what[1]} hold no images")


def mean_score(values: np.ndarray, higher_is_better: bool, what: str, seed: int = 0,
               bootstrap: int = BOOTSTRAP) -> Score:
    """The mean of per-pair ``values`` with a percentile bootstrap over the pairs."""
    value = float(values.mean())
    n = len(values)
    if not np.isfinite(values).all() or n < 2:
        return Score(value, None, None, None, n, higher_is_better,
                     f"mean over {n} {what}; no interval ({'a non-finite value' if n > 1 else 'one pair'})")
    rng = np.random.default_rng(seed)
    reps = values[rng.integers(0, n, (bootstrap, n))].mean(axis=1)
    std, lo, hi = bootstrap_interval(reps)
    return Score(value, std, lo, hi, n, higher_is_better, f"mean over {n} {what}; bootstrap({bootstrap}) over pairs")


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x.double() / 255.0


def l1_values(outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Per-pair mean absolute difference, pixels in [0, 1]."""
    _check_pairs(outputs, targets, ("outputs", "targets"))
    return (_unit(outputs) - _unit(targets)).abs().flatten(1).mean(1).numpy()


def psnr_values(outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Per-pair PSNR in dB (torchmetrics, data range 255); inf for an exact copy."""
    _check_pairs(outputs, targets, ("outputs", "targets"))
    return peak_signal_noise_ratio(outputs.double(), targets.double(), data_range=255.0, reduction="none",
                                   dim=(1, 2, 3)).double().numpy()


def ssim_values(outputs: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Per-pair SSIM (Wang et al. 2004) over the pixels whose 11x11 window lies inside the image."""
    _check_pairs(outputs, targets, ("outputs", "targets"))
    side = min(outputs.shape[-2:])
    if side <= 2 * SSIM_RADIUS:
        raise ValueError(f"SSIM's 11x11 window needs images larger than 10 pixels, got {tuple(outputs.shape[-2:])}")
    _, full = structural_similarity_index_measure(_unit(outputs), _unit(targets), gaussian_kernel=True,
                                                  sigma=SSIM_SIGMA, data_range=1.0, k1=0.01, k2=0.03,
                                                  reduction="none", return_full_image=True)
    r = SSIM_RADIUS
    return full[..., r:-r, r:-r].flatten(1).mean(1).double().numpy()


def l1(outputs: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> Score:
    """Mean L1 between outputs and their targets, pixels in [0, 1] (lower is better)."""
    return mean_score(l1_values(outputs, targets), False, "pairs, pixels in [0, 1]", seed)


def psnr(outputs: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> Score:
    """Mean per-pair PSNR in dB (higher is better)."""
    return mean_score(psnr_values(outputs, targets), True, "pairs, per-image PSNR (dB)", seed)


def ssim(outputs: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> Score:
    """Mean per-pair SSIM (higher is better)."""
    return mean_score(ssim_values(outputs, targets), True, "pairs, SSIM gaussian 11x11 sigma 1.5 (valid region)",
                      seed)


def cycle_l1(sources: torch.Tensor, reconstructions: torch.Tensor, seed: int = 0) -> Score:
    """Mean L1 between each source ``a`` and its round trip ``G_BA(G_AB(a))``, pixels in [0, 1]."""
    _check_pairs(reconstructions, sources, ("reconstructions", "sources"))
    return mean_score(l1_values(reconstructions, sources), False, "round trips, pixels in [0, 1]", seed)


def semantic_accuracy(output_logits: torch.Tensor, source_labels: torch.Tensor, classifier: str = "mnist_cnn") -> Score:
    """The fraction of translated images a target-domain classifier assigns the source's class (Wilson 95%)."""
    if output_logits.dim() != 2 or source_labels.shape != (len(output_logits),):
        raise ValueError(f"output_logits (N, classes) and source_labels (N,) must match, got "
                         f"{tuple(output_logits.shape)} and {tuple(source_labels.shape)}")
    if len(source_labels) == 0:
        raise ValueError("semantic accuracy needs at least one translated image")
    if int(source_labels.min()) < 0 or int(source_labels.max()) >= output_logits.shape[1]:
        raise ValueError(f"source_labels span {int(source_labels.min())}..{int(source_labels.max())}, outside the "
                         f"classifier's {output_logits.shape[1]} classes")
    n = len(source_labels)
    p = float((output_logits.argmax(1) == source_labels.long()).double().mean())
    std, lo, hi = wilson_interval(p, n)
    return Score(p, std, lo, hi, n, True, f"{classifier} top-1 against the source label; Wilson 95%")


@register_metric("l1", {"l1": False}, {"pairs"}, "paired: mean absolute difference to the target, pixels in [0, 1]",
                 family="paired", paper="Isola et al. 2017, arXiv:1611.07004 (the L1 of pix2pix's objective)",
                 checked_against="numpy mean absolute difference")
def _l1(x: MetricInputs) -> dict[str, Score]:
    return {"l1": l1(x.images, x.targets, x.seed)}


@register_metric("psnr", {"psnr": True}, {"pairs"}, "paired: mean per-image PSNR to the target (dB)", family="paired",
                 paper="peak signal-to-noise ratio", checked_against="torchmetrics peak_signal_noise_ratio")
def _psnr(x: MetricInputs) -> dict[str, Score]:
    return {"psnr": psnr(x.images, x.targets, x.seed)}


@register_metric("ssim", {"ssim": True}, {"pairs"}, "paired: mean SSIM to the target (valid region)", family="paired",
                 paper="Wang et al. 2004", checked_against="skimage.metrics.structural_similarity")
def _ssim(x: MetricInputs) -> dict[str, Score]:
    return {"ssim": ssim(x.images, x.targets, x.seed)}


@register_metric("lpips_target", {"lpips_to_target": False}, {"pairs", "lpips_weights"},
                 "paired: mean LPIPS (VGG16) to the target, when LPIPS weights are present", family="paired",
                 paper="Zhang et al. 2018, arXiv:1801.03924", checked_against="torch-fidelity lpips-vgg16")
def _lpips_target(x: MetricInputs) -> dict[str, Score]:
    return lpips.lpips_to_target(x.images, x.targets)


@register_metric("semantic_acc", {"semantic_acc": True}, {"source_labels"},
                 "FCN-score for digits: the extractor's classifier on outputs against the source label",
                 family="semantic", paper="Isola et al. 2017, Sec. 4.2 (FCN-score)",
                 checked_against="top-1 agreement counted by hand")
def _semantic(x: MetricInputs) -> dict[str, Score]:
    return {"semantic_acc": semantic_accuracy(x.logits, x.source_labels, x.classifier or "classifier")}


@register_metric("cycle_l1", {"cycle_l1": False}, {"cycle"},
                 "cycle reconstruction error: L1 of G_BA(G_AB(a)) against a, pixels in [0, 1]", family="cycle",
                 paper="Zhu et al. 2017, arXiv:1703.10593 (cycle consistency)", checked_against="numpy mean absolute difference")
def _cycle(x: MetricInputs) -> dict[str, Score]:
    return {"cycle_l1": cycle_l1(x.sources, x.reconstructions, x.seed)}


__all__ = ["cycle_l1", "l1", "l1_values", "mean_score", "psnr", "psnr_values", "semantic_accuracy", "ssim",
           "ssim_values"]
