"""Progressive growing of GANs (ProGAN; Karras et al. 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation", arXiv:1710.10196).

Follows tkarras/progressive_growing_of_gans ``networks.py`` (``G_paper``, ``D_paper``; TensorFlow), written here in
PyTorch:

- feature maps per stage ``nf(s) = min(int(fmap_base / 2 ** (s * fmap_decay)), fmap_max)``; the block of resolution
  2^r has ``nf(r - 1)`` channels;
- generator: pixel-normalised latent, a dense layer to 4x4 (gain sqrt(2)/4, one bias per channel) and a 3x3 conv;
  per further resolution a nearest 2x upsampling and two 3x3 convs; leaky ReLU(0.2) and pixel norm after every
  layer; a 1x1 toRGB (gain 1) per resolution;
- discriminator: a 1x1 fromRGB per resolution, per resolution two 3x3 convs and a 2x2 average pool, then at 4x4
  the minibatch standard deviation (group ``mbstd_group``), a 3x3 conv, a dense layer and a linear output;
- equalised learning rate: every weight is N(0, 1) and multiplied at run time by He's constant
  gain / sqrt(fan_in), biases start at zero;
- growth: 4x4 first; each further resolution is faded in, the new block's output lerped with the upsampled
  output of the previous resolution (G) and the new fromRGB path with the average-pooled one (D), weight ``alpha``.

The stage is a pure function of the training step (``progan_stage``), the reference's ``TrainingSchedule`` with
steps instead of thousands of images: ``stable_steps`` at a resolution, then ``fade_steps`` fading in the next,
until ``resolution`` is reached. The generator stores only how many steps it was trained (buffer
``schedule_step``; -1 for one never trained progressively, which runs the complete network) and samples at that
step's stage; its output is nearest-upsampled to ``resolution``, as the reference's is, so a run stopped before the
end of its schedule yields ``resolution``-sized images drawn at a lower resolution. The discriminator runs at the
resolution of its input unless a stage is given.

Up- and downsampling convolutions are fused as in the reference's default (``fused_scale=True``): a stride-2
(transposed) convolution with the 4x4 sum of the 3x3 kernel's shifted copies, which equals nearest upsampling then
the 3x3 conv, and the 3x3 conv then a 2x2 average (before bias and activation).

What differs: one minibatch size at every resolution (the reference's v2 presets use 128 up to 16x16 and 64 at 32x32);
unconditional only (no AC-GAN label head). The WGAN-GP training step is in ``ganbench.train.progan``; the
generator's moving average (the reference's ``G_smoothing`` 0.999) is ganbench's ``--ema 0.999``.

Presets: "paper" is the network the reference's ``config.py`` builds for its ``-cifar10`` dataset (32x32x3) with
the defaults of ``G_paper``/``D_paper`` (fmap_base 8192, fmap_decay 1, fmap_max 512, latent 512, minibatch-std
group 4), i.e. 512 channels at every resolution, which is also the CelebA-HQ network family truncated at 32x32;
its schedule is the reference's 600k images per stable phase and per fade at ganbench's 64 images per step (9375
steps each). "tiny" is 32x32x1 with small widths and short phases for 2 CPU cores.

Training (``progan_step``, run by ``ganbench.train.loop``). Follows tkarras/progressive_growing_of_gans ``train.py`` and ``loss.py`` (``D_wgangp_acgan``, ``G_wgan_acgan``):

- the stage (depth, fade-in alpha) is ``progan_stage(config, step)``, a pure function of the step, so a resumed
  run takes exactly the steps of an uninterrupted one; when a fade-in starts or ends, Adam's state is cleared
  (``reset_opt_for_new_lod``), which is also a function of the step;
- the real batch is brought to the stage's resolution by average pooling and, while a resolution fades in, lerped
  with its own 2x average-pooled, nearest-upsampled copy by 1 - alpha (``process_reals``, "FadeLOD");
- one D update, then one G update (``D_repeats`` 1), each with its own latents;
- D minimises D(G(z)) - D(x) + lambda (|grad D(x_hat)| - target)^2 / target^2 + epsilon D(x)^2 with x_hat a
  per-sample uniform mix of real and fake (WGAN-GP, Gulrajani et al. 2017, plus the paper's drift term);
  G minimises -D(G(z)).

What differs: networks run at the stage's resolution (the reference upsamples every image to the final size and
pools it back down inside D: the same numbers at more cost); one minibatch size for all stages; no mirror
augmentation; no loss scaling (fp32 only). The generator's moving average is ganbench's ``--ema``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.zoo.base import ModelEntry, register_model


@dataclass
class ProGANConfig:
    resolution: int = 32  # final output side, a power of two >= 4
    channels: int = 3  # image channels
    nz: int = 512  # latent dimension (reference: nf(0))
    fmap_base: int = 8192  # feature maps: nf(s) = min(int(fmap_base / 2 ** (s * fmap_decay)), fmap_max)
    fmap_decay: float = 1.0  # log2 feature-map reduction per doubling of the resolution
    fmap_max: int = 512  # most feature maps of any layer
    mbstd_group: int = 4  # minibatch standard deviation group size (0 or 1 disables the layer)
    stable_steps: int = 9375  # steps at each resolution before the next is faded in (reference: 600 kimg)
    fade_steps: int = 9375  # steps over which a new resolution fades in (reference: 600 kimg)
    start_resolution: int = 4  # resolution trained first
    wgan_lambda: float = 10.0  # gradient penalty weight
    wgan_epsilon: float = 0.001  # drift penalty weight on D(real)^2
    wgan_target: float = 1.0  # target gradient norm
    reset_optimizer: bool = True  # clear Adam's state when a fade-in starts or ends (reset_opt_for_new_lod)

    def __post_init__(self) -> None:
        for name in ("resolution", "start_resolution"):
            r = getattr(self, name)
            if not (isinstance(r, int) and r >= 4 and r & (r - 1) == 0):
                raise ValueError(f"ProGAN {name} must be a power of two >= 4, got {r!r}")
        if self.start_resolution > self.resolution:
            raise ValueError(f"ProGAN start_resolution {self.start_resolution} exceeds resolution {self.resolution}")
        if self.channels < 1 or self.nz < 1 or self.fmap_max < 1:
            raise ValueError(f"ProGAN channels, nz and fmap_max must be >= 1, got {self.channels}, {self.nz}, "
                             f"{self.fmap_max}")
        if min(self.nf(s) for s in range(self.log2_resolution)) < 1:
            raise ValueError(f"ProGAN fmap_base {self.fmap_base} leaves no feature maps at {self.resolution}x"
                             f"{self.resolution}")
        if self.stable_steps < 0 or self.fade_steps < 1:
            raise ValueError(f"ProGAN stable_steps must be >= 0 and fade_steps >= 1, got {self.stable_steps}, "
                             f"{self.fade_steps}")
        if self.mbstd_group < 0 or self.wgan_lambda < 0 or self.wgan_epsilon < 0 or self.wgan_target <= 0:
            raise ValueError("ProGAN mbstd_group, wgan_lambda and wgan_epsilon must be >= 0, wgan_target > 0")

    @property
    def log2_resolution(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def depth(self) -> int:
        """Number of resolutions above 4x4 (the final network's depth)."""
        return self.log2_resolution - 2

    def nf(self, stage: int) -> int:
        """Feature maps of stage ``stage`` (the reference's ``nf``)."""
        return min(int(self.fmap_base / (2.0 ** (stage * self.fmap_decay))), self.fmap_max)


def progan_stage(cfg: ProGANConfig, step: int) -> tuple[int, float]:
    """(depth, alpha) at training step ``step``: the image side is 4 * 2 ** depth, and ``alpha`` in (0, 1] is the
    weight of the newest block (1: not fading). The reference's ``TrainingSchedule`` with images replaced by steps:
    phase k (0-based) holds resolution ``start * 2^k`` for ``stable_steps`` then fades in ``start * 2^(k+1)`` over
    ``fade_steps``; after the last fade the full resolution stays.
    """
    if step < 0:
        raise ValueError(f"training step must be >= 0, got {step}")
    first = int(math.log2(cfg.start_resolution)) - 2
    phases = cfg.depth - first
    phase, t = divmod(step, cfg.stable_steps + cfg.fade_steps)
    if phase >= phases:
        return cfg.depth, 1.0
    if t < cfg.stable_steps:
        return first + phase, 1.0
    return first + phase + 1, (t - cfg.stable_steps) / cfg.fade_steps


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Each pixel's feature vector divided by its root mean square over channels (paper sec. 4.2)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def minibatch_stddev(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """Appends one feature map: the standard deviation over each group of ``group_size`` samples, averaged over
    features and pixels (paper sec. 3; the reference's ``minibatch_stddev_layer``)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"minibatch standard deviation: batch size {n} is not a multiple of the group size {g}; "
                         f"choose a batch size divisible by {g} (config mbstd_group)")
    y = x.reshape(g, -1, c, h, w)
    y = ((y - y.mean(dim=0)).square().mean(dim=0) + 1e-8).sqrt().mean(dim=[1, 2, 3])  # (n / g,)
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class EqualizedConv2d(nn.Module):
    """k x k convolution ('same' padding) whose N(0, 1) weight is scaled at run time by gain / sqrt(in * k * k)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x: torch.Tensor, up: bool = False, down: bool = False) -> torch.Tensor:
        """Args:
            up: Compute conv(nearest 2x upsampling of x) as one stride-2 transposed convolution with a 4x4 kernel,
                the sum of the 3x3 kernel's four shifted copies (the reference's ``upscale2d_conv2d``).
            down: Compute the 2x2 average of conv(x) as one stride-2 convolution with that 4x4 kernel / 4
                (``conv2d_downscale2d``). Both cost under half of the unfused operations.
        """
        w = self.weight * self.scale
        if up:
            x = F.conv_transpose2d(x, _shifted_sum(w.flip([2, 3]).transpose(0, 1)), stride=2, padding=1)
        elif down:
            x = F.conv2d(x, _shifted_sum(w) * 0.25, stride=2, padding=1)
        else:
            x = F.conv2d(x, w, padding=w.shape[-1] // 2)
        return x + self.bias.reshape(1, -1, 1, 1)


def _shifted_sum(w: torch.Tensor) -> torch.Tensor:
    """(.., 3, 3) kernel -> (.., 4, 4): the sum of its copies shifted by 0 or 1 pixel in each direction."""
    w = F.pad(w, [1, 1, 1, 1])
    return w[..., 1:, 1:] + w[..., :-1, 1:] + w[..., 1:, :-1] + w[..., :-1, :-1]


class EqualizedLinear(nn.Module):
    """Linear layer whose N(0, 1) weight is scaled at run time by gain / sqrt(in); ``bias`` may be per channel."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2), bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class GeneratorBlock(nn.Module):
    """4x4: dense + conv from the latent; above: nearest 2x upsampling + two convs. Pixel norm after each layer."""

    def __init__(self, cfg: ProGANConfig, log2_res: int):
        super().__init__()
        self.first = log2_res == 2
        c_out = cfg.nf(log2_res - 1)
        if self.first:
            # gain sqrt(2)/4 "to match the original Theano implementation"; bias per channel after the reshape
            self.dense = EqualizedLinear(cfg.nz, c_out * 16, gain=math.sqrt(2) / 4, bias=False)
            self.dense_bias = nn.Parameter(torch.zeros(c_out))
            self.conv = EqualizedConv2d(c_out, c_out, 3)
        else:
            self.conv0 = EqualizedConv2d(cfg.nf(log2_res - 2), c_out, 3)
            self.conv1 = EqualizedConv2d(c_out, c_out, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = self.dense(pixel_norm(x)).reshape(len(x), -1, 4, 4) + self.dense_bias.reshape(1, -1, 1, 1)
            x = pixel_norm(_lrelu(x))
            return pixel_norm(_lrelu(self.conv(x)))
        x = pixel_norm(_lrelu(self.conv0(x, up=True)))
        return pixel_norm(_lrelu(self.conv1(x)))


class ProGANGenerator(nn.Module):
    """z (N, nz) -> image (N, C, R, R). ``depth``/``alpha`` pick the stage (default: the one its training reached)."""

    def __init__(self, cfg: ProGANConfig):
        super().__init__()
        self.cfg = cfg
        self.nz = cfg.nz
        self.blocks = nn.ModuleList(GeneratorBlock(cfg, r) for r in range(2, cfg.log2_resolution + 1))
        self.torgb = nn.ModuleList(EqualizedConv2d(cfg.nf(r - 1), cfg.channels, 1, gain=1.0)
                                   for r in range(2, cfg.log2_resolution + 1))
        # the number of progressive training steps taken; -1: never trained progressively (complete network)
        self.register_buffer("schedule_step", torch.tensor(-1, dtype=torch.int64))

    def stage(self) -> tuple[int, float]:
        """The (depth, alpha) the generator samples at: its training's current stage, or the final network."""
        step = int(self.schedule_step)
        return (self.cfg.depth, 1.0) if step < 0 else progan_stage(self.cfg, step)

    def forward(self, z: torch.Tensor, depth: int | None = None, alpha: float | None = None,
                full_size: bool = True) -> torch.Tensor:
        """Args:
            depth: Blocks above 4x4 to run (the output side is 4 * 2 ** depth); None: ``stage()``.
            alpha: Weight of the newest block against the upsampled previous resolution (1: no fade).
            full_size: Nearest-upsample the output to the config's resolution (the reference does the same).
        """
        if depth is None:
            depth, alpha = self.stage()
        alpha = 1.0 if alpha is None else float(alpha)
        if not 0 <= depth <= self.cfg.depth or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"ProGAN stage must have 0 <= depth <= {self.cfg.depth} and 0 <= alpha <= 1, "
                             f"got depth={depth}, alpha={alpha}")
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"ProGAN latents must have shape (N, {self.nz}), got {tuple(z.shape)}")
        x = self.blocks[0](z)
        prev = x
        for d in range(1, depth + 1):
            prev, x = x, self.blocks[d](x)
        img = self.torgb[depth](x)
        if depth > 0 and alpha < 1.0:
            low = F.interpolate(self.torgb[depth - 1](prev), scale_factor=2, mode="nearest")
            img = torch.lerp(low, img, alpha)
        if full_size and img.shape[-1] != self.cfg.resolution:
            img = F.interpolate(img, size=self.cfg.resolution, mode="nearest")
        return img


class ProGANDiscriminator(nn.Module):
    """image (N, C, r, r) -> one score per image (N,); by default the network of the input's resolution r."""

    def __init__(self, cfg: ProGANConfig):
        super().__init__()
        self.cfg = cfg
        self.fromrgb = nn.ModuleList(EqualizedConv2d(cfg.channels, cfg.nf(r - 1), 1)
                                     for r in range(2, cfg.log2_resolution + 1))
        # blocks[d] maps resolution 4 * 2^d (d >= 1) to half its side
        self.blocks = nn.ModuleList([nn.Module()])
        for r in range(3, cfg.log2_resolution + 1):
            block = nn.Module()
            block.conv0 = EqualizedConv2d(cfg.nf(r - 1), cfg.nf(r - 1), 3)
            block.conv1 = EqualizedConv2d(cfg.nf(r - 1), cfg.nf(r - 2), 3)
            self.blocks.append(block)
        mbstd = 1 if cfg.mbstd_group > 1 else 0
        self.conv = EqualizedConv2d(cfg.nf(1) + mbstd, cfg.nf(1), 3)
        self.dense0 = EqualizedLinear(cfg.nf(1) * 16, cfg.nf(0))
        self.dense1 = EqualizedLinear(cfg.nf(0), 1, gain=1.0)

    def _block(self, d: int, x: torch.Tensor) -> torch.Tensor:
        b = self.blocks[d]
        return _lrelu(b.conv1(_lrelu(b.conv0(x)), down=True))

    def forward(self, img: torch.Tensor, depth: int | None = None, alpha: float | None = None) -> torch.Tensor:
        side = img.shape[-1]
        if depth is None:
            if img.dim() != 4 or side < 4 or side & (side - 1) or side > self.cfg.resolution:
                raise ValueError(f"ProGAN discriminator expects (N, {self.cfg.channels}, r, r) images with r a power "
                                 f"of two in [4, {self.cfg.resolution}], got {tuple(img.shape)}")
            depth = int(math.log2(side)) - 2
        alpha = 1.0 if alpha is None else float(alpha)
        if img.dim() != 4 or img.shape[1:] != (self.cfg.channels, 4 * 2 ** depth, 4 * 2 ** depth):
            raise ValueError(f"ProGAN discriminator at depth {depth} expects images (N, {self.cfg.channels}, "
                             f"{4 * 2 ** depth}, {4 * 2 ** depth}), got {tuple(img.shape)}")
        x = _lrelu(self.fromrgb[depth](img))
        if depth > 0:
            x = self._block(depth, x)
            if alpha < 1.0:
                low = _lrelu(self.fromrgb[depth - 1](F.avg_pool2d(img, 2)))
                x = torch.lerp(low, x, alpha)
            for d in range(depth - 1, 0, -1):
                x = self._block(d, x)
        if self.cfg.mbstd_group > 1:
            x = minibatch_stddev(x, self.cfg.mbstd_group)
        x = _lrelu(self.conv(x))
        x = _lrelu(self.dense0(x.flatten(1)))
        return self.dense1(x).flatten()


PROGAN_PAPER = ("Karras et al. 2018, arXiv:1710.10196 (progressive growing, WGAN-GP); "
                "reference tkarras/progressive_growing_of_gans")
PROGAN_PRESETS = {
    # reference config.py, dataset -cifar10 (32x32x3), G_paper/D_paper defaults; 600 kimg phases at 64 images/step
    "paper": {"resolution": 32, "channels": 3, "nz": 512, "fmap_base": 8192, "fmap_decay": 1.0, "fmap_max": 512,
              "mbstd_group": 4, "stable_steps": 9375, "fade_steps": 9375},
    # what the generation suite trains on 2 CPU cores
    "tiny": {"resolution": 32, "channels": 1, "nz": 64, "fmap_base": 256, "fmap_max": 64, "mbstd_group": 4,
             "stable_steps": 100, "fade_steps": 100},
}


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     mix: torch.Tensor, target: float = 1.0) -> torch.Tensor:
    """Per-sample (|grad_x critic(x)| - target)^2 at x = real + (fake - real) * mix (``mix`` (N,) in [0, 1])."""
    if mix.shape != (real.shape[0],):
        raise ValueError(f"mixing factors must have shape ({real.shape[0]},), got {tuple(mix.shape)}")
    x = torch.lerp(real.detach(), fake.detach(), mix.reshape(-1, *[1] * (real.dim() - 1))).requires_grad_(True)
    (grads,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (grads.flatten(1).norm(dim=1) - target).square()


def reals_at_stage(real: torch.Tensor, depth: int, alpha: float) -> torch.Tensor:
    """Real images at side 4 * 2 ** depth by average pooling; while fading (alpha < 1) lerped towards their 2x
    average-pooled, nearest-upsampled copy by 1 - alpha, as the reference's ``process_reals`` does."""
    side = 4 * 2 ** depth
    if real.shape[-1] % side:
        raise ValueError(f"real images of side {real.shape[-1]} cannot be pooled to {side}")
    x = F.avg_pool2d(real, real.shape[-1] // side) if real.shape[-1] != side else real
    if alpha < 1.0 and depth > 0:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x


def _phase(cfg: ProGANConfig, step: int) -> tuple[int, bool]:
    depth, alpha = progan_stage(cfg, step)
    return depth, alpha < 1.0


def progan_step(ctx) -> dict[str, float]:
    """One D (WGAN-GP + drift) and one G update at the stage of ``ctx.step``; returns the losses to log."""
    G, D, cfg, gen, step = ctx.G, ctx.D, ctx.model_config, ctx.generator, ctx.step
    if not isinstance(cfg, ProGANConfig):
        raise TypeError(f"progan_step needs a ProGANConfig, got {type(cfg).__name__}")
    depth, alpha = progan_stage(cfg, step)
    if cfg.reset_optimizer and step > 0 and _phase(cfg, step) != _phase(cfg, step - 1):
        ctx.opt_g.state.clear()
        ctx.opt_d.state.clear()
    batch, device = ctx.real.shape[0], ctx.real.device
    real = reals_at_stage(ctx.real, depth, alpha)

    def critic(x: torch.Tensor) -> torch.Tensor:
        return D(x, depth, alpha)

    # D
    z = torch.randn(batch, cfg.nz, generator=gen).to(device)  # drawn on the step generator's CPU
    with torch.no_grad():
        fake = G(z, depth, alpha, full_size=False)
    d_real, d_fake = critic(real), critic(fake)
    mix = torch.rand(batch, generator=gen).to(device)
    gp = gradient_penalty(critic, real, fake, mix, cfg.wgan_target)
    loss_d = (d_fake - d_real + gp * (cfg.wgan_lambda / cfg.wgan_target ** 2)
              + d_real.square() * cfg.wgan_epsilon).mean()
    ctx.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    ctx.opt_d.step()

    # G
    D.requires_grad_(False)
    z = torch.randn(batch, cfg.nz, generator=gen).to(device)
    loss_g = -critic(G(z, depth, alpha, full_size=False)).mean()
    ctx.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    ctx.opt_g.step()
    D.requires_grad_(True)
    with torch.no_grad():
        G.schedule_step.fill_(step + 1)
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": d_real.mean().item(),
            "d_fake": d_fake.mean().item(), "gp": gp.mean().item(), "resolution": 4 * 2 ** depth, "alpha": alpha}




PROGAN = register_model(ModelEntry(
    "progan", "progan", "unconditional", "images", ProGANConfig, ProGANGenerator, ProGANDiscriminator,
    "wgan_gp", 0.001, 0.001, (0.0, 0.99), PROGAN_PAPER, presets=PROGAN_PRESETS, train_step=progan_step))
