"""The metric contract: one ``MetricInputs`` every metric reads from, one ``register_metric`` that records what a
metric needs and how its scores read, and one ``compute``.

Metadata follows stylegan3's ``register_metric`` and lm-eval's ``higher_is_better``: what the metric needs, which
scores it produces, in which direction each improves and how a table shows it (decimals, which table). The
leaderboard and the report read the display metadata from here, so a new metric appears in them without an edit
elsewhere. A metric's requirements are matched against what an evaluation has (class logits, a held-out split,
known modes, images, paired targets, captions, ...); by default an evaluation computes every metric of its task's
families whose requirements it meets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ganbench.metrics.frechet import GaussianStats
from ganbench.registry import METRICS
from ganbench.results.schema import Score

GROUPS = ("fidelity", "diversity", "hidden")  # which leaderboard table shows a score ("hidden": CSV and JSON only)
FAMILIES = ("sample", "paired", "superres", "semantic", "cycle", "caption")

REQUIREMENTS = {  # what each requirement is, for error messages and ``ganbench ls metrics``
    "features": "features of the samples and of the reference from the extractor",
    "gen_features": "features of the samples from the extractor",
    "ref_stats": "the reference's Gaussian statistics (from its features, or a statistics file)",
    "logits": "an extractor with class logits",
    "heldout": "a held-out real split",
    "toy_modes": "a 2D toy set with known modes (ring8, grid25)",
    "stacked_digits": "the stacked_mnist_cnn extractor",
    "images": "image samples",
    "lpips_weights": "the LPIPS VGG16 files (see ganbench.metrics.lpips)",
    "pairs": "a ground-truth target for every output (paired translation, super-resolution)",
    "source_labels": "class labels of the sources and an extractor with class logits",
    "cycle": "round-trip images G_BA(G_AB(a))",
    "captions": "the captions the images were generated from",
    "spatial_features": "Inception's spatial layer (mixed_6/conv, first 7 channels: 7x17x17) for the samples and the "
                        "reference (sFID; the inception_v3_fid extractor provides it)",
    "ref_images": "the reference split's images (pixel-space metrics against the reference: FWD)",
    "class_labels": "the class each output was drawn for, and the reference split's class labels (intra-class FID)",
    "model": "the generator itself: the task computes the score from it (Task.model_scores), never from samples",
}


@dataclass
class MetricInputs:
    """What a metric may read. An evaluation fills in what it has and leaves the rest None."""

    gen: dict[str, torch.Tensor] | None  # layer name -> (N, D) features of the outputs
    ref: dict[str, torch.Tensor] | None  # layer name -> (M, D) reference (training) features
    feature_layer: str | None  # layer for distances (FID, KID, PR, ...)
    logits_layer: str | None  # layer of class logits (IS, semantic accuracy, R-precision), if the extractor has one
    dataset: str | None  # reference dataset name (mode metrics need its known modes)
    seed: int  # seeds bootstrap and subset sampling
    heldout: dict[str, torch.Tensor] | None = None  # held-out real features (memorisation, birthday)
    images: torch.Tensor | None = None  # the uint8 outputs themselves (pixel-space metrics)
    ref_stats: GaussianStats | None = None  # cached reference Gaussian with its covariance factor
    gen_stats: GaussianStats | None = None  # generated Gaussian merged from sharded sums (else from ``gen``)
    targets: torch.Tensor | None = None  # uint8 NCHW ground truth, targets[i] paired with images[i]
    source_labels: torch.Tensor | None = None  # int64 class of each output's source
    sources: torch.Tensor | None = None  # uint8 NCHW inputs a of a translation (for the cycle error)
    reconstructions: torch.Tensor | None = None  # uint8 NCHW G_BA(G_AB(a)), paired with sources
    tokens: torch.Tensor | None = None  # (N, L) caption token ids the outputs were generated from
    classifier: str | None = None  # the extractor whose logits judge semantic accuracy and R-precision
    scale: int = 4  # super-resolution factor: the border left out of PSNR-Y and SSIM-Y
    heldout_images: torch.Tensor | None = None  # uint8 NCHW held-out images: calibrate the pixel near-copy threshold
    ref_images: torch.Tensor | None = None  # uint8 NCHW images of the reference split (FWD)
    labels: torch.Tensor | None = None  # int64 class each output was drawn for (class-conditional samples)
    ref_labels: torch.Tensor | None = None  # int64 class of each reference image, ref_images[i] / ref[...][i]
    _cache: dict = field(default_factory=dict)

    def reference_stats(self) -> GaussianStats:
        if self.ref_stats is None:
            self.ref_stats = GaussianStats.from_features(self.ref[self.feature_layer], with_root=True)
        return self.ref_stats

    @property
    def logits(self) -> torch.Tensor | None:
        """The class logits of the outputs, when the extractor has them."""
        if self.gen is None or self.logits_layer is None:
            return None
        return self.gen.get(self.logits_layer)

    def feature(self, which: str = "gen") -> torch.Tensor:
        """Features of ``which`` ("gen", "ref" or "heldout") at the distance layer."""
        return getattr(self, which)[self.feature_layer]

    def available(self) -> set[str]:
        """The requirements this evaluation can meet (see ``REQUIREMENTS``)."""
        from ganbench.data import TOY_SETS
        from ganbench.metrics.lpips import lpips_weights_available

        have = set()
        if self.gen is not None and self.feature_layer in self.gen:
            have.add("gen_features")
            if self.ref is not None:
                have.add("features")
        if self.ref_stats is not None or (self.ref is not None and self.feature_layer in self.ref):
            have.add("ref_stats")
        if self.logits is not None:
            have.add("logits")
        if self.heldout is not None:
            have.add("heldout")
        if self.dataset in TOY_SETS:
            have.add("toy_modes")
        if self.gen is not None and "digits" in self.gen:
            have.add("stacked_digits")
        is_images = self.images is not None and self.images.dtype == torch.uint8
        if is_images:
            have.add("images")
        if self.targets is not None:
            have.add("pairs")
        if (is_images or self.targets is not None) and lpips_weights_available():
            have.add("lpips_weights")
        if self.source_labels is not None and self.logits is not None:
            have.add("source_labels")
        if self.sources is not None and self.reconstructions is not None:
            have.add("cycle")
        if self.tokens is not None:
            have.add("captions")
        if self.gen is not None and self.ref is not None:
            from ganbench.features.inception import SPATIAL_LAYER

            if SPATIAL_LAYER in self.gen and SPATIAL_LAYER in self.ref:
                have.add("spatial_features")
        if self.ref_images is not None and self.ref_images.dtype == torch.uint8:
            have.add("ref_images")
        if self.labels is not None and self.ref_labels is not None and "features" in have:
            have.add("class_labels")
        return have


@dataclass(frozen=True)
class ScoreInfo:
    """How a score reads: its direction and how a table shows it."""

    higher_is_better: bool
    digits: int | None = None  # decimals in tables; None: three significant digits
    group: str = "fidelity"  # "fidelity", "diversity" (diversity, mode collapse, memorisation) or "hidden"
    min_significant: int = 0  # keep at least this many significant digits for small values (e.g. FID 0.063)
    significant: int | None = None  # show this many significant digits instead (scores spanning orders of magnitude)


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric: what it needs, what it returns, and where its definition comes from."""

    name: str  # registry name
    scores: dict[str, ScoreInfo]  # score name -> how it reads
    needs: frozenset[str]  # requirements, see REQUIREMENTS
    compute: Callable[[MetricInputs], dict[str, Score]]
    description: str
    family: str = "sample"  # "sample" (samples against the reference), "paired", "superres", "semantic", ...
    paper: str = ""  # the definition it implements
    checked_against: str = ""  # the reference implementation (or closed form) the tests compare it with

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {name: info.higher_is_better for name, info in self.scores.items()}


def register_metric(name: str, scores: dict[str, ScoreInfo | bool], needs: set[str] | frozenset[str],
                    description: str, family: str = "sample", paper: str = "", checked_against: str = ""
                    ) -> Callable[[Callable[[MetricInputs], dict[str, Score]]], Callable[[MetricInputs],
                                                                                         dict[str, Score]]]:
    """Decorator registering ``compute(inputs) -> {score: Score}`` as metric ``name``.

    Args:
        scores: Score name -> ``ScoreInfo`` (or just higher_is_better).

    Raises:
        ValueError: For an unknown requirement, family or display group.
    """
    infos = {k: v if isinstance(v, ScoreInfo) else ScoreInfo(bool(v)) for k, v in scores.items()}
    unknown = set(needs) - set(REQUIREMENTS)
    if unknown:
        raise ValueError(f"metric {name!r} needs unknown requirements {sorted(unknown)}; known: {sorted(REQUIREMENTS)}")
    if family not in FAMILIES:
        raise ValueError(f"metric {name!r}: family must be one of {FAMILIES}, got {family!r}")
    for score, info in infos.items():
        if info.group not in GROUPS:
            raise ValueError(f"metric {name!r}, score {score!r}: group must be one of {GROUPS}, got {info.group!r}")

    def add(fn: Callable[[MetricInputs], dict[str, Score]]) -> Callable[[MetricInputs], dict[str, Score]]:
        spec = MetricSpec(name, infos, frozenset(needs), fn, description, family, paper, checked_against)
        METRICS.register(name, spec, needs=",".join(sorted(spec.needs)), higher_is_better=spec.higher_is_better,
                         description=description, family=family)
        return fn

    return add


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)


def metric_specs() -> list[MetricSpec]:
    """Every registered metric, in registration order (the order of a leaderboard's columns)."""
    return [METRICS.get(name) for name in METRICS.names_in_order()]


def score_info(score: str) -> ScoreInfo | None:
    """How a score reads, from the metric that produces it; None for a score no registered metric computes
    (throughput, a user's own)."""
    for spec in metric_specs():
        if score in spec.scores:
            return spec.scores[score]
    return None


def score_order() -> list[str]:
    """Every registered score, in registration order."""
    return [s for spec in metric_specs() for s in spec.scores]


def metrics_for(families: tuple[str, ...], inputs: MetricInputs, only: tuple[str, ...] | None = None) -> list[str]:
    """The metrics of ``families`` whose requirements ``inputs`` meets (restricted to ``only`` when given)."""
    have = inputs.available()
    return [s.name for s in metric_specs() if s.family in families and s.needs <= have
            and (only is None or s.name in only)]


def missing_requirements(name: str, inputs: MetricInputs) -> set[str]:
    return set(get_metric(name).needs - inputs.available())


def compute(names: list[str], inputs: MetricInputs) -> dict[str, Score]:
    """Every named metric, from the same inputs (every applicable sample metric if ``names`` is empty).

    Raises:
        ValueError: Naming a metric whose requirements the inputs do not meet, and what each requirement is.
    """
    scores: dict[str, Score] = {}
    for name in names or metrics_for(("sample",), inputs):
        missing = missing_requirements(name, inputs)
        if missing:
            raise ValueError(f"metric {name!r} needs " + "; ".join(f"{m} ({REQUIREMENTS[m]})" for m in sorted(missing))
                             + ", which this evaluation does not have")
        scores.update(get_metric(name).compute(inputs))
    return scores


__all__ = ["FAMILIES", "GROUPS", "MetricInputs", "MetricSpec", "REQUIREMENTS", "ScoreInfo", "compute", "get_metric",
           "metric_specs", "metrics_for", "register_metric", "score_info", "score_order"]
