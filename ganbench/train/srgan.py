"""SRGAN training (Ledig et al. 2017, arXiv:1609.04802, Sec. 2.2 and 3.2): the step ``ModelEntry.train_step`` runs.

Each step takes the HR batch of the training loop (``ctx.real``, [-1, 1]), makes its LR inputs with
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
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.data.superres import downscale
from ganbench.features.foundation import WeightsFile, load_state_dict
from ganbench.train.objectives import nonsaturating, nonsaturating_g
from ganbench.zoo import from_uint8, to_uint8
from ganbench.zoo.srgan import SRGANConfig

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
