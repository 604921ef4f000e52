"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", arXiv:1912.04958).

Follows NVlabs/stylegan2-ada-pytorch ``training/networks.py`` (Karras et al. 2020b, arXiv:2006.06676), written here
in plain PyTorch:

- mapping network: 2nd-moment normalised ``z`` through ``mapping_layers`` fully connected leaky-ReLU layers with a
  0.01 learning-rate multiplier, a running mean of ``w`` (``w_avg``, for truncation) and ``w`` broadcast to every
  layer (``num_ws``);
- synthesis network ("skip" architecture): a learned 4x4 constant, per block an upsampling 3x3 modulated
  convolution and a 3x3 modulated convolution (weights modulated by a per-layer affine style of ``w`` and
  demodulated to unit expected output variance), per-layer noise with a learned strength, and a toRGB layer per
  resolution whose outputs are upsampled and summed;
- discriminator: "orig" (plain) or "resnet" (residual, the StyleGAN2 paper's) blocks with 3x3 convolutions that
  downsample through the [1, 3, 3, 1] low-pass filter, minibatch standard deviation, and a 4x4 epilogue;
- every weight is stored as N(0, 1) and scaled at run time by 1/sqrt(fan_in) (equalised learning rate);
  activations are leaky ReLU(0.2) times sqrt(2), optionally clamped (``conv_clamp``).

Parameter and buffer names equal the reference's, so a reference state dict loads into these modules unmapped,
less its ``resample_filter`` buffers (constants here, outside the state dict) and plus ``pl_mean`` (the path-length
mean, which the reference keeps in its loss object); with the same weights both compute the same images and logits
(checked to 2e-6 against the reference's CPU ops for both discriminator architectures, with and without clamping).

What differs: no mixed precision and no custom CUDA kernels (the reference's own fallback ops compute the same
functions); the modulated convolution always runs unfused (scale the activations, convolve, demodulate), which is
what the reference does in training and equals its fused grouped convolution; unconditional only (``c_dim`` = 0).
The generator's inputs are ``z`` alone; in training mode its noise is random (drawn from the ``generator`` passed
to ``forward``), in eval mode it uses the learned constant noise buffers (``noise_const``), as the reference's
``generate.py`` does by default, so ``sample(n, seed)`` depends on the seed only. The training recipe (losses,
lazy R1, path-length regularisation, style mixing) is in ``ganbench.train.stylegan2``; the generator EMA is
ganbench's ``--ema`` (``ganbench.train.loop``).

Presets: "paper" is the reference's ``--cfg=cifar`` (``train.py``): 32x32x3, z = w = 512, 2 mapping layers,
``channel_base`` = int(1 * 32768) with ``channel_max`` 512 (512 channels at every resolution up to 32; the
formula ``min(channel_base // res, channel_max)`` is the reference's), ``num_fp16_res`` 4 (not used here),
``conv_clamp`` 256, minibatch-std group 32, R1 gamma 0.01, and the cifar config's own switches: a plain ("orig")
discriminator, no path-length regularisation, no style mixing. "tiny" is a 32x32x1 model with small widths and the
StyleGAN2 paper's recipe (residual D, style mixing 0.9, path-length weight 2, R1 every 16 D steps).

Training (``stylegan2_step``, run by ``ganbench.train.loop``). Follows NVlabs/stylegan2-ada-pytorch ``training/loss.py`` (``StyleGAN2Loss``) and the phase loop of
``training/training_loop.py``. One ganbench step is one reference iteration over one real batch, in its order:

1. Gmain: the non-saturating logistic loss softplus(-D(G(z))) (z with style mixing);
2. Greg, every ``pl_interval``-th step (step % pl_interval == 0) when ``pl_weight`` > 0: path-length
   regularisation on ``batch // pl_batch_shrink`` samples, ``pl_weight * (|J_w^T y| - a)^2`` with y ~ N(0, I) / R
   and ``a`` the running mean of path lengths (decay ``pl_decay``), kept in the generator's ``pl_mean`` buffer;
3. Dmain: softplus(D(G(z))) + softplus(-D(x));
4. Dreg, every ``r1_interval``-th step when ``r1_gamma`` > 0: R1, ``gamma / 2 * |grad_x D(x)|^2`` on the real
   batch (Mescheder et al. 2018).

Each phase is its own Adam step with its own latents; a lazy regulariser is multiplied by its interval, and Adam's
learning rate and betas are scaled by ``interval / (interval + 1)`` (``lr * c``, ``beta ** c``), as the reference
does. Style mixing (probability ``style_mixing_prob``): one cutoff per batch, uniform in [1, num_ws), the styles
from the cutoff on taken from a second latent. Every random number comes from the step's generator, so a resumed
run equals an uninterrupted one.

What differs: the EMA of G is ganbench's ``--ema DECAY`` (a constant decay; the reference's is a half-life of
``ema_kimg`` thousand images with a ramp-up: for the cifar config 0.5 ** (64 / 500000) ~= 0.99991 after the
ramp-up); no adaptive augmentation (ADA), no gradient NaN scrubbing, one process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.zoo.base import ModelEntry, register_model

LRELU_GAIN = math.sqrt(2.0)
LR = 0.0025  # Adam learning rate of G and D (reference cifar, paper256, paper512 configs)
BETAS = (0.0, 0.99)  # Adam betas of G and D (reference ``train.py``)


@dataclass
class StyleGAN2Config:
    resolution: int = 32  # output side, a power of two >= 4
    channels: int = 3  # image channels
    z_dim: int = 512  # latent dimension
    w_dim: int = 512  # intermediate latent (style) dimension
    mapping_layers: int = 8  # fully connected layers of the mapping network
    mapping_lr_multiplier: float = 0.01  # learning-rate multiplier of the mapping layers
    w_avg_beta: float = 0.995  # decay of the running mean of w
    channel_base: int = 32768  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512  # most channels of any layer
    conv_clamp: float | None = None  # clamp conv outputs to +-this (reference: 256 with mixed precision)
    d_architecture: str = "resnet"  # discriminator blocks: "resnet" (StyleGAN2 paper) or "orig"
    mbstd_group: int = 4  # minibatch standard deviation group size
    mbstd_channels: int = 1  # features of the minibatch standard deviation layer (0 disables it)
    r1_gamma: float = 10.0  # R1 regularisation weight
    r1_interval: int = 16  # lazy regularisation: R1 every this many D steps
    pl_weight: float = 2.0  # path-length regularisation weight (0 disables it)
    pl_interval: int = 4  # lazy regularisation: path length every this many G steps
    pl_batch_shrink: int = 2  # path length is computed on batch // this samples
    pl_decay: float = 0.01  # decay of the running mean of path lengths
    style_mixing_prob: float = 0.9  # probability of mixing two latents' styles in a training batch

    def __post_init__(self) -> None:
        r = self.resolution
        if not (isinstance(r, int) and r >= 4 and r & (r - 1) == 0):
            raise ValueError(f"StyleGAN2 resolution must be a power of two >= 4, got {r!r}")
        if self.channels < 1 or self.z_dim < 1 or self.w_dim < 1 or self.mapping_layers < 1:
            raise ValueError(f"StyleGAN2 channels, z_dim, w_dim and mapping_layers must be >= 1, got "
                             f"{self.channels}, {self.z_dim}, {self.w_dim}, {self.mapping_layers}")
        if min(self.channel_base // res for res in self.resolutions()) < 1 or self.channel_max < 1:
            raise ValueError(f"StyleGAN2 channel_base {self.channel_base} gives no channels at {r}x{r}; "
                             f"it must be >= the resolution")
        if self.d_architecture not in ("resnet", "orig"):
            raise ValueError(f"StyleGAN2 d_architecture must be 'resnet' or 'orig', got {self.d_architecture!r}")
        if self.mbstd_group < 1 or self.mbstd_channels < 0:
            raise ValueError(f"StyleGAN2 mbstd_group must be >= 1 and mbstd_channels >= 0, got "
                             f"{self.mbstd_group}, {self.mbstd_channels}")
        if self.r1_interval < 1 or self.pl_interval < 1 or self.pl_batch_shrink < 1:
            raise ValueError("StyleGAN2 r1_interval, pl_interval and pl_batch_shrink must be >= 1")
        if self.r1_gamma < 0 or self.pl_weight < 0 or not 0 <= self.style_mixing_prob <= 1:
            raise ValueError(f"StyleGAN2 r1_gamma and pl_weight must be >= 0 and style_mixing_prob in [0, 1], got "
                             f"{self.r1_gamma}, {self.pl_weight}, {self.style_mixing_prob}")

    def resolutions(self) -> list[int]:
        """4, 8, ..., resolution."""
        return [2 ** i for i in range(2, int(math.log2(self.resolution)) + 1)]

    def width(self, res: int) -> int:
        """Channels at resolution ``res`` (the reference's ``channels_dict``)."""
        return min(self.channel_base // res, self.channel_max)


# ---------------------------------------------------------------------------------------------------------------
# Resampling with the [1, 3, 3, 1] low-pass filter (the reference's upfirdn2d with its padding conventions)

def lowpass_filter() -> torch.Tensor:
    """The separable [1, 3, 3, 1] binomial filter as a normalised 4x4 kernel (sum 1)."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


def fir_filter(x: torch.Tensor, f: torch.Tensor, pad: tuple[int, int, int, int], gain: float = 1.0) -> torch.Tensor:
    """Pad (left, right, top, bottom) then filter every channel with the 4x4 kernel ``f`` (symmetric: no flip)."""
    c = x.shape[1]
    # a depthwise convolution: on CPUs several times faster than folding channels into the batch
    return F.conv2d(F.pad(x, list(pad)), (f * gain).to(x.dtype)[None, None].expand(c, 1, -1, -1), groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero insertion then the low-pass filter with gain 4 (upfirdn2d.upsample2d)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h, 2, w, 2)
    up[:, :, :, 0, :, 0] = x
    return fir_filter(up.reshape(n, c, 2 * h, 2 * w), f, (2, 1, 2, 1), gain=4.0)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x downsampling: the low-pass filter then every other pixel (upfirdn2d with down=2)."""
    return fir_filter(x, f, (1, 1, 1, 1))[:, :, ::2, ::2]


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1) -> torch.Tensor:
    """Convolution with a 'same' output size, optionally upsampling or downsampling by 2 (conv2d_resample.py).

    Up: a stride-2 transposed convolution then the low-pass filter; down: the filter then a stride-2 convolution.
    """
    k = w.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=k // 2)
    if up == 2 and down == 1:
        if k == 1:
            return upsample2d(F.conv2d(x, w), f)
        if k != 3:
            raise ValueError(f"upsampling convolutions are 1x1 or 3x3, got {k}x{k}")
        # (H - 1) * 2 + 3 = 2H + 1 pixels, padded by 1 each side, and the 4-tap filter takes 3: 2H
        x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        return fir_filter(x, f, (1, 1, 1, 1), gain=4.0)
    if down == 2 and up == 1:
        if k == 1:
            return F.conv2d(downsample2d(x, f), w)
        p = (k - 1) // 2 + 1
        return F.conv2d(fir_filter(x, f, (p, p, p, p)), w, stride=2)
    raise ValueError(f"conv2d_resample supports up=2 or down=2 (not both), got up={up}, down={down}")


def bias_act(x: torch.Tensor, b: torch.Tensor | None, lrelu: bool, gain: float, clamp: float | None) -> torch.Tensor:
    """Add the bias, apply leaky ReLU(0.2) when ``lrelu``, scale by ``gain``, clamp to +-``clamp`` (bias_act.py)."""
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.dim() - 2))
    if lrelu:
        x = F.leaky_relu(x, 0.2)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


# ---------------------------------------------------------------------------------------------------------------
# Layers

class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer: weight N(0, 1) / lr_multiplier, scaled by lr_multiplier / sqrt(in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, lrelu: bool = False,
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.bias_gain if self.bias is not None else None
        x = x.matmul((self.weight * self.weight_gain).t())
        return bias_act(x, b, self.lrelu, LRELU_GAIN if self.lrelu else 1.0, None)


class Conv2dLayer(nn.Module):
    """Equalised-learning-rate convolution with optional 2x down/upsampling, bias, leaky ReLU and clamping."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, lrelu: bool = True,
                 up: int = 1, down: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.lrelu, self.up, self.down, self.conv_clamp = lrelu, up, down, conv_clamp
        self.register_buffer("resample_filter", lowpass_filter(), persistent=False)
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = LRELU_GAIN if lrelu else 1.0
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        x = conv2d_resample(x, self.weight * self.weight_gain, self.resample_filter, self.up, self.down)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, self.lrelu, self.act_gain * gain, clamp)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, f: torch.Tensor, up: int = 1,
                     demodulate: bool = True, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Modulated convolution (StyleGAN2 paper eqs. 1-3), unfused.

    Each input channel i of sample n is scaled by ``styles[n, i]``; with ``demodulate`` each output channel j is then
    divided by sqrt(sum_{i,k} (w[j, i, k] * styles[n, i])^2 + 1e-8), so for i.i.d. unit-variance inputs the
    output has unit expected variance. ``noise`` is added after demodulation.
    """
    n = x.shape[0]
    x = x * styles.reshape(n, -1, 1, 1)
    x = conv2d_resample(x, weight, f, up=up)
    if demodulate:
        dcoefs = ((weight[None] * styles[:, None, :, None, None]).square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * dcoefs.reshape(n, -1, 1, 1)
    if noise is not None:
        x = x + noise
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling), noise with a learned strength, bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.register_buffer("resample_filter", lowpass_filter(), persistent=False)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str, generator: torch.Generator | None = None,
                gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            # drawn where the seeded generator lives (the CPU in training), then moved to the activations
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, generator=generator,
                                device=generator.device if generator is not None else x.device)
            noise = noise.to(x.device, x.dtype) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, self.resample_filter, up=self.up, noise=noise)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, True, LRELU_GAIN * gain, clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", lowpass_filter(), persistent=False)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, self.resample_filter, demodulate=False)
        return bias_act(x, self.bias, False, 1.0, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (x, img, ws) -> (x, img) at twice the input size (4x4: from const)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 conv_clamp: float | None):
        super().__init__()
        self.in_channels = in_channels
        self.register_buffer("resample_filter", lowpass_filter(), persistent=False)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_mode, generator)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, generator)
            x = self.conv1(x, ws[:, 1], noise_mode, generator)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> ws (N, num_ws, w_dim); tracks the mean of w in training mode."""

    def __init__(self, z_dim: int, w_dim: int, num_ws: int, num_layers: int, lr_multiplier: float, w_avg_beta: float):
        super().__init__()
        self.z_dim, self.num_ws, self.num_layers, self.w_avg_beta = z_dim, num_ws, num_layers, w_avg_beta
        features = [z_dim] + [w_dim] * num_layers
        for idx in range(num_layers):
            setattr(self, f"fc{idx}", FullyConnectedLayer(features[idx], features[idx + 1], lrelu=True,
                                                          lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = True) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"StyleGAN2 latents must have shape (N, {self.z_dim}), got {tuple(z.shape)}")
        x = normalize_2nd_moment(z.to(self.fc0.weight.dtype))
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.training and update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, C, R, R)."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.w_dim = cfg.w_dim
        self.block_resolutions = cfg.resolutions()
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(cfg.width(res // 2) if res > 4 else 0, cfg.width(res), cfg.w_dim, res,
                                   cfg.channels, cfg.conv_clamp)
            self.num_ws += block.num_conv
            setattr(self, f"b{res}", block)
        self.num_ws += 1  # the last toRGB layer's style

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None
                ) -> torch.Tensor:
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}")
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            # a block's toRGB style is the next block's first conv style (the reference's ws.narrow)
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + 1], noise_mode, generator)
            w_idx += block.num_conv
        return img


class StyleGAN2Generator(nn.Module):
    """z (N, z_dim) -> image (N, C, R, R), roughly in [-1, 1] (not squashed, as in the reference).

    Noise: ``noise_mode`` None means random noise in training mode (drawn from ``generator``) and the constant
    noise buffers in eval mode, so sampling is deterministic.
    """

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.nz = cfg.z_dim
        self.synthesis = SynthesisNetwork(cfg)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, self.num_ws, cfg.mapping_layers,
                                      cfg.mapping_lr_multiplier, cfg.w_avg_beta)
        # running mean of path lengths (StyleGAN2 paper eq. 4's constant a), kept here so checkpoints carry it
        self.register_buffer("pl_mean", torch.zeros([]))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        ws = self.mapping(z, truncation_psi=truncation_psi)
        return self.synthesis(ws, noise_mode or ("random" if self.training else "const"), generator)


class MinibatchStdLayer(nn.Module):
    """Appends the mean over features of the per-group standard deviation (Karras et al. 2018, sec. 3)."""

    def __init__(self, group_size: int, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"minibatch standard deviation: batch size {n} is not a multiple of the group size "
                             f"{g}; choose a batch size divisible by {g} (config mbstd_group)")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # (n/g, F)
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions, the second downsampling; "resnet" adds a 1x1 downsampling skip (both halves x 1/sqrt 2)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int, architecture: str,
                 conv_clamp: float | None):
        super().__init__()
        self.in_channels, self.architecture = in_channels, architecture
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=2, conv_clamp=conv_clamp)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, lrelu=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return self.conv1(self.conv0(x))


class DiscriminatorEpilogue(nn.Module):
    """4x4: minibatch standard deviation, 3x3 conv, fully connected, one logit."""

    def __init__(self, in_channels: int, mbstd_group: int, mbstd_channels: int, conv_clamp: float | None):
        super().__init__()
        self.mbstd = MinibatchStdLayer(mbstd_group, mbstd_channels) if mbstd_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_channels, in_channels, 3, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * 16, in_channels, lrelu=True)
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.out(self.fc(self.conv(x).flatten(1)))


class StyleGAN2Discriminator(nn.Module):
    """image (N, C, R, R) -> one logit per image (N,)."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.resolution, self.channels = cfg.resolution, cfg.channels
        self.block_resolutions = cfg.resolutions()[::-1][:-1]  # R, R/2, ..., 8
        for res in self.block_resolutions:
            block = DiscriminatorBlock(cfg.width(res) if res < cfg.resolution else 0, cfg.width(res),
                                       cfg.width(res // 2), cfg.channels, cfg.d_architecture, cfg.conv_clamp)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(cfg.width(4), cfg.mbstd_group, cfg.mbstd_channels, cfg.conv_clamp)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.dim() != 4 or img.shape[1:] != (self.channels, self.resolution, self.resolution):
            raise ValueError(f"StyleGAN2 discriminator expects images (N, {self.channels}, {self.resolution}, "
                             f"{self.resolution}), got {tuple(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x).flatten()


def latent_inputs(cfg: StyleGAN2Config, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
    """One N(0, I) latent of ``z_dim`` per sample."""
    return (torch.randn(batch, cfg.z_dim, generator=generator),)


STYLEGAN2_PAPER = ("Karras et al. 2020, arXiv:1912.04958 (StyleGAN2); recipe of NVlabs/stylegan2-ada-pytorch, "
                   "Karras et al. 2020, arXiv:2006.06676")
STYLEGAN2_PRESETS = {
    # reference train.py --cfg=cifar: fmaps=1 -> channel_base 32768, map=2, mbstd=32, gamma=0.01, conv_clamp 256;
    # its cifar switches: D architecture 'orig', pl_weight 0, style_mixing_prob 0
    "paper": {"resolution": 32, "channels": 3, "z_dim": 512, "w_dim": 512, "mapping_layers": 2,
              "channel_base": 32768, "channel_max": 512, "conv_clamp": 256.0, "d_architecture": "orig",
              "mbstd_group": 32, "r1_gamma": 0.01, "pl_weight": 0.0, "style_mixing_prob": 0.0},
    # what the generation suite trains on 2 CPU cores: the StyleGAN2 paper's recipe at small widths
    "tiny": {"resolution": 32, "channels": 1, "z_dim": 64, "w_dim": 64, "mapping_layers": 2,
             "channel_base": 512, "channel_max": 64, "mbstd_group": 4, "r1_gamma": 0.1},
}


def r1_penalty(D: nn.Module, real: torch.Tensor, create_graph: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sample |grad_x D(x)|^2 (N,), D(x) (N,)) at the real images: Mescheder et al. 2018, eq. 9 without the
    gamma / 2 factor."""
    x = real.detach().requires_grad_(True)
    logits = D(x)
    (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=create_graph)
    return grads.square().sum(dim=list(range(1, grads.dim()))), logits


def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Per-sample path length |J_w^T y| of the StyleGAN2 paper's eq. 4, averaged over the ``num_ws`` styles as in
    the reference: sqrt(mean_l sum_d (d <img, noise> / d ws[n, l, d])^2). ``noise`` is y / sqrt(H W)."""
    (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def mixed_styles(G: StyleGAN2Generator, z: torch.Tensor, prob: float, generator: torch.Generator,
                 update_w_avg: bool = True) -> torch.Tensor:
    """ws of ``z``; with probability ``prob`` the styles from a random cutoff on come from a second latent."""
    ws = G.mapping(z, update_w_avg=update_w_avg)
    if prob <= 0:
        return ws
    cutoff = int(torch.randint(1, ws.shape[1], (), generator=generator))
    if float(torch.rand((), generator=generator)) >= prob:
        return ws
    ws2 = G.mapping(torch.randn(z.shape, generator=generator).to(z.device), update_w_avg=False)
    return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)


def _set_lazy_hyperparameters(opt: torch.optim.Optimizer, lr: float, interval: int) -> None:
    """Adam's lr and betas scaled for lazy regularisation (reference ``training_loop.py``, ``mb_ratio``)."""
    c = interval / (interval + 1)
    for group in opt.param_groups:
        group["lr"] = lr * c
        group["betas"] = (BETAS[0] ** c, BETAS[1] ** c)


def stylegan2_step(ctx) -> dict[str, float]:
    """One StyleGAN2 iteration (Gmain, Greg, Dmain, Dreg) on ``ctx.real``; returns the losses to log."""
    G, D, cfg = ctx.G, ctx.D, ctx.model_config
    if not isinstance(cfg, StyleGAN2Config):
        raise TypeError(f"stylegan2_step needs a StyleGAN2Config, got {type(cfg).__name__}")
    gen, real, step = ctx.generator, ctx.real, ctx.step
    batch, device = real.shape[0], real.device

    def randn(*shape: int) -> torch.Tensor:  # from the step's (CPU) generator, then onto the batch's device
        return torch.randn(shape, generator=gen).to(device)

    tc = ctx.train_config
    _set_lazy_hyperparameters(ctx.opt_g, tc.lr_g or LR, cfg.pl_interval)
    _set_lazy_hyperparameters(ctx.opt_d, tc.lr_d or LR, cfg.r1_interval)
    row: dict[str, float] = {}

    # Gmain
    D.requires_grad_(False)
    z = randn(batch, cfg.z_dim)
    fake = G.synthesis(mixed_styles(G, z, cfg.style_mixing_prob, gen), "random", gen)
    logits_fake = D(fake)
    loss_g = F.softplus(-logits_fake).mean()
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    row["loss_g"] = loss_g.item()

    # Greg: lazy path-length regularisation
    if cfg.pl_weight > 0 and step % cfg.pl_interval == 0:
        n = max(batch // cfg.pl_batch_shrink, 1)
        z = randn(batch, cfg.z_dim)[:n]
        ws = mixed_styles(G, z, cfg.style_mixing_prob, gen)
        img = G.synthesis(ws, "random", gen)
        noise = randn(*img.shape) / math.sqrt(img.shape[2] * img.shape[3])
        lengths = path_lengths(img, ws, noise)
        pl_mean = G.pl_mean.lerp(lengths.mean(), cfg.pl_decay)
        G.pl_mean.copy_(pl_mean.detach())
        loss_pl = (lengths - pl_mean).square().mean() * cfg.pl_weight
        ctx.opt_g.zero_grad(set_to_none=True)
        (loss_pl * cfg.pl_interval).backward()
        ctx.opt_g.step()
        row["loss_pl"] = loss_pl.item()
        row["pl_mean"] = float(G.pl_mean)
    D.requires_grad_(True)

    # Dmain
    G.requires_grad_(False)
    z = randn(batch, cfg.z_dim)
    with torch.no_grad():
        fake = G.synthesis(mixed_styles(G, z, cfg.style_mixing_prob, gen), "random", gen)
    logits_fake = D(fake)
    logits_real = D(real)
    loss_d = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
    ctx.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    ctx.opt_d.step()
    row.update(loss_d=loss_d.item(), d_real=logits_real.mean().item(), d_fake=logits_fake.mean().item())

    # Dreg: lazy R1
    if cfg.r1_gamma > 0 and step % cfg.r1_interval == 0:
        penalty, _ = r1_penalty(D, real)
        loss_r1 = (penalty * (cfg.r1_gamma / 2)).mean()
        ctx.opt_d.zero_grad(set_to_none=True)
        (loss_r1 * cfg.r1_interval).backward()
        ctx.opt_d.step()
        row["r1_penalty"] = penalty.mean().item()
    G.requires_grad_(True)
    return row




STYLEGAN2 = register_model(ModelEntry(
    "stylegan2", "stylegan2", "unconditional", "images", StyleGAN2Config, StyleGAN2Generator, StyleGAN2Discriminator,
    "nonsaturating", LR, LR, BETAS, STYLEGAN2_PAPER, presets=STYLEGAN2_PRESETS, generator_inputs=latent_inputs,
    train_step=stylegan2_step))
