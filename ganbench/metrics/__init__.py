"""Registered metrics. Each reads what an evaluation has (features, images, targets, captions; never a model) and
returns named scores with their spread. The contract is ``ganbench.metrics.base``; the families register on import:

- ``sample``: samples against the reference and held-out real data (FID, KID, IS, PRDC, modes, memorisation, ...);
- ``paired``, ``semantic``, ``cycle`` (``translation``): translations against their targets and sources;
- ``superres``: super-resolved images against the high-resolution originals (luma PSNR and SSIM);
- ``caption``: text-to-image samples against the captions they were drawn from;
- ``extended``: more sample metrics of the anchors (sFID, Vendi, RBF-MMD/CMMD, KID-RBF, FWD, sliced Wasserstein,
  intra-class FID), and PPL, which its task computes from the generator.
"""

from ganbench.metrics import sample, superres, text2img, translation, extended  # noqa: F401  (register the families, in order)
from ganbench.metrics.base import (MetricInputs, MetricSpec, ScoreInfo, compute, get_metric, metric_specs,
                                   metrics_for, register_metric, score_info, score_order)

__all__ = ["MetricInputs", "MetricSpec", "ScoreInfo", "compute", "get_metric", "metric_specs", "metrics_for",
           "register_metric", "score_info", "score_order"]
