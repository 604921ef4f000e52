"""Text-to-image metrics for captioned digits: does the image show what its caption says?

- ``r_precision``: the R-precision idea of Xu et al. 2018 (AttnGAN, Sec. 5: rank the true caption among R candidates
  by image-text similarity; report how often it ranks first), with a digit classifier as the judge. The candidates
  are the caption with each of the 10 digits in turn and the classifier's log-probability of the named digit is the
  similarity, so the true caption ranks first exactly when the classifier's top-1 class is the caption's digit:
  R-precision at R = 10 is the classifier's top-1 accuracy against the captions' digits. The score is that
  proportion with a Wilson 95% interval (``ganbench.metrics.translation.semantic_accuracy``, which computes the same
  thing for translated digits). With the ``mnist_cnn`` classifier, real test digits with their own captions score
  the classifier's held-out accuracy (the ceiling) and with shuffled captions chance, 0.1.
- ``caption_attribute_agreement``: for each attribute of ``ganbench.data.captions`` (thickness, slant, size), the
  fraction of images whose measured level (low / middle / high, by the terciles of the caption's digit) is the level
  the caption states; 1/3 is chance for uniformly drawn levels. Wilson 95% intervals.

FID and the other sample metrics of a text-to-image generator come from the ordinary evaluation of its samples
(``Generator.sample`` draws captions through the model's ``generator_inputs``).
"""

from __future__ import annotations

import torch

from ganbench.data.captions import ATTRIBUTES, attribute_levels, caption_digits, caption_levels, measure_attributes
from ganbench.metrics.base import MetricInputs, register_metric
from ganbench.metrics.fidelity import wilson_interval
from ganbench.metrics.translation import semantic_accuracy
from ganbench.results.schema import Score


def r_precision(logits: torch.Tensor, tokens: torch.Tensor, classifier: str = "mnist_cnn") -> Score:
    """How often the digit classifier's top-1 class on an image is the digit its caption names (Wilson 95%)."""
    s = semantic_accuracy(logits, caption_digits(tokens), classifier)
    return Score(s.value, s.std, s.ci_low, s.ci_high, s.n, True,
                 f"R-precision at R=10 with {classifier} as the judge: its top-1 against the caption's digit; "
                 "Wilson 95%")


def caption_attribute_agreement(images: torch.Tensor, tokens: torch.Tensor) -> dict[str, Score]:
    """Per attribute, the fraction of images whose measured level is the caption's (``attr_<name>``, Wilson 95%)."""
    if len(images) != len(tokens) or len(images) == 0:
        raise ValueError(f"need one caption per image and at least one image, got {len(images)} images and "
                         f"{len(tokens)} captions")
    measured = attribute_levels(measure_attributes(images), caption_digits(tokens).numpy())
    stated = caption_levels(tokens)
    out = {}
    for j, name in enumerate(ATTRIBUTES):
        p = float((measured[:, j] == stated[:, j]).mean())
        std, lo, hi = wilson_interval(p, len(images))
        out[f"attr_{name}"] = Score(p, std, lo, hi, len(images), True,
                                    f"measured {name} level (tercile of the caption's digit) equals the caption's; "
                                    "chance 1/3; Wilson 95%")
    return out


@register_metric("r_precision", {"r_precision": True}, {"captions", "logits"},
                 "text-to-image: the extractor's classifier top-1 against the caption's digit (R-precision at R=10)",
                 family="caption", paper="Xu et al. 2018 (AttnGAN) R-precision, with a digit classifier as the judge",
                 checked_against="top-1 agreement counted by hand")
def _r_precision(x: MetricInputs) -> dict[str, Score]:
    return {"r_precision": r_precision(x.logits, x.tokens, x.classifier or "classifier")}


@register_metric("caption_attrs", {f"attr_{a}": True for a in ATTRIBUTES}, {"captions", "images"},
                 "text-to-image: measured thickness/slant/size level equals the caption's (chance 1/3)",
                 family="caption", paper="ganbench's captioned digits (ganbench.data.captions)",
                 checked_against="attribute levels measured on planted digits")
def _caption_attrs(x: MetricInputs) -> dict[str, Score]:
    return caption_attribute_agreement(x.images, x.tokens)


__all__ = ["caption_attribute_agreement", "r_precision"]
