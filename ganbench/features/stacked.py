"""The Stacked MNIST mode counter: the ``mnist_cnn`` digit classifier applied to each colour channel.

Stacked MNIST (used by VEEGAN, PacGAN and others) counts how many of the 1000 digit triples a generator
produces; the triple of an image is the classifier's prediction on its R, G and B channels. Features are
the three 128-d pooled vectors concatenated (384-d) for FID/KID/PR; "digits" holds the three channels'
logits side by side (N, 30).
"""

from __future__ import annotations

import torch
from torch import nn

from ganbench.features.mnist_cnn import MnistCNNFeatureExtractor


class StackedDigitsExtractor(nn.Module):
    features_list = ["pool", "digits"]

    def __init__(self, digit_extractor: MnistCNNFeatureExtractor):
        super().__init__()
        self.digit = digit_extractor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"stacked_mnist_cnn expects uint8 N x 3 x H x W images, got {x.dtype} {tuple(x.shape)}")
        n = x.shape[0]
        pool, logits = self.digit(x.reshape(n * 3, 1, *x.shape[-2:]))
        return pool.reshape(n, -1), logits.reshape(n, -1)
