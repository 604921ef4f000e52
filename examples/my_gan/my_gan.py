"""An example of a user's model that ganbench evaluates without being edited: a linear generator.

``LinearGenerator`` is G(z) = mu + W z with z ~ N(0, I_k): the generator of a linear GAN. Feizi et al. 2020
("Understanding GANs in the LQG setting", arXiv:1710.10793) show that for Gaussian data under a quadratic
loss the optimal linear generator spans the top-k principal components, so we fit it in closed form
(probabilistic PCA, Tipping & Bishop 1999) on ganbench's MNIST train split instead of training a
discriminator. It is a weak model on purpose (blurry digits): a baseline that a real GAN should beat.

Use it from the command line:

    ganbench eval examples/my_gan/my_gan.py:LinearGenerator --dataset mnist --resolution 32 -n 1000
    ganbench check examples/my_gan/my_gan.py:LinearGenerator --against results/<earlier result>.json

or install this folder (``pip install -e examples/my_gan``) and use the entry-point name ``linear_gan``.
"""

from __future__ import annotations

import functools

import torch

from ganbench.data import load


@functools.lru_cache(maxsize=4)
def fit_pca(components: int, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (H*W,) and W (H*W, k) of the MNIST train split: W = V_k diag(sqrt(lambda_k)), so that z ~ N(0, I)
    gives the data's variance along each of the top-k principal directions. Cached: one fit per process."""
    train = load("mnist", "train", resolution).data.double().flatten(1)  # (N, H*W) in 0..255
    mean = train.mean(0)
    cov = (train - mean).T @ (train - mean) / (len(train) - 1)
    variances, vectors = torch.linalg.eigh(cov)  # ascending
    top = variances.flip(0)[:components].clamp(min=0)
    return mean.float(), (vectors.flip(1)[:, :components] * top.sqrt()).float()


class LinearGenerator:
    """G(z) = mu + W z fitted by PCA; ``sample(n, seed)`` returns uint8 N x 1 x 32 x 32 digits.

    Args:
        components: Latent dimension k (principal components kept).
        resolution: Image side; the MNIST train split is resized to it.
    """

    task = "unconditional"

    def __init__(self, components: int = 32, resolution: int = 32):
        self.mean, self.weight = fit_pca(components, resolution)
        self.resolution = resolution
        self.config = {"components": components, "resolution": resolution}

    @property
    def nz(self) -> int:
        return self.weight.shape[1]

    def sample(self, n: int, seed: int) -> torch.Tensor:
        z = torch.randn(n, self.nz, generator=torch.Generator().manual_seed(seed))
        x = self.mean + z @ self.weight.T
        return x.round().clamp(0, 255).to(torch.uint8).reshape(n, 1, self.resolution, self.resolution)


def make_generator() -> LinearGenerator:
    """A factory: ``my_gan.py:make_generator`` builds the same model with 16 components."""
    return LinearGenerator(components=16)
