"""Registered metrics. Each reads precomputed features (never a model) and returns named scores.

Metadata follows stylegan3's ``register_metric`` and lm-eval's ``higher_is_better``: what the metric
needs, which scores it produces and in which direction they improve. A metric's requirements are
matched against what an evaluation has (class logits, a held-out split, known modes, images); by
default an evaluation computes every metric whose requirements it meets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ganbench.data import TOY_SETS
from ganbench.metrics import diversity, fidelity, lpips, memorization, modes, ndb, prdc
from ganbench.metrics.frechet import GaussianStats, fid_infinity
from ganbench.registry import METRICS
from ganbench.results.schema import Score


@dataclass
class MetricInputs:
    """What a metric may read: features of the generated set, the reference split and the held-out split."""

    gen: dict[str, torch.Tensor]  # layer name -> (N, D) generated features
    ref: dict[str, torch.Tensor]  # layer name -> (M, D) reference (training) features
    feature_layer: str  # layer for distances (FID, KID, PR, ...)
    logits_layer: str | None  # layer of class logits (IS), if the extractor has one
    dataset: str  # reference dataset name (mode metrics need its known modes)
    seed: int  # seeds bootstrap and subset sampling
    heldout: dict[str, torch.Tensor] | None = None  # held-out real features (memorisation, birthday)
    images: torch.Tensor | None = None  # the generated uint8 images themselves (pixel-space diversity)
    ref_stats: GaussianStats | None = None  # cached reference Gaussian with its covariance factor
    gen_stats: GaussianStats | None = None  # generated Gaussian merged from sharded sums (else from ``gen``)
    _cache: dict = field(default_factory=dict)

    def reference_stats(self) -> GaussianStats:
        if self.ref_stats is None:
            self.ref_stats = GaussianStats.from_features(self.ref[self.feature_layer], with_root=True)
        return self.ref_stats

    def available(self) -> set[str]:
        """The requirements this evaluation can meet."""
        have = {"features"}
        if self.logits_layer is not None:
            have.add("logits")
        if self.heldout is not None:
            have.add("heldout")
        if self.dataset in TOY_SETS:
            have.add("toy_modes")
        if "digits" in self.gen:
            have.add("stacked_digits")
        if self.images is not None and self.images.dtype == torch.uint8:
            have.add("images")
            if lpips.lpips_weights_available():
                have.add("lpips_weights")
        return have


@dataclass(frozen=True)
class MetricSpec:
    name: str  # registry name
    scores: dict[str, bool]  # score name -> higher_is_better
    needs: frozenset[str]  # requirements, see MetricInputs.available
    compute: Callable[[MetricInputs], dict[str, Score]]
    description: str


def _feat(x: MetricInputs, which: str = "gen") -> torch.Tensor:
    return getattr(x, which)[x.feature_layer]


SPECS = (
    MetricSpec("fid", {"fid": False}, frozenset({"features"}),
               lambda x: {"fid": fidelity.fid(_feat(x), x.reference_stats(), seed=x.seed, gen_stats=x.gen_stats)},
               "Fréchet distance of Gaussian fits; bootstrap interval"),
    MetricSpec("fid_inf", {"fid_inf": False}, frozenset({"features"}),
               lambda x: {"fid_inf": fid_infinity(_feat(x), x.reference_stats(), seed=x.seed)},
               "FID extrapolated to infinite samples (Chong & Forsyth 2020)"),
    MetricSpec("kid", {"kid": False}, frozenset({"features"}),
               lambda x: {"kid": fidelity.kid(_feat(x), _feat(x, "ref"), seed=x.seed)},
               "kernel (cubic polynomial) MMD, unbiased, over subsets"),
    MetricSpec("is", {"is": True}, frozenset({"logits"}),
               lambda x: {"is": fidelity.inception_score(x.gen[x.logits_layer])},
               "Inception Score from the extractor's class logits"),
    MetricSpec("prc", {"precision": True, "recall": True}, frozenset({"features"}),
               lambda x: fidelity.precision_recall(_feat(x), _feat(x, "ref")),
               "improved precision and recall (k=3 nearest-neighbour manifolds)"),
    MetricSpec("dc", {"density": True, "coverage": True}, frozenset({"features"}),
               lambda x: prdc.density_coverage(_feat(x), _feat(x, "ref"), seed=x.seed),
               "density and coverage (Naeem et al. 2020, k=5)"),
    MetricSpec("ndb", {"ndb": False, "ndb_jsd": False}, frozenset({"features"}),
               lambda x: ndb.ndb_jsd(_feat(x), _feat(x, "ref"), seed=x.seed),
               "statistically different k-means bins and their JSD (Richardson & Weiss 2018)"),
    MetricSpec("memorization", {"copy_fraction": False, "nn_ratio": True}, frozenset({"heldout"}),
               lambda x: memorization.memorization(_feat(x), _feat(x, "ref"), _feat(x, "heldout")),
               "nearest-training-neighbour distances against the held-out split's"),
    MetricSpec("birthday", {"birthday_support": True, "duplicate_pairs": False}, frozenset({"heldout"}),
               lambda x: memorization.birthday(_feat(x), _feat(x, "heldout"), seed=x.seed),
               "birthday-paradox support size (Arora & Zhang 2017)"),
    MetricSpec("modes", {"modes": True, "hq_fraction": True, "reverse_kl": False}, frozenset({"toy_modes"}),
               lambda x: modes.mode_scores(_feat(x), TOY_SETS[x.dataset][0](), TOY_SETS[x.dataset][1], seed=x.seed),
               "modes captured, high-quality fraction and reverse KL on 2D mixtures"),
    MetricSpec("stacked_modes", {"stacked_modes": True, "stacked_kl": False}, frozenset({"stacked_digits"}),
               lambda x: modes.stacked_mode_scores(x.gen["digits"], seed=x.seed),
               "Stacked MNIST modes covered of 1000 and KL to uniform"),
    MetricSpec("ms_ssim", {"ms_ssim": False}, frozenset({"images"}),
               lambda x: diversity.ms_ssim_diversity(x.images, seed=x.seed),
               "mean MS-SSIM between random sample pairs (lower is more diverse)"),
    MetricSpec("lpips", {"lpips_diversity": True}, frozenset({"images", "lpips_weights"}),
               lambda x: lpips.lpips_diversity(x.images, seed=x.seed),
               "mean LPIPS (VGG16) between random sample pairs, when LPIPS weights are present"),
)
for _spec in SPECS:
    METRICS.register(_spec.name, _spec, needs=",".join(sorted(_spec.needs)), higher_is_better=_spec.scores,
                     description=_spec.description)


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)


def default_metrics(inputs: MetricInputs) -> list[str]:
    """Every registered metric whose requirements ``inputs`` meets."""
    have = inputs.available()
    return [s.name for s in SPECS if s.needs <= have]


def compute(names: list[str], inputs: MetricInputs) -> dict[str, Score]:
    """Every requested metric (all applicable ones if ``names`` is empty), from the same features."""
    have = inputs.available()
    scores: dict[str, Score] = {}
    for name in names or default_metrics(inputs):
        spec = get_metric(name)
        missing = spec.needs - have
        if missing:
            raise ValueError(f"metric {name!r} needs {', '.join(sorted(missing))}, which this evaluation does not have "
                             f"(logits: an extractor with class logits; heldout: a held-out split; toy_modes: ring8 "
                             f"or grid25; stacked_digits: the stacked_mnist_cnn extractor; images: image samples; "
                             f"lpips_weights: the LPIPS VGG16 files, see ganbench.metrics.lpips; pairs: paired targets; "
                             f"source_labels: source labels and classifier logits; cycle: round-trip images)")
        scores.update(spec.compute(inputs))
    return scores


import ganbench.metrics.translation  # noqa: E402,F401  (registers l1, psnr, ssim, lpips_target, semantic_acc, cycle_l1)
import ganbench.metrics.superres  # noqa: E402,F401  (psnr_y, ssim_y, lpips_sr)
import ganbench.metrics.text2img  # noqa: E402,F401  (r_precision, caption_attrs)
