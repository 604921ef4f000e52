"""A small digit classifier that ganbench trains itself, used as the offline feature extractor for MNIST.

MNIST GAN papers score samples with a domain classifier rather than Inception (e.g. the mode counts of
Stacked MNIST in VEEGAN and PacGAN, and the "MNIST FID" of several GAN comparisons). This network plays
that role: 128-d global-average-pooled convolutional features (the analogue of Inception's pool3) for
FID/KID/precision-recall, and class logits for the Inception Score.

It is registered in torch-fidelity's feature-extractor registry, so torch-fidelity's own
``calculate_metrics`` can use it by name, and ganbench's metrics read the same features.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from tqdm import tqdm

INPUT_SIZE = 32  # every input is brought to 32x32 grayscale before the network
FEATURES = ("pool", "logits")


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DigitNet(nn.Module):
    """conv 32-32 / pool / conv 64-64 / pool / conv 128 -> global average pool (128) -> linear (10)."""

    def __init__(self, classes: int = 10, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            *_block(1, w), *_block(w, w), nn.MaxPool2d(2),
            *_block(w, 2 * w), *_block(2 * w, 2 * w), nn.MaxPool2d(2),
            *_block(2 * w, 4 * w),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(4 * w, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool = self.body(x).mean(dim=(2, 3))
        return pool, self.head(self.dropout(pool))


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW (1 or 3 channels, any size) -> float 1x32x32 in [-1, 1]; float images in [0, 255] are read the
    same way (perceptual path length differentiates images that rounding to uint8 would erase).

    RGB is reduced to ITU-R 601 luma; other sizes are resized bilinearly (antialiased when shrinking).
    """
    if not (images.dtype == torch.uint8 or images.dtype.is_floating_point) or images.dim() != 4 \
            or images.shape[1] not in (1, 3):
        raise ValueError(f"mnist_cnn expects uint8 (or float in [0, 255]) NCHW images with 1 or 3 channels, got "
                         f"{images.dtype} {tuple(images.shape)}")
    x = images.float()
    if x.shape[1] == 3:
        x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > INPUT_SIZE)
    return x / 127.5 - 1.0


class MnistCNNFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity feature extractor around ``DigitNet``; features "pool" (128-d) and "logits" (10)."""

    def __init__(self, name: str, features_list, feature_extractor_weights_path: str | None = None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError("mnist_cnn needs feature_extractor_weights_path (ganbench passes the zoo file)")
        from safetensors.torch import load_file

        self.net = DigitNet()
        self.net.load_state_dict(load_file(str(feature_extractor_weights_path)), strict=True)
        self.net.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pool, logits = self.net(preprocess(x))
        found = {"pool": pool, "logits": logits}
        return tuple(found[name] for name in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"isc": "logits", "fid": "pool", "kid": "pool", "prc": "pool"}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)


@dataclass
class ClassifierTrainConfig:
    epochs: int = 12  # passes over the training split
    batch_size: int = 128  # images per step
    lr: float = 2e-3  # Adam learning rate, cosine-decayed to 0
    max_shift: float = 0.1  # random translation, as a fraction of the image side (augmentation)
    max_rotate_deg: float = 10.0  # random rotation (augmentation)
    seed: int = 0  # seeds initialisation, shuffling and augmentation


def _augment(x: torch.Tensor, cfg: ClassifierTrainConfig, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    angle = (torch.rand(n, generator=g) * 2 - 1) * cfg.max_rotate_deg * torch.pi / 180
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * cfg.max_shift * 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1  # pad with background


def train_classifier(images: torch.Tensor, labels: torch.Tensor, cfg: ClassifierTrainConfig = ClassifierTrainConfig(),
                     progress: bool = True) -> DigitNet:
    """Train ``DigitNet`` on uint8 NCHW digit images with integer labels."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    net = DigitNet(classes=int(labels.max()) + 1)
    x_all, y_all = preprocess(images), labels.long()
    steps_per_epoch = (len(x_all) + cfg.batch_size - 1) // cfg.batch_size
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    net.train()
    with tqdm(total=cfg.epochs * steps_per_epoch, desc="train mnist_cnn", unit="step", file=sys.stderr,
              disable=not progress) as bar:
        for _ in range(cfg.epochs):
            order = torch.randperm(len(x_all), generator=g)
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                _, logits = net(_augment(x_all[idx], cfg, g))
                loss = F.cross_entropy(logits, y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    return net.eval()


@torch.no_grad()
def accuracy(net: DigitNet, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``net`` on uint8 images."""
    net.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        _, logits = net(preprocess(images[i:i + batch_size]))
        correct += (logits.argmax(1) == labels[i:i + batch_size]).sum().item()
    return correct / len(images)
