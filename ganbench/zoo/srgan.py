"""SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
CVPR 2017, arXiv:1609.04802): the SRResNet generator and the SRGAN discriminator (Fig. 4 of the paper).

The layers and their bias choices follow Lornatang/SRGAN-PyTorch (``model.py`` at 8842030, ``SRResNet`` and
``DiscriminatorForVGG``), whose x4 networks have 1,547,350 (G, RGB, 16 blocks of 64 channels) and 23,563,649 (D,
96x96 RGB input) parameters; the ``paper`` preset has exactly these counts (tests/test_srgan.py):

- G: conv 9x9 (k9n64s1) + PReLU; B residual blocks (conv 3x3, BN, PReLU, conv 3x3, BN, identity skip; convolutions
  before a BN carry no bias); conv 3x3 + BN; the global skip (sum with the first layer's output); log2(scale)
  upsampling blocks of conv 3x3 to 4x the channels, PixelShuffle(2) (Shi et al. 2016's sub-pixel convolution) and
  PReLU; conv 9x9 to the image channels. Every PReLU has one learned slope, as ``nn.PReLU()``.
- D: eight 3x3 convolutions, 64-64-128-128-256-256-512-512 channels, strides 1-2-1-2-1-2-1-2, LeakyReLU(0.2), BN
  after all but the first; then Dense(1024), LeakyReLU(0.2), Dense(1). Its input side must be a multiple of 16.
  It returns the logit; the paper's sigmoid lives in the loss (``binary_cross_entropy_with_logits``).

What differs from the reference: images are in [-1, 1] in and out (ganbench's convention; the paper feeds LR in
[0, 1] and the reference clamps G's output to [0, 1]); G's output is left unclamped during training (sampling
clamps when it rounds to uint8), so the MSE gradient is never cut off; width, depth, D width and the dense width
are configurable for the small presets. The training recipe (content loss + 1e-3 adversarial loss, optional
VGG54 content loss) is ``ganbench.train.srgan``.

Training (``srgan_step``, run by ``ganbench.train.loop``; Ledig et al. 2017, Sec. 2.2 and 3.2). Each step takes the HR batch of the training loop (``ctx.real``, [-1, 1]), makes its LR inputs with
``ganbench.data.superres.downscale`` (bicubic x4, rounded to 8 bits: the degradation the test LR images get), and:

1. while ``ctx.step < pretrain_steps``: G alone minimises the content loss (the paper initialises SRGAN with an
   SRResNet trained on MSE, "to avoid undesired local optima"); D is not updated;
2. afterwards: D minimises binary cross-entropy, HR -> 1 and G(LR) -> 0 (the paper's Eq. 2); then G minimises
   ``content + adversarial_weight * -log D(G(LR))`` (Eq. 3 and 6, weight 10^-3).

Content loss (``SRGANConfig.content_loss``):

- ``"mse"``: pixel-wise MSE on images in [-1, 1] (SRGAN-MSE; the paper computes it on that range too).
- ``"vgg54"``: MSE between the VGG19 feature maps phi_{5,4} (after the ReLU of the 4th convolution before the 5th
  max-pooling: torchvision's ``vgg19().features[:36]``) of G(LR) and HR, both in [0, 1] and ImageNet-normalised,
  gray images repeated to RGB, feature maps multiplied by ``vgg_rescale`` (1 / 12.75, the paper's rescaling) first.
  The weights are torchvision's ImageNet VGG19 (``vgg19-dcbb9e9d.pth``), read only from a local file:
  ``$GANBENCH_VGG19_WEIGHTS``, ``$GANBENCH_CACHE/weights/vgg19-dcbb9e9d.pth`` or the torch hub cache
  (``torch.hub.get_dir()/checkpoints``), loaded with ``weights_only=True``; without one the first step raises
  ``FileNotFoundError`` naming the file, its URL and where to put it. Nothing is downloaded.

The step draws no random numbers (the LR image is a function of the HR image), so a resumed run repeats an
uninterrupted one. Adam(1e-4, betas (0.9, 0.999)) for both networks, as in the paper.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.data.superres import downscale
from ganbench.weights import WeightsFile, load_state_dict
from ganbench.zoo.base import ModelEntry, from_uint8, register_model, to_uint8
from ganbench.zoo.objectives import nonsaturating, nonsaturating_g

CONTENT_LOSSES = ("mse", "vgg54")


@dataclass
class SRGANConfig:
    resolution: int = 32  # HR side (D's input); the LR input side is resolution // scale
    channels: int = 1  # image channels (3 for photos)
    scale: int = 4  # upscaling factor: a power of 2, one PixelShuffle(2) stage per factor 2
    blocks: int = 16  # residual blocks of G (paper: 16)
    width: int = 64  # G's feature channels (paper: 64)
    ndf: int = 64  # D's first-layer channels, doubled every second layer (paper: 64)
    dense: int = 1024  # D's dense layer width (paper: 1024)
    content_loss: str = "mse"  # "mse" (SRGAN-MSE) or "vgg54" (SRGAN-VGG54: needs local VGG19 weights)
    vgg_rescale: float = 1 / 12.75  # VGG feature maps are multiplied by this before the MSE (paper, Sec. 3.2)
    adversarial_weight: float = 1e-3  # weight of the generator's adversarial loss (paper: 10^-3)
    pretrain_steps: int = 0  # content-loss-only steps first: the SRResNet initialisation of the paper

    def __post_init__(self) -> None:
        if self.scale < 2 or self.scale & (self.scale - 1):
            raise ValueError(f"SRGAN scale must be a power of 2 (2, 4, 8, ...), got {self.scale}")
        if self.resolution % 16 or self.resolution % self.scale:
            raise ValueError(f"SRGAN resolution (HR side) must be a multiple of 16 (D halves it 4 times) and of the "
                             f"scale {self.scale}, got {self.resolution}")
        if self.content_loss not in CONTENT_LOSSES:
            raise ValueError(f"SRGAN content_loss must be one of {', '.join(CONTENT_LOSSES)}, got "
                             f"{self.content_loss!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"SRGAN channels must be 1 or 3, got {self.channels}")
        if min(self.blocks, self.width, self.ndf, self.dense) < 1 or self.pretrain_steps < 0:
            raise ValueError("SRGAN blocks, width, ndf and dense must be positive and pretrain_steps >= 0")

    @property
    def lr_resolution(self) -> int:
        return self.resolution // self.scale


class ResidualBlock(nn.Module):
    """conv 3x3, BN, PReLU, conv 3x3, BN, plus the input."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def upsample_block(width: int) -> nn.Sequential:
    """x2: conv 3x3 to 4 * width channels, PixelShuffle(2) (channel c * 4 + 2 i + j -> pixel (2y + i, 2x + j)),
    PReLU."""
    return nn.Sequential(nn.Conv2d(width, width * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU())


class SRResNet(nn.Module):
    """LR image (N, C, h, w) in [-1, 1] -> SR image (N, C, scale h, scale w), about [-1, 1] (unclamped)."""

    def __init__(self, cfg: SRGANConfig):
        super().__init__()
        self.scale = cfg.scale
        self.head = nn.Sequential(nn.Conv2d(cfg.channels, cfg.width, 9, 1, 4), nn.PReLU())
        self.trunk = nn.Sequential(*(ResidualBlock(cfg.width) for _ in range(cfg.blocks)))
        self.fuse = nn.Sequential(nn.Conv2d(cfg.width, cfg.width, 3, 1, 1, bias=False), nn.BatchNorm2d(cfg.width))
        self.upsample = nn.Sequential(*(upsample_block(cfg.width) for _ in range(int(math.log2(cfg.scale)))))
        self.tail = nn.Conv2d(cfg.width, cfg.channels, 9, 1, 4)
        for m in self.modules():  # the reference's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.dim() != 4 or lr.shape[1] != self.head[0].in_channels:
            raise ValueError(f"SRResNet takes (N, {self.head[0].in_channels}, h, w) LR images, got {tuple(lr.shape)}")
        feat = self.head(lr)
        return self.tail(self.upsample(feat + self.fuse(self.trunk(feat))))


class SRGANDiscriminator(nn.Module):
    """HR image (N, C, R, R) in [-1, 1], R a multiple of 16 -> one logit per image (N,)."""

    def __init__(self, cfg: SRGANConfig):
        super().__init__()
        widths = [cfg.ndf, cfg.ndf, 2 * cfg.ndf, 2 * cfg.ndf, 4 * cfg.ndf, 4 * cfg.ndf, 8 * cfg.ndf, 8 * cfg.ndf]
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, widths[0], 3, 1, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, 8):
            layers += [nn.Conv2d(widths[i - 1], widths[i], 3, 1 + i % 2, 1, bias=False), nn.BatchNorm2d(widths[i]),
                       nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.side = cfg.resolution // 16
        self.classifier = nn.Sequential(nn.Linear(widths[-1] * self.side ** 2, cfg.dense), nn.LeakyReLU(0.2, True),
                                        nn.Linear(cfg.dense, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] != 16 * self.side or x.shape[-2] != 16 * self.side:
            raise ValueError(f"the SRGAN discriminator takes {16 * self.side}x{16 * self.side} images, got "
                             f"{tuple(x.shape)}")
        return self.classifier(self.features(x).flatten(1)).flatten()


def random_lr_inputs(cfg: SRGANConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
    """Uniform random LR images in [-1, 1] of the config's LR shape: inputs for the throughput bench (a trained SR
    model is scored on real LR images through ``upscale``, not through ``Generator.sample``)."""
    lr = torch.rand(batch, cfg.channels, cfg.lr_resolution, cfg.lr_resolution, generator=generator)
    return (lr * 2 - 1,)


@torch.no_grad()
def upscale(net: nn.Module, lr: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Super-resolve uint8 NCHW LR images with a generator network (eval mode), returning uint8 NCHW.

    Args:
        net: An ``SRResNet`` (e.g. ``load_generator(path).net``).
        lr: uint8 (N, C, h, w) LR images, e.g. ``ganbench.data.superres.downscale(split.data)``.
        batch_size: Images per forward pass.
    """
    if not torch.is_tensor(lr) or lr.dtype != torch.uint8 or lr.dim() != 4:
        got = f"{lr.dtype} {tuple(lr.shape)}" if torch.is_tensor(lr) else type(lr).__name__
        raise ValueError(f"upscale takes uint8 NCHW LR images, got {got}")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    try:
        outs = [to_uint8(net(from_uint8(lr[i:i + batch_size]).to(device))).cpu() for i in range(0, len(lr), batch_size)]
    finally:
        net.train(was_training)
    return torch.cat(outs)


SRGAN_PAPER = "Ledig et al. 2017, arXiv:1609.04802 (SRGAN; layers as Lornatang/SRGAN-PyTorch)"
SRGAN_PRESETS = {
    # the paper's x4 networks on its 96x96 RGB HR crops (Lornatang's srresnet_x4 + discriminator_for_vgg)
    "paper": {"resolution": 96, "channels": 3, "scale": 4, "blocks": 16, "width": 64, "ndf": 64, "dense": 1024},
    # what a suite trains on 2 CPU cores: x4 on sr_fashion / sr_digits (32 -> 8) with a short SRResNet warm-up
    "tiny": {"resolution": 32, "channels": 1, "scale": 4, "blocks": 4, "width": 32, "ndf": 16, "dense": 128,
             "pretrain_steps": 300},
}


VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"  # torchvision VGG19_Weights.IMAGENET1K_V1
VGG19_WEIGHTS = WeightsFile(label="torchvision ImageNet VGG19 weights (SRGAN VGG54 content loss)",
                            filename=Path(VGG19_URL).name, url=VGG19_URL, envs=("GANBENCH_VGG19_WEIGHTS",),
                            hash_prefix="dcbb9e9d")
VGG54_LAYERS = 36  # torchvision vgg19().features[:36] ends with the ReLU after conv5_4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG54Loss(nn.Module):
    """MSE between rescaled VGG19 phi_{5,4} feature maps of two image batches in [-1, 1].

    Args:
        weights_path: torchvision's ``vgg19-dcbb9e9d.pth`` (or any file whose ``features.*`` tensors are VGG19's);
            None resolves it locally (see the module docstring) and never downloads.
        rescale: Factor applied to the feature maps before the MSE.

    Raises:
        FileNotFoundError: The weights file is missing.
    """

    def __init__(self, weights_path: str | Path | None = None, rescale: float = 1 / 12.75):
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        path = VGG19_WEIGHTS.resolve(download=False) if weights_path is None else Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(VGG19_WEIGHTS.missing_message(f"{str(path)!r} is not a file"))
        features = {k[len("features."):]: v for k, v in load_state_dict(path).items() if k.startswith("features.")}
        vgg = make_layers(cfgs["E"])  # torchvision's vgg19().features
        vgg.load_state_dict(features, strict=True)
        self.features = vgg[:VGG54_LAYERS].eval().requires_grad_(False)
        self.rescale = rescale
        self.weights_path = path
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """Rescaled phi_{5,4} of images in [-1, 1] (1 or 3 channels)."""
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return self.features(((x + 1) / 2 - self.mean) / self.std) * self.rescale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.phi(hr)
        return F.mse_loss(self.phi(sr), target)


@functools.cache
def _vgg54(rescale: float) -> VGG54Loss:
    return VGG54Loss(rescale=rescale)


def lr_batch(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """LR inputs in [-1, 1] of an HR batch in [-1, 1]: ``downscale`` of its uint8 pixels."""
    return from_uint8(downscale(to_uint8(hr.detach()), scale))


def content_loss(cfg: SRGANConfig, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """The configured content loss of SR images against HR images (both in [-1, 1])."""
    if cfg.content_loss == "mse":
        return F.mse_loss(sr, hr)
    vgg = _vgg54(cfg.vgg_rescale).to(sr.device)
    return vgg(sr, hr)


def srgan_step(ctx) -> dict[str, float]:
    """One SRGAN step on ``ctx`` (a ``ganbench.train.loop.StepContext``); returns the losses to log."""
    cfg: SRGANConfig = ctx.model_config
    G, D, opt_g, opt_d = ctx.G, ctx.D, ctx.opt_g, ctx.opt_d
    hr = ctx.real
    if hr.dim() != 4 or tuple(hr.shape[1:]) != (cfg.channels, cfg.resolution, cfg.resolution):
        raise ValueError(f"SRGAN config expects HR batches of {cfg.channels}x{cfg.resolution}x{cfg.resolution}, the "
                         f"dataset gives {tuple(hr.shape[1:])}: set the model config's resolution/channels to the "
                         "dataset's")
    lr = lr_batch(hr, cfg.scale)
    sr = G(lr)
    adversarial = ctx.step >= cfg.pretrain_steps
    row: dict[str, float] = {}
    if adversarial:
        d_real, d_fake = D(hr), D(sr.detach())
        loss_d = nonsaturating(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        row.update(loss_d=loss_d.item(), d_real=d_real.mean().item(), d_fake=d_fake.mean().item())

    content = content_loss(cfg, sr, hr)
    loss_g = content
    if adversarial:
        adv = nonsaturating_g(D(sr))
        loss_g = content + cfg.adversarial_weight * adv
        row["adversarial"] = adv.item()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_g": loss_g.item(), "content": content.item(), **row}


__all__ = ["VGG19_WEIGHTS", "VGG54Loss", "content_loss", "lr_batch", "srgan_step"]




SRGAN = register_model(ModelEntry(
    "srgan", "srgan", "super_resolution", "images", SRGANConfig, SRResNet, SRGANDiscriminator, "nonsaturating",
    1e-4, 1e-4, (0.9, 0.999), SRGAN_PAPER, presets=SRGAN_PRESETS, generator_inputs=random_lr_inputs,
    train_step=srgan_step))

__all__ = ["SRGAN", "SRGANConfig", "SRGANDiscriminator", "SRGAN_PRESETS", "SRResNet", "random_lr_inputs", "upscale",
           "upsample_block"]
