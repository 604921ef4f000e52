"""PixelCNN: the likelihood baseline of the zoo (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent
Neural Networks", arXiv:1601.06759, Sections 3.4-3.5, Table 1 and Figure 5), with the gated variant of van den Oord
et al. 2016, "Conditional Image Generation with PixelCNN Decoders", arXiv:1606.05328, Section 2 and Figure 2.

Both model ``p(x) = prod_i p(x_i | x_<i)`` over sub-pixels in raster order (rows, then columns, then R, G, B inside a
pixel) with a **256-way softmax per sub-pixel** (no discretised logistic), trained by maximum likelihood.

- ``variant="pixelcnn"`` (Pixel RNN paper): a 7x7 convolution with mask A (a sub-pixel does not see itself), residual
  blocks ``2h -> ReLU -> 1x1 -> h -> ReLU -> 3x3 mask B -> h -> ReLU -> 1x1 -> 2h`` (Figure 5) with an identity skip,
  then two ``ReLU -> 1x1 mask B`` output layers, the first with ``out_hidden`` maps (1024 for CIFAR-10, 32 for MNIST),
  the second giving ``channels x 256`` logits. Every convolution is masked over colour groups as in Section 3.4 /
  Figure 4: the feature maps are split into ``channels`` contiguous groups, and at the centre tap a group-g output
  sees input groups < g (mask A) or <= g (mask B).
- ``variant="gated"`` (gated PixelCNN): a vertical stack (a ``(k//2+1) x k`` convolution over the rows above and the
  current row) and a horizontal stack (a ``1 x (k//2+1)`` convolution over the current row up to the centre, the centre
  masked A in the first layer and B after) joined by a 1x1 convolution from the vertical features shifted down by one
  row; ``tanh(a) * sigmoid(b)`` gates, a 1x1 convolution and a residual skip on the horizontal stack. No blind spot.

The **paper** preset is the Pixel RNN paper's CIFAR-10 PixelCNN (training details of Section 5: "The PixelCNN has
15 layers and h = 128"; Section 4: "1024 feature maps" in the output layers for CIFAR-10, 32 for MNIST), read as one
7x7 mask-A layer, 15 residual blocks and the two output layers; the parameter count derived from those numbers is
4,290,816 (dense kernels with biases, masked taps included). The **tiny** preset uses the paper's MNIST sizes (h = 16,
32 output maps) with 7 residual blocks on 32x32 grey digits, 256 levels per pixel (not binarised: the paper's MNIST
model is a sigmoid over binarised digits).

What differs: the paper trains with RMSProp, ganbench with Adam (lr 1e-3); the last (logit) layer starts at zero, so an
untrained model is the uniform 8 bits/dim distribution; the Pixel RNN paper's "layer-to-output" connections and the
gated paper's conditioning are not implemented.

Sampling follows the zoo contract ``Generator.sample(n, seed)``: ``uniform_noise`` draws one uniform per sub-pixel
from the seeded generator, and ``PixelCNN.forward(u)`` samples sub-pixel after sub-pixel by inverse CDF (the smallest
level whose cumulative probability exceeds ``u``), so the samples are a deterministic function of the seed and do not
depend on the batch size. Sampling is incremental (as in Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models", arXiv:1704.06001): each step computes every layer at the new sub-pixel only,
from canvases holding the layers' already-final inputs, so one image costs about one full-image forward pass, not one
per sub-pixel; the gated variant's vertical stack is computed a row at a time, once the row is final. Tests check the
samples against naive sampling that reruns the whole network for every sub-pixel. Samples are reproducible on a
given device; a CPU and a GPU differ in float rounding, which moves some draws across a CDF step.

Training (``likelihood_step``, run by ``ganbench.train.loop``): The loss is the mean negative log-likelihood of the real batch's sub-pixels under the 256-way softmax, as in van den
Oord et al. 2016 (arXiv:1601.06759, Section 5.1: "all our models are trained ... using the discrete softmax
distribution"); it is logged in bits per sub-pixel. There is no discriminator: ``ctx.D`` and ``ctx.opt_d`` are None,
and the step draws no random numbers (the loop has already drawn the batch from the step's generator), so a resumed
run repeats an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.results.schema import Score
from ganbench.zoo.base import ModelEntry, StepContext, register_model

LEVELS = 256  # intensity levels of a sub-pixel; the softmax has one logit per level
VARIANTS = ("pixelcnn", "gated")
Z95 = 1.959963984540054


@dataclass
class PixelCNNConfig:
    resolution: int = 32  # image side
    channels: int = 1  # image channels (sub-pixels per pixel, each with its own softmax)
    variant: str = "pixelcnn"  # "pixelcnn" (Pixel RNN paper, residual blocks) or "gated" (gated PixelCNN)
    h: int = 16  # pixelcnn: residual stream of 2h maps, h inside a block; gated: h maps per stack
    layers: int = 7  # residual blocks (pixelcnn) or gated layers after the first
    first_kernel: int = 7  # side of the first (mask A) convolution
    kernel: int = 3  # side of the masked convolution in every later layer
    out_hidden: int = 32  # maps of the first ReLU + 1x1 output layer (paper: 1024 CIFAR-10, 32 MNIST)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"PixelCNN variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        for name in ("first_kernel", "kernel"):
            k = getattr(self, name)
            if k < 3 or k % 2 == 0:
                raise ValueError(f"PixelCNN {name} must be an odd number >= 3, got {k}")
        if self.resolution < 2 or self.channels < 1 or self.layers < 0:
            raise ValueError(f"PixelCNN needs resolution >= 2, channels >= 1 and layers >= 0; got resolution="
                             f"{self.resolution}, channels={self.channels}, layers={self.layers}")
        if self.h < self.channels or self.out_hidden < self.channels:
            raise ValueError(f"PixelCNN h and out_hidden must be at least channels={self.channels} (one group of maps "
                             f"per colour); got h={self.h}, out_hidden={self.out_hidden}")


def colour_groups(n: int, channels: int) -> torch.Tensor:
    """The colour group (0 .. channels - 1) of each of ``n`` feature maps: contiguous, as equal as possible."""
    return torch.arange(n) * channels // n


def gate_groups(n: int, channels: int) -> torch.Tensor:
    """Groups of the ``2n`` pre-gate maps ``[a, b]``: map j of ``a`` and of ``b`` share a group, so ``tanh(a) *
    sigmoid(b)`` keeps it."""
    return colour_groups(n, channels).repeat(2)


def causal_mask(kernel: tuple[int, int], centre: tuple[int, int], out_groups: torch.Tensor, in_groups: torch.Tensor,
                mask_type: str) -> torch.Tensor:
    """(out, in, kh, kw) mask: taps above the centre row, and left of the centre on its row, are open; the centre tap
    joins input group i to output group o when i < o (type A) or i <= o (type B); everything else is closed."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = kernel
    cy, cx = centre
    rows = torch.arange(kh)[:, None].expand(kh, kw)
    cols = torch.arange(kw)[None, :].expand(kh, kw)
    spatial = ((rows < cy) | ((rows == cy) & (cols < cx))).float()
    at_centre = ((rows == cy) & (cols == cx)).float()
    o, i = out_groups[:, None], in_groups[None, :]
    channel = (i < o if mask_type == "A" else i <= o).float()
    return spatial[None, None] + channel[:, :, None, None] * at_centre[None, None]


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed 0/1 ``mask`` (out, in, kh, kw) on every call; the weight
    stays dense, so masked taps get zero gradient. ``pad`` is (left, right, top, bottom) zero padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], pad: tuple[int, int, int, int],
                 mask: torch.Tensor):
        super().__init__(in_channels, out_channels, kernel, padding=0)
        if mask.shape != self.weight.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} differs from the kernel's {tuple(self.weight.shape)}")
        self.pad = pad
        # not persistent: the mask is rebuilt from the config, so state dicts hold only trainable tensors
        self.register_buffer("mask", mask.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, self.pad), self.weight * self.mask.to(self.weight.dtype), self.bias)


def _square(cin: int, cout: int, k: int, gin: torch.Tensor, gout: torch.Tensor, mask_type: str) -> MaskedConv2d:
    """A k x k convolution centred on the output pixel, masked causally (type A or B) over colour groups."""
    r = k // 2
    return MaskedConv2d(cin, cout, (k, k), (r, r, r, r), causal_mask((k, k), (r, r), gout, gin, mask_type))


class ResidualBlock(nn.Module):
    """Pixel RNN paper Figure 5 (PixelCNN): 2h -> ReLU 1x1 -> h -> ReLU kxk mask B -> h -> ReLU 1x1 -> 2h, plus the
    input."""

    def __init__(self, h: int, k: int, channels: int):
        super().__init__()
        g2, g1 = colour_groups(2 * h, channels), colour_groups(h, channels)
        self.reduce = _square(2 * h, h, 1, g2, g1, "B")
        self.conv = _square(h, h, k, g1, g1, "B")
        self.expand = _square(h, 2 * h, 1, g1, g2, "B")

    def forward(self, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        (x,) = state
        y = self.expand(F.relu(self.conv(F.relu(self.reduce(F.relu(x))))))
        return (x + y,)


class FirstLayer(nn.Module):
    """The 7x7 mask-A convolution from the image to the 2h-map residual stream."""

    def __init__(self, channels: int, h: int, k: int):
        super().__init__()
        self.conv = _square(channels, 2 * h, k, colour_groups(channels, channels), colour_groups(2 * h, channels), "A")

    def forward(self, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (self.conv(state[0]),)


class GatedLayer(nn.Module):
    """One gated PixelCNN layer on (vertical, horizontal) maps (arXiv:1606.05328, Figure 2).

    The first layer reads the image on both stacks (``first=True``): its horizontal centre tap is masked A and it has
    no residual skip. Later layers are masked B and add their input to the horizontal output.
    """

    def __init__(self, cin: int, h: int, k: int, channels: int, first: bool):
        super().__init__()
        r = k // 2
        gin = colour_groups(cin, channels)
        gg, gh = gate_groups(h, channels), colour_groups(h, channels)
        # rows r above to the current row, unmasked: the current row is only ever read shifted down by one row
        self.vertical = MaskedConv2d(cin, 2 * h, (r + 1, k), (r, r, r, 0), torch.ones(2 * h, cin, r + 1, k))
        self.horizontal = MaskedConv2d(cin, 2 * h, (1, r + 1), (r, 0, 0, 0),
                                       causal_mask((1, r + 1), (0, r), gg, gin, "A" if first else "B"))
        # the shifted vertical maps hold rows above only: every colour group may read all of them
        self.v_to_h = MaskedConv2d(2 * h, 2 * h, (1, 1), (0, 0, 0, 0), torch.ones(2 * h, 2 * h, 1, 1))
        self.h_out = _square(h, h, 1, gh, gh, "B")
        self.first = first
        self.h = h

    def forward(self, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        v_in, h_in = (state[0], state[0]) if self.first else state
        v_pre = self.vertical(v_in)
        shifted = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # row r sees the vertical stack of rows < r only
        h_pre = self.horizontal(h_in) + self.v_to_h(shifted)
        v_out = torch.tanh(v_pre[:, :self.h]) * torch.sigmoid(v_pre[:, self.h:])
        h_gated = torch.tanh(h_pre[:, :self.h]) * torch.sigmoid(h_pre[:, self.h:])
        h_out = self.h_out(h_gated)
        return v_out, h_out if self.first else h_in + h_out


class PixelCNN(nn.Module):
    """PixelCNN or gated PixelCNN over ``channels`` x ``resolution``^2 images with 256 levels per sub-pixel.

    ``logits(x)`` scores images (training, bits/dim); ``forward(u)`` samples images from uniform noise ``u``.
    """

    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        self.cfg = cfg
        c, h = cfg.channels, cfg.h
        if cfg.variant == "pixelcnn":
            stages: list[nn.Module] = [FirstLayer(c, h, cfg.first_kernel)]
            stages += [ResidualBlock(h, cfg.kernel, c) for _ in range(cfg.layers)]
            top = 2 * h
        else:
            stages = [GatedLayer(c, h, cfg.first_kernel, c, first=True)]
            stages += [GatedLayer(h, h, cfg.kernel, c, first=False) for _ in range(cfg.layers)]
            top = h
        self.stages = nn.ModuleList(stages)
        self.out1 = _square(top, cfg.out_hidden, 1, colour_groups(top, c), colour_groups(cfg.out_hidden, c), "B")
        self.out2 = _square(cfg.out_hidden, c * LEVELS, 1, colour_groups(cfg.out_hidden, c),
                            colour_groups(c * LEVELS, c), "B")
        # the untrained model is the uniform distribution over 256 levels: exactly 8 bits per sub-pixel
        nn.init.zeros_(self.out2.weight)
        nn.init.zeros_(self.out2.bias)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        state: tuple[torch.Tensor, ...] = (x,)
        for stage in self.stages:
            state = stage(state)
        return state[-1]

    def _head(self, features: torch.Tensor) -> torch.Tensor:
        return self.out2(F.relu(self.out1(F.relu(features))))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (N, C, H, W) -> logits (N, C, 256, H, W) of each sub-pixel given the ones before it."""
        n, c, hh, ww = x.shape
        if c != self.cfg.channels:
            raise ValueError(f"PixelCNN expects {self.cfg.channels}-channel images, got shape {tuple(x.shape)}")
        return self._head(self._trunk(x)).view(n, c, LEVELS, hh, ww)

    @torch.no_grad()
    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Sample: uniform noise (N, C, R, R) in [0, 1) -> images (N, C, R, R) in [-1, 1] on the 256-level grid."""
        cfg = self.cfg
        shape = (cfg.channels, cfg.resolution, cfg.resolution)
        if u.dim() != 4 or tuple(u.shape[1:]) != shape:
            raise ValueError(f"PixelCNN sampling expects uniform noise of shape (N, {', '.join(map(str, shape))}), got "
                             f"{tuple(u.shape)}; draw it with uniform_noise(config, n, generator)")
        sampler = _ResidualSampler(self, u) if cfg.variant == "pixelcnn" else _GatedSampler(self, u)
        x = sampler.x
        w1, b1 = _pointwise(self.out1)
        w2, b2 = _pointwise(self.out2)
        for r in range(cfg.resolution):
            for col in range(cfg.resolution):
                for ch in range(cfg.channels):
                    top = sampler.features_at(r, col)
                    rows = slice(ch * LEVELS, (ch + 1) * LEVELS)  # the logits of this sub-pixel only
                    logits = F.linear(F.relu(F.linear(F.relu(top), w1, b1)), w2[rows], b2[rows])
                    level = inverse_cdf(logits, u[:, ch, r, col])
                    x.put(r, col, (level.to(x.t.dtype) / 127.5 - 1.0), channel=ch)
            sampler.row_done(r)
        return x.image()


class _Canvas:
    """An image-shaped map stored (N, H, W, F), zero-padded by ``margin`` rows above and columns either side, filled in
    as sampling makes its positions final; windows reaching outside the image read the zero padding, as the
    convolutions' padding does. Features last: a window is then a few contiguous runs per sample, which is what
    makes reading one cheap (NCHW windows gather 3-float runs, about 25x slower)."""

    def __init__(self, like: torch.Tensor, features: int, side: int, margin: int):
        self.t = like.new_zeros(like.shape[0], side + margin, side + 2 * margin, features)
        self.m = margin
        self.side = side

    def window(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        """Image rows r0..r1-1 and columns c0..c1-1, (N, rows, cols, F)."""
        m = self.m
        return self.t[:, r0 + m:r1 + m, c0 + m:c1 + m]

    def at(self, r: int, c: int) -> torch.Tensor:
        return self.t[:, r + self.m, c + self.m]

    def put(self, r: int, c: int, value: torch.Tensor, channel: int | None = None) -> None:
        if channel is None:
            self.t[:, r + self.m, c + self.m] = value
        else:
            self.t[:, r + self.m, c + self.m, channel] = value

    def put_row(self, r: int, value: torch.Tensor) -> None:
        """Row ``r`` from (N, F, W) maps."""
        self.t[:, r + self.m, self.m:self.m + self.side] = value.transpose(1, 2)

    def image(self) -> torch.Tensor:
        """The whole map as (N, F, H, W)."""
        return self.t[:, self.m:, self.m:self.m + self.side].permute(0, 3, 1, 2).contiguous()


def _pointwise(conv: MaskedConv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 masked convolution as (weight (out, in), bias) of a linear map."""
    return (conv.weight * conv.mask.to(conv.weight.dtype)).flatten(1), conv.bias


def _causal_kernel(conv: MaskedConv2d) -> torch.Tensor:
    """The masked kernel without its rows below the centre (all masked), so a window ends at the current row; laid out
    (out, kh, kw, in) to match a canvas window."""
    return (conv.weight * conv.mask.to(conv.weight.dtype))[:, :, :conv.pad[2] + 1].permute(0, 2, 3, 1).contiguous()


def _conv_at(conv: MaskedConv2d, kernel: torch.Tensor, canvas: _Canvas, r: int, col: int) -> torch.Tensor:
    """``conv``'s output at (r, col), (N, out), from the causal window of its input canvas.

    A window-times-kernel product: the same sum as the convolution at that position, without the per-call cost of a
    convolution primitive on a window this small (about 10x the arithmetic on CPUs).
    """
    left, top = conv.pad[0], conv.pad[2]
    window = canvas.window(r - top, r + 1, col - left, col - left + kernel.shape[2])
    return F.linear(window.reshape(len(window), -1), kernel.flatten(1), conv.bias)


class _ResidualSampler:
    """Incremental evaluation of the Pixel RNN paper's PixelCNN: at each sub-pixel, every layer is computed at that
    position only; the inputs of the spatial (7x7, 3x3) convolutions are kept on canvases, whose earlier positions no
    longer change."""

    def __init__(self, net: PixelCNN, u: torch.Tensor):
        dtype, side = net.out2.weight.dtype, net.cfg.resolution
        like = u.to(dtype)
        margin = max(net.cfg.first_kernel, net.cfg.kernel) // 2
        self.first = net.stages[0].conv
        self.first_kernel = _causal_kernel(self.first)
        self.x = _Canvas(like, net.cfg.channels, side, margin)
        self.blocks = []
        for block in net.stages[1:]:
            self.blocks.append((block, _pointwise(block.reduce), _causal_kernel(block.conv), _pointwise(block.expand),
                                _Canvas(like, net.cfg.h, side, margin)))

    def features_at(self, r: int, col: int) -> torch.Tensor:
        s = _conv_at(self.first, self.first_kernel, self.x, r, col)
        for block, (wr, br), kernel, (we, be), canvas in self.blocks:
            canvas.put(r, col, F.relu(F.linear(F.relu(s), wr, br)))
            s = s + F.linear(F.relu(_conv_at(block.conv, kernel, canvas, r, col)), we, be)
        return s

    def row_done(self, r: int) -> None:
        pass  # every canvas position is written when its sub-pixel is sampled


class _GatedSampler:
    """Incremental evaluation of the gated PixelCNN: the horizontal stack is computed at the new position only; the
    vertical stack, which reads the current row to the right, is computed a whole row at a time once the row is final
    (the horizontal stack reads it one row later, through the shift)."""

    def __init__(self, net: PixelCNN, u: torch.Tensor):
        dtype, side, h = net.out2.weight.dtype, net.cfg.resolution, net.cfg.h
        like = u.to(dtype)
        margin = max(net.cfg.first_kernel, net.cfg.kernel) // 2 + 1
        self.h = h
        self.x = _Canvas(like, net.cfg.channels, side, margin)
        self.layers = []
        v_in = h_in = self.x
        for i, layer in enumerate(net.stages):
            last = i == len(net.stages) - 1
            nxt_v = None if last else _Canvas(like, h, side, margin)
            nxt_h = None if last else _Canvas(like, h, side, margin)
            self.layers.append(dict(layer=layer, v_in=v_in, h_in=h_in, v_pre=_Canvas(like, 2 * h, side, margin),
                                    vertical=_causal_kernel(layer.vertical),
                                    horizontal=_causal_kernel(layer.horizontal),
                                    v_to_h=_pointwise(layer.v_to_h), h_out=_pointwise(layer.h_out), v_out=nxt_v,
                                    h_next=nxt_h))
            v_in, h_in = nxt_v, nxt_h

    def _gate(self, pre: torch.Tensor) -> torch.Tensor:
        return torch.tanh(pre[:, :self.h]) * torch.sigmoid(pre[:, self.h:])

    def features_at(self, r: int, col: int) -> torch.Tensor:
        h_val = None
        for L in self.layers:
            layer = L["layer"]
            pre = _conv_at(layer.horizontal, L["horizontal"], L["h_in"], r, col)
            pre = pre + F.linear(L["v_pre"].at(r - 1, col), *L["v_to_h"])
            out = F.linear(self._gate(pre), *L["h_out"])
            h_val = out if layer.first else h_val + out
            if L["h_next"] is not None:
                L["h_next"].put(r, col, h_val)
        return h_val

    def row_done(self, r: int) -> None:
        for L in self.layers:
            layer = L["layer"]
            left, right, top = layer.vertical.pad[0], layer.vertical.pad[1], layer.vertical.pad[2]
            window = L["v_in"].window(r - top, r + 1, -left, L["v_in"].side + right).permute(0, 3, 1, 2)
            kernel = L["vertical"].permute(0, 3, 1, 2)  # back to (out, in, kh, kw)
            pre = F.conv2d(window, kernel, layer.vertical.bias)  # (N, 2h, 1, side)
            L["v_pre"].put_row(r, pre[:, :, 0])
            if L["v_out"] is not None:
                L["v_out"].put_row(r, self._gate(pre)[:, :, 0])


def inverse_cdf(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The level drawn by uniform ``u`` (N,) from softmax(``logits``) (N, L): the number of levels whose cumulative
    probability is <= u, i.e. level j with probability p_j. Computed in float64."""
    cdf = torch.softmax(logits.double(), dim=-1).cumsum(dim=-1)
    u = u.double()[:, None] * cdf[:, -1:]  # the cumulative sum may end a rounding error away from 1
    return (cdf <= u).sum(dim=-1).clamp_(max=logits.shape[-1] - 1)


def uniform_noise(cfg: PixelCNNConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
    """One uniform per sub-pixel: the noise the autoregressive sampler turns into an image by inverse CDF."""
    return (torch.rand(batch, cfg.channels, cfg.resolution, cfg.resolution, generator=generator),)


@torch.no_grad()
def bits_per_dim(model: Any, images: torch.Tensor, batch_size: int = 100) -> Score:
    """Negative log-likelihood of uint8 images in bits per sub-pixel, with a 95% interval over images.

    Args:
        model: A ``PixelCNN`` or a ``Generator`` wrapping one (its ``net``).
        images: uint8 (N, C, R, R) images of the model's channels and resolution, e.g. a dataset's test split.
        batch_size: Images per forward pass.

    Returns:
        Score: mean over images of each image's bits/dim; ``std`` is their standard deviation; the interval is the
        normal one of the mean.
    """
    net = getattr(model, "net", model)
    if not isinstance(net, PixelCNN):
        raise ValueError(f"bits_per_dim needs a PixelCNN (or a Generator of one), got {type(net).__name__}")
    cfg = net.cfg
    expected = (cfg.channels, cfg.resolution, cfg.resolution)
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"bits_per_dim expects uint8 images of shape (N, {', '.join(map(str, expected))}), got "
                         f"{images.dtype} {tuple(images.shape)}")
    if len(images) == 0:
        raise ValueError("bits_per_dim needs at least one image")
    was_training = net.training
    net.eval()
    device = net.out2.weight.device
    per_image = []
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size].to(device)
        x = (batch.float() / 127.5 - 1.0).to(net.out2.weight.dtype)
        logp = torch.log_softmax(net.logits(x).double(), dim=2)
        nll = -logp.gather(2, batch.long().unsqueeze(2)).squeeze(2)  # (N, C, H, W) nats
        per_image.append(nll.flatten(1).mean(1).cpu() / math.log(2))
    net.train(was_training)
    values = torch.cat(per_image)
    mean = float(values.mean())
    std = float(values.std(unbiased=True)) if len(values) > 1 else 0.0
    half = Z95 * std / math.sqrt(len(values))
    return Score(mean, std, mean - half, mean + half, len(values), False, f"normal over images({len(values)})")


def no_discriminator(cfg: PixelCNNConfig) -> None:
    """A likelihood model trains without a discriminator."""
    return None


PIXELCNN_PAPER = ("van den Oord, Kalchbrenner & Kavukcuoglu 2016, arXiv:1601.06759 (PixelCNN); gated variant: "
                  "van den Oord et al. 2016, arXiv:1606.05328")
# tiny: the paper's MNIST sizes (h=16, 32 output maps) on 32x32 grey digits, 256 levels.
# paper: the Pixel RNN paper's CIFAR-10 PixelCNN, 15 residual blocks, h=128, 1024 output maps.
PIXELCNN_PRESETS = {
    "tiny": {"resolution": 32, "channels": 1, "variant": "pixelcnn", "h": 16, "layers": 7, "out_hidden": 32},
    "paper": {"resolution": 32, "channels": 3, "variant": "pixelcnn", "h": 128, "layers": 15, "out_hidden": 1024},
}
def levels_of(real: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (as the training loop passes them, from uint8) -> integer levels 0..255."""
    return ((real.float() + 1.0) * 127.5).round().clamp(0, 255).long()


def likelihood_step(ctx: StepContext) -> dict[str, float]:
    """One Adam step on the mean sub-pixel cross-entropy of ``ctx.real``; returns {"nll_bits": bits per sub-pixel}."""
    if ctx.real.dim() != 4:
        raise ValueError(f"PixelCNN trains on images (B, C, H, W), got a batch of shape {tuple(ctx.real.shape)}")
    logits = ctx.G.logits(ctx.real)  # (B, C, 256, H, W)
    loss = F.cross_entropy(logits.transpose(1, 2), levels_of(ctx.real))  # class dimension second
    ctx.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    ctx.opt_g.step()
    return {"nll_bits": loss.item() / math.log(2)}


PIXELCNN = register_model(ModelEntry(
    "pixelcnn", "pixelcnn", "likelihood", "images", PixelCNNConfig, PixelCNN, no_discriminator, "likelihood",
    1e-3, 1e-3, (0.9, 0.999), PIXELCNN_PAPER, presets=PIXELCNN_PRESETS, generator_inputs=uniform_noise,
    train_step=likelihood_step))
