"""Planted defects for the regression gate's tests, loaded the way users' models are (FILE.py:NAME).

``BlurredLinearGenerator`` is the example user model (examples/my_gan/my_gan.py) with every sample
Gaussian-blurred (5x5 kernel, sigma 1 px): the same digits, less sharp, a model the gate must call worse.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import torch
from torchvision.transforms.functional import gaussian_blur

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_gan" / "my_gan.py"


@functools.lru_cache(maxsize=1)
def _example_module():
    spec = importlib.util.spec_from_file_location("ganbench_example_my_gan", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BlurredLinearGenerator:
    task = "unconditional"

    def __init__(self, sigma: float = 1.0):
        self.inner = _example_module().LinearGenerator()
        self.sigma = sigma
        self.config = {"blur_sigma": sigma, **self.inner.config}

    def sample(self, n: int, seed: int) -> torch.Tensor:
        return gaussian_blur(self.inner.sample(n, seed), kernel_size=5, sigma=self.sigma)
