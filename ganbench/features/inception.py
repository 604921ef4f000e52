"""The FID Inception-v3 feature extractor (``inception_v3_fid``): torch-fidelity's port of the TensorFlow network.

The network is Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
Vision") with the 2015-12-05 TensorFlow weights that the Fréchet Inception Distance (Heusel et al. 2017)
and the Inception Score (Salimans et al. 2016) were defined with. The reference implementation matched
here is torch-fidelity's port of that graph (``torch_fidelity.feature_extractor_inceptionv3
.FeatureExtractorInceptionV3``, registered in torch-fidelity as ``"inception-v3-compat"``): its layers,
its TensorFlow-1.x-compatible bilinear resize to 299x299, its ``(x - 128) / 128`` normalisation and its
forward pass are used unchanged (``InceptionV3FID`` subclasses it and runs its ``forward``). ganbench
reads two of its outputs: ``"2048"`` (pool3, for FID, KID and precision/recall) and ``"logits_unbiased"``
(the 1008 logits without the fc bias, for the Inception Score), as torch-fidelity does, and adds a third,
``"spatial"``, for sFID (Nash et al. 2021, "Generating Images with Sparse Representations", arXiv:2103.03841):
the first 7 channels of the TF graph's ``mixed_6/conv`` (the ReLU output of the 1x1 branch of the block
torch-fidelity names ``Mixed_6d``; its converter maps ``mixed_6/conv`` to ``Mixed_6d.branch1x1``), 7 x 17 x
17 = 2023 values per image, as the reference evaluator of guided-diffusion (``mixed_6/conv:0``, ``[..., :7]``)
reads them. It is captured by a forward hook on that block during the one forward pass, so the other layers'
values are those of torch-fidelity's forward, unchanged. The reference flattens NHWC, ganbench flattens CHW:
a permutation of the coordinates, under which a Fréchet distance is invariant.

What differs from torch-fidelity's own module:

- Loading. torch-fidelity's constructor unpickles the weights without restriction (``weights_only`` off)
  (and its download path goes through ``torch.hub.load_state_dict_from_url``, also unpickling). ganbench
  never runs that constructor: ``InceptionV3FID`` builds the same layers from torch-fidelity's blocks and
  loads the state dict with ``torch.load(path, map_location="cpu", weights_only=True)``, strictly (every
  key and shape must match torch-fidelity's architecture). Downloads go through ``ganbench.weights`` (resumable,
  size-limited) into the file torch-fidelity itself caches (``torch.hub.get_dir()/checkpoints/<file>``).
- Input. One-channel images are repeated to three channels (torch-fidelity rejects them); otherwise the
  input must be uint8 NCHW with three channels, as in torch-fidelity.
- Speed (``fast=True``, the registered default). Every batch norm is folded into the convolution before it
  (``torch.nn.utils.fusion.fuse_conv_bn_eval``), the weights are stored channels_last, and inputs run in
  chunks of 8 images; the resize and normalisation are torch-fidelity's, unchanged. The arithmetic is
  re-associated, not changed. The real weights cannot be fetched where this was written, so the error
  was measured on random weights of the same shapes (``write_random_weights``): max |fast - torch-fidelity|
  / max |torch-fidelity| is 2e-6 to 1e-5 on the 2048-d features, no larger than torch-fidelity's own
  float32-versus-float64 difference on the same inputs; ``tests/test_inception.py`` asserts < 1e-4, and
  ``benchmarks/inception_speed.py --weights`` measures it on any weights file. On 2 CPU cores the fast
  path runs 2.2-2.3x as many images per second as torch-fidelity's module at its batch of 64.
  ``compiled=True`` additionally wraps the forward in ``torch.compile`` with inductor's freezing (opt-in,
  2.7x: it needs a C++ compiler and compiles for about a minute per input size on a 2-core CPU, seconds
  when inductor's cache has the graph). Reference features cached by ``reference_features`` do not record
  which of these modes produced them; the modes agree to the tolerance above.

Weights are found by ``ganbench.weights`` (one resolver for every weights file), in this order:
``$GANBENCH_INCEPTION_WEIGHTS``; ``$GANBENCH_CACHE/weights/<file>``; ``torch.hub.get_dir()/checkpoints/<file>``
(where torch-fidelity caches its download); else they are downloaded from ``WEIGHTS_URL`` unless ganbench is
offline (``GANBENCH_OFFLINE=1``, ``HF_HUB_OFFLINE=1``, or the download host does not answer within half a
second), in which case ``FileNotFoundError`` says what to download and where to put it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from torch_fidelity.feature_extractor_inceptionv3 import (
    URL_INCEPTION_V3,
    BasicConv2d,
    FeatureExtractorInceptionV3,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE_1,
    InceptionE_2,
)

from ganbench.features.spec import ExtractorSpec, _register_fidelity
from ganbench.registry import EXTRACTORS
from ganbench.weights import OFFLINE_ENVS, WeightsFile, load_state_dict, weights_sha256

WEIGHTS_URL = URL_INCEPTION_V3  # torch-fidelity's release of the converted TensorFlow 2015-12-05 weights
WEIGHTS_FILE = Path(urlparse(WEIGHTS_URL).path).name  # weights-inception-2015-12-05-6726825d.pth
WEIGHTS_ENV = "GANBENCH_INCEPTION_WEIGHTS"  # an explicit path to the weights file
REFERENCE_NAME = "inception-v3-compat"  # torch-fidelity's own registration of the reference module
FIDELITY_NAME = "ganbench-inception-v3-fid"  # this module in torch-fidelity's registry
FEATURE_LAYER = "2048"
LOGITS_LAYER = "logits_unbiased"
SPATIAL_LAYER = "spatial"  # sFID's layer: mixed_6/conv (Mixed_6d.branch1x1), first SPATIAL_CHANNELS channels, flattened
SPATIAL_CHANNELS = 7  # Nash et al. 2021: 7 x 17 x 17 = 2023 dimensions
FAST_BATCH_SIZE = 8  # images per forward on the fast path: 2 cores give 14.8 img/s at 4, 15.4 at 8, 15.6 at 16
CALIBRATION_SIDE = 64  # side of the random images that write_random_weights calibrates batch norm on
INPUT_RESIZE = "torch-fidelity TF1.x-compatible bilinear to 299x299; 1 channel repeated to 3"


def weights_file() -> WeightsFile:
    """The Inception weights file and where it is looked for (read at call time, so tests can redirect it)."""
    return WeightsFile("Inception-v3 FID weights", WEIGHTS_FILE, WEIGHTS_URL, (WEIGHTS_ENV,))


def resolve_weights(download: bool = True, progress: bool = True) -> Path:
    """The path of the weights file, downloading it into torch-fidelity's cache when allowed and online.

    Raises:
        FileNotFoundError: ``$GANBENCH_INCEPTION_WEIGHTS`` names a missing file, or no candidate exists and
            the file cannot be downloaded. The message names the file, its URL and where to put it.
    """
    return weights_file().resolve(download=download, progress=progress)


def fold_batch_norm(module: nn.Module) -> int:
    """Fold every ``BasicConv2d``'s batch norm into its convolution, in place; returns how many were folded.

    In eval mode ``bn(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(v + eps)`` and
    ``b' = beta - m * g / sqrt(v + eps)``, so the block becomes conv (with bias) + ReLU.
    """
    folded = 0
    for block in module.modules():
        if isinstance(block, BasicConv2d) and isinstance(block.bn, nn.BatchNorm2d):
            block.conv = fuse_conv_bn_eval(block.conv.eval(), block.bn.eval())
            block.bn = nn.Identity()
            folded += 1
    return folded


class InceptionV3FID(FeatureExtractorInceptionV3):
    """torch-fidelity's FID Inception-v3, loaded without unsafe unpickling, optionally folded and compiled.

    ``forward`` takes uint8 NCHW images (1 or 3 channels, any size) and returns a tuple of float32 tensors in
    ``features_list`` order. It is registered in torch-fidelity's registry as ``"ganbench-inception-v3-fid"``,
    so torch-fidelity's ``calculate_metrics`` can use it too.

    Args:
        name: Name in torch-fidelity's registry.
        features_list: Outputs to return, from ``"64"``, ``"192"``, ``"768"``, ``"2048"``,
            ``"logits_unbiased"``, ``"logits"``, and ``"spatial"`` (sFID's 2023-d layer, see the module docstring).
        feature_extractor_weights_path: The weights file; None resolves it with ``resolve_weights``.
        state_dict: Weights already in memory (overrides the path).
        pretrained: False keeps PyTorch's random initialisation (for building test weights).
        fast: Fold batch norm into the convolutions and use channels_last.
        fast_batch_size: Run inputs in chunks of this many images (None: as given).
        compiled: Wrap the forward in ``torch.compile`` with inductor's freezing (the last chunk is
            zero-padded to ``fast_batch_size`` so that one compiled graph serves every chunk of a size).
        **kwargs: torch-fidelity's keyword arguments; ``feature_extractor_internal_dtype`` may be None or
            "float32", ``verbose`` shows a download progress bar, the rest are ignored.
    """

    def __init__(self, name: str, features_list: Sequence[str], feature_extractor_weights_path: str | None = None,
                 *, state_dict: dict[str, torch.Tensor] | None = None, pretrained: bool = True, fast: bool = True,
                 fast_batch_size: int | None = FAST_BATCH_SIZE, compiled: bool = False, **kwargs: Any):
        FeatureExtractorBase.__init__(self, name, list(features_list))
        # torch-fidelity's forward returns its own layers; "spatial" is taken by a hook on the block that computes it
        self._network_features = [f for f in self.features_list if f != SPATIAL_LAYER]
        if not self._network_features:  # the forward must run past Mixed_6d: ask it for the next layer, and drop it
            self._network_features = ["768"]
        dtype = kwargs.get("feature_extractor_internal_dtype")
        if dtype not in (None, "float32"):
            raise ValueError(f"{name} runs in float32 only, got feature_extractor_internal_dtype={dtype!r}")
        if fast_batch_size is not None and fast_batch_size < 1:
            raise ValueError(f"fast_batch_size must be positive or None, got {fast_batch_size}")
        self.feature_extractor_internal_dtype = torch.float32
        # The layers of FeatureExtractorInceptionV3.__init__, without its unrestricted unpickling.
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE_1(1280)
        self.Mixed_7c = InceptionE_2(2048)
        self.AvgPool = nn.AdaptiveAvgPool2d(output_size=(1, 1))
        self.fc = nn.Linear(2048, 1008)
        if pretrained:
            if state_dict is None:
                path = feature_extractor_weights_path or resolve_weights(progress=bool(kwargs.get("verbose", True)))
                state_dict = load_state_dict(path)
            self.load_state_dict(state_dict, strict=True)
        self.requires_grad_(False)
        self.eval()
        self.fast = fast
        self.fast_batch_size = fast_batch_size
        if fast:
            fold_batch_norm(self)
            self.to(memory_format=torch.channels_last)
        self._taps: dict[str, torch.Tensor] = {}
        if SPATIAL_LAYER in self.features_list:
            self.Mixed_6d.branch1x1.register_forward_hook(self._tap_spatial)
        self._compiled: Callable[[torch.Tensor], tuple[torch.Tensor, ...]] | None = None
        if compiled:
            self._compiled = torch.compile(self._reference_forward, options={"freezing": True})

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return (*FeatureExtractorInceptionV3.get_provided_features_list(), SPATIAL_LAYER)

    def _tap_spatial(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self._taps[SPATIAL_LAYER] = output[:, :SPATIAL_CHANNELS].flatten(1).to(torch.float32)

    def _reference_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """torch-fidelity's forward (resize, normalisation, network) on a 3-channel uint8 batch, returning the
        layers of ``features_list`` (the spatial one from the hook)."""
        if self._network_features == self.features_list:
            return FeatureExtractorInceptionV3.forward(self, x)
        requested = self.features_list
        self.features_list = self._network_features  # what torch-fidelity's forward reads
        try:
            found = dict(zip(self._network_features, FeatureExtractorInceptionV3.forward(self, x)))
        finally:
            self.features_list = requested
        found[SPATIAL_LAYER] = self._taps.pop(SPATIAL_LAYER)
        return tuple(found[name] for name in requested)

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self._compiled is None:
            return self._reference_forward(x)
        n, pad = len(x), (self.fast_batch_size or len(x)) - len(x)
        if pad > 0:
            x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
        return tuple(f[:n] for f in self._compiled(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Features of uint8 NCHW images (1 or 3 channels), in ``features_list`` order, float32.

        Raises:
            ValueError: The input is not a uint8 NCHW tensor with 1 or 3 channels.
        """
        if not torch.is_tensor(x) or x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"{self.name} expects uint8 NCHW images with 1 or 3 channels, got "
                             f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grayscale: the same plane in R, G and B
        # Small chunks keep a CPU's caches warm (15.4 img/s at 8 against 7.7 at 64 here); a GPU wants the whole
        # batch (on an H200, chunks of 8 held Inception to 1.3k img/s).
        chunk = self.fast_batch_size if x.device.type == "cpu" else None
        if chunk is None or len(x) <= chunk:
            return self._run(x)
        parts = [self._run(c) for c in x.split(chunk)]
        return tuple(torch.cat(p) for p in zip(*parts))


@torch.no_grad()
def write_random_weights(path: str | os.PathLike[str], seed: int = 0, calibration_images: int = 4) -> Path:
    """Write a randomly initialised state dict with the real file's keys and shapes (for tests and benchmarks).

    Convolutions keep PyTorch's default initialisation; batch-norm scales are drawn from U(0.5, 1.5) and
    shifts from N(1, 0.1), and the running statistics are then measured on ``calibration_images`` random
    64x64 images, so every layer's output is normalised and every variance is positive. With shifts
    around 1 most ReLUs pass their input, which keeps the random network well conditioned: its float32
    features agree with a float64 evaluation to about 1e-5 relative (with shifts around 0 a random network
    is chaotic, and float32 round-off alone reaches 5e-4, which would hide the errors the tests look for).
    Pool3 features come out non-negative and of order 1; the fc weights are drawn with std 0.02 so the
    logits spread over about one unit. The features are meaningless as image statistics; the file only
    exercises the same computation.

    Args:
        path: Where to write the ``.pth`` file (``torch.save`` of a plain state dict).
        seed: Seeds initialisation and the calibration images.
        calibration_images: How many random uint8 images of ``CALIBRATION_SIDE`` pixels estimate the
            batch-norm statistics.

    Returns:
        The path written.
    """
    with torch.random.fork_rng(devices=[]):  # leave the caller's global generator untouched
        torch.manual_seed(seed)
        net = InceptionV3FID("random", [FEATURE_LAYER], pretrained=False, fast=False, fast_batch_size=None)
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.weight.copy_(torch.empty_like(bn.weight).uniform_(0.5, 1.5, generator=g))
        bn.bias.copy_(torch.empty_like(bn.bias).normal_(1.0, 0.1, generator=g))
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, the running statistics are that batch's
        bn.train()
    net(torch.randint(0, 256, (calibration_images, 3, CALIBRATION_SIDE, CALIBRATION_SIDE), dtype=torch.uint8,
                      generator=g))
    for bn in bns:
        bn.momentum = 0.1
        bn.eval()
    net.fc.weight.copy_(torch.empty_like(net.fc.weight).normal_(0.0, 0.02, generator=g))
    net.fc.bias.copy_(torch.empty_like(net.fc.bias).normal_(0.0, 0.1, generator=g))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


@dataclass(frozen=True)
class InceptionSpec(ExtractorSpec):
    """``ExtractorSpec`` for the FID Inception: weights resolved as the module docstring describes."""

    fast: bool = True  # folded batch norm + channels_last + chunks of fast_batch_size
    fast_batch_size: int | None = FAST_BATCH_SIZE
    compiled: bool = False  # torch.compile with freezing (opt-in)
    spatial: bool = True  # also extract sFID's spatial layer (SPATIAL_LAYER) in the same pass

    def weights(self) -> tuple[Path | None, str | None]:
        """(weights path, sha256), downloading into torch-fidelity's cache when online and missing."""
        path = resolve_weights()
        return path, weights_sha256(path)

    def create(self) -> nn.Module:
        """The extractor network in eval mode (``InceptionV3FID``): the distance and logits layers, and the spatial
        layer of sFID when ``spatial`` is set."""
        path, _ = self.weights()
        layers = self.layers() + ([SPATIAL_LAYER] if self.spatial else [])
        return InceptionV3FID(self.fidelity_name or FIDELITY_NAME, layers, str(path), fast=self.fast,
                              fast_batch_size=self.fast_batch_size, compiled=self.compiled)


_register_fidelity(FIDELITY_NAME, InceptionV3FID)
INCEPTION_V3_FID = InceptionSpec("inception_v3_fid", "images", FEATURE_LAYER, LOGITS_LAYER, INPUT_RESIZE,
                                 fidelity_name=FIDELITY_NAME)
EXTRACTORS.register("inception_v3_fid", INCEPTION_V3_FID, input_kind="images",
                    description=f"FID Inception-v3 (torch-fidelity {REFERENCE_NAME!r} port of TF 2015-12-05; "
                                "2048-d pool3, 1008 logits, 2023-d spatial mixed_6/conv[:7] for sFID), BN folded, channels_last, batch 8")

__all__ = ["InceptionSpec", "InceptionV3FID", "INCEPTION_V3_FID", "SPATIAL_CHANNELS", "SPATIAL_LAYER", "WEIGHTS_FILE", "WEIGHTS_URL", "fold_batch_norm",
           "OFFLINE_ENVS", "load_state_dict", "resolve_weights", "weights_file", "weights_sha256",
           "write_random_weights"]
