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
- Unpaired: FID and KID of the translated images against the target domain's real test split, through
  ganbench's own ``fid``/``kid`` metrics (``translated_fidelity``).

The spread of each per-pair mean is a percentile bootstrap over the image pairs (``BOOTSTRAP`` replicates):
``std`` is the bootstrap standard deviation, the interval its 2.5th..97.5th percentiles.

The metrics are ``MetricSpec`` entries in ganbench's ``METRICS`` registry, computed from a
``TranslationInputs`` (which, like ``MetricInputs``, says what requirements it can meet) by
``ganbench.metrics.compute``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ganbench.metrics import MetricInputs, MetricSpec, compute, lpips
from ganbench.metrics.fidelity import bootstrap_interval, wilson_interval
from ganbench.registry import METRICS
from ganbench.results.schema import Score

BOOTSTRAP = 1000  # bootstrap replicates over image pairs
SSIM_SIGMA = 1.5  # Wang et al. 2004
SSIM_RADIUS = 5  # torchmetrics' window: int(3.5 * sigma + 0.5) pixels either side (11 x 11)


@dataclass
class TranslationInputs:
    """What translation metrics may read. Leave out what an evaluation does not have."""

    outputs: torch.Tensor  # uint8 NCHW translated images G(x)
    seed: int = 0  # seeds the bootstrap
    targets: torch.Tensor | None = None  # uint8 NCHW ground truth, targets[i] paired with outputs[i]
    source_labels: torch.Tensor | None = None  # int64 class of each source image
    output_logits: torch.Tensor | None = None  # (N, classes) logits of a classifier of the target domain on outputs
    classifier: str = "mnist_cnn"  # extractor that produced output_logits (named in the score's method)
    sources: torch.Tensor | None = None  # uint8 NCHW inputs a (for the cycle error)
    reconstructions: torch.Tensor | None = None  # uint8 NCHW G_BA(G_AB(a)), paired with sources

    def available(self) -> set[str]:
        """The requirements this evaluation can meet (disjoint from ``MetricInputs``' except lpips_weights)."""
        have = set()
        if self.targets is not None:
            have.add("pairs")
            if lpips.lpips_weights_available():
                have.add("lpips_weights")
        if self.source_labels is not None and self.output_logits is not None:
            have.add("source_labels")
        if self.sources is not None and self.reconstructions is not None:
            have.add("cycle")
        return have


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


SPECS = (
    MetricSpec("l1", {"l1": False}, frozenset({"pairs"}),
               lambda x: {"l1": l1(x.outputs, x.targets, x.seed)},
               "paired: mean absolute difference to the target, pixels in [0, 1]"),
    MetricSpec("psnr", {"psnr": True}, frozenset({"pairs"}),
               lambda x: {"psnr": psnr(x.outputs, x.targets, x.seed)},
               "paired: mean per-image PSNR to the target (dB)"),
    MetricSpec("ssim", {"ssim": True}, frozenset({"pairs"}),
               lambda x: {"ssim": ssim(x.outputs, x.targets, x.seed)},
               "paired: mean SSIM to the target (Wang et al. 2004, valid region)"),
    MetricSpec("lpips_target", {"lpips_to_target": False}, frozenset({"pairs", "lpips_weights"}),
               lambda x: lpips.lpips_to_target(x.outputs, x.targets),
               "paired: mean LPIPS (VGG16) to the target, when LPIPS weights are present"),
    MetricSpec("semantic_acc", {"semantic_acc": True}, frozenset({"source_labels"}),
               lambda x: {"semantic_acc": semantic_accuracy(x.output_logits, x.source_labels, x.classifier)},
               "FCN-score for digits: target-domain classifier accuracy on outputs against the source label"),
    MetricSpec("cycle_l1", {"cycle_l1": False}, frozenset({"cycle"}),
               lambda x: {"cycle_l1": cycle_l1(x.sources, x.reconstructions, x.seed)},
               "cycle reconstruction error: L1 of G_BA(G_AB(a)) against a, pixels in [0, 1]"),
)
for _spec in SPECS:
    METRICS.register(_spec.name, _spec, needs=",".join(sorted(_spec.needs)), higher_is_better=_spec.scores,
                     description=_spec.description, task="translation")


def default_metrics(inputs: TranslationInputs) -> list[str]:
    """Every translation metric whose requirements ``inputs`` meets."""
    have = inputs.available()
    return [s.name for s in SPECS if s.needs <= have]


def compute_translation(names: list[str], inputs: TranslationInputs) -> dict[str, Score]:
    """The requested translation metrics (every applicable one if ``names`` is empty), through
    ``ganbench.metrics.compute``."""
    return compute(names or default_metrics(inputs), inputs)  # type: ignore[arg-type]


def classifier_logits(images: torch.Tensor, extractor: str = "mnist_cnn") -> torch.Tensor:
    """Class logits of uint8 NCHW images from a registered extractor with a logits layer (default
    ``mnist_cnn``), for ``TranslationInputs.output_logits``."""
    from ganbench.features import extract, get_extractor

    spec = get_extractor(extractor)
    if spec.logits_layer is None:
        raise ValueError(f"extractor {extractor!r} has no class logits; semantic accuracy needs a classifier")
    return extract(spec, images, progress=False)[spec.logits_layer]


def translation_inputs(outputs: torch.Tensor, *, targets: torch.Tensor | None = None,
                       source_labels: torch.Tensor | None = None, sources: torch.Tensor | None = None,
                       reconstructions: torch.Tensor | None = None, classifier: str = "mnist_cnn",
                       seed: int = 0) -> TranslationInputs:
    """``TranslationInputs`` for ``outputs``, with the classifier's logits computed when labels are given."""
    logits = classifier_logits(outputs, classifier) if source_labels is not None else None
    return TranslationInputs(outputs, seed, targets, source_labels, logits, classifier, sources, reconstructions)


def translated_fidelity(translated: torch.Tensor, target, extractor: str = "mnist_cnn", metrics: tuple[str, ...] = (
        "fid", "kid"), seed: int = 0, progress: bool = False) -> dict[str, Score]:
    """FID and KID (ganbench's ``fid``/``kid`` metrics) of translated images against the real images of the
    target domain, e.g. ``edges2digits("test").domain("b")``; the target's features come from the feature cache.

    Args:
        translated: uint8 NCHW outputs G_AB(a) of the test split's A images.
        target: A ``Split`` of real target-domain images (the test split's B domain).
        extractor: Feature extractor registry name.
        metrics: Feature metrics to compute (any of ``ganbench.metrics``' feature metrics).
        seed: Seeds the bootstrap and KID's subsets.
        progress: Show extraction progress on stderr.
    """
    from ganbench.features import extract, get_extractor, reference_features

    spec = get_extractor(extractor)
    gen = extract(spec, translated, progress=progress)
    ref = reference_features(spec, target, progress=progress)
    inputs = MetricInputs(gen, ref, spec.feature_layer, spec.logits_layer, target.dataset, seed)
    return compute(list(metrics), inputs)


__all__ = ["SPECS", "TranslationInputs", "classifier_logits", "compute_translation", "cycle_l1", "default_metrics",
           "l1", "l1_values", "mean_score", "psnr", "psnr_values", "semantic_accuracy", "ssim", "ssim_values",
           "translated_fidelity", "translation_inputs"]
