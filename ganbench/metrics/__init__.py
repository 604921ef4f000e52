"""Registered metrics. Each reads precomputed features (never a model) and returns named scores.

Metadata follows stylegan3's ``register_metric`` and lm-eval's ``higher_is_better``: what the metric
needs, which scores it produces and in which direction they improve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ganbench.data import TOY_SETS
from ganbench.metrics import fidelity, modes
from ganbench.registry import METRICS
from ganbench.results.schema import Score


@dataclass(frozen=True)
class MetricInputs:
    """What a metric may read: features of the generated set and of the reference split."""

    gen: dict[str, torch.Tensor]  # layer name -> (N, D) generated features
    ref: dict[str, torch.Tensor]  # layer name -> (M, D) reference features
    feature_layer: str  # layer for distances (FID, KID, PR)
    logits_layer: str | None  # layer of class logits (IS)
    dataset: str  # reference dataset name (mode metrics need its known modes)
    seed: int  # seeds bootstrap and subset sampling


@dataclass(frozen=True)
class MetricSpec:
    name: str  # registry name
    scores: dict[str, bool]  # score name -> higher_is_better
    needs: str  # "features", "logits" or "modes"
    compute: Callable[[MetricInputs], dict[str, Score]]
    description: str


def _fid(x: MetricInputs) -> dict[str, Score]:
    return {"fid": fidelity.fid(x.gen[x.feature_layer], x.ref[x.feature_layer], seed=x.seed)}


def _kid(x: MetricInputs) -> dict[str, Score]:
    return {"kid": fidelity.kid(x.gen[x.feature_layer], x.ref[x.feature_layer], seed=x.seed)}


def _is(x: MetricInputs) -> dict[str, Score]:
    return {"is": fidelity.inception_score(x.gen[x.logits_layer])}


def _prc(x: MetricInputs) -> dict[str, Score]:
    return fidelity.precision_recall(x.gen[x.feature_layer], x.ref[x.feature_layer])


def _modes(x: MetricInputs) -> dict[str, Score]:
    if x.dataset not in TOY_SETS:
        raise ValueError(f"mode metrics need a dataset with known modes ({', '.join(TOY_SETS)}), got {x.dataset!r}")
    centres, std = TOY_SETS[x.dataset]
    return modes.mode_scores(x.gen[x.feature_layer], centres(), std, seed=x.seed)


for spec in (
    MetricSpec("fid", {"fid": False}, "features", _fid, "Fréchet distance of Gaussian fits to features"),
    MetricSpec("kid", {"kid": False}, "features", _kid, "kernel (cubic polynomial) MMD, unbiased, over subsets"),
    MetricSpec("is", {"is": True}, "logits", _is, "Inception Score from the extractor's class logits"),
    MetricSpec("prc", {"precision": True, "recall": True}, "features", _prc,
               "improved precision and recall (k=3 nearest-neighbour manifolds)"),
    MetricSpec("modes", {"modes": True, "hq_fraction": True, "reverse_kl": False}, "modes", _modes,
               "modes captured, high-quality fraction and reverse KL on 2D mixtures"),
):
    METRICS.register(spec.name, spec, needs=spec.needs, higher_is_better=spec.scores)


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)


def compute(names: list[str], inputs: MetricInputs) -> dict[str, Score]:
    """Every requested metric, from the same features."""
    scores: dict[str, Score] = {}
    for name in names:
        spec = get_metric(name)
        if spec.needs == "logits" and inputs.logits_layer is None:
            raise ValueError(f"metric {name!r} needs class logits, which this extractor does not provide")
        scores.update(spec.compute(inputs))
    return scores
