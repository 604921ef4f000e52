"""LPIPS (Zhang et al. 2018) between generated images: diversity, and distance to targets for translation.

LPIPS, the Learned Perceptual Image Patch Similarity of Zhang et al. 2018 ("The Unreasonable Effectiveness
of Deep Features as a Perceptual Metric", CVPR 2018), compares unit-normalised VGG16 activations at five
depths, weights the squared differences per channel with linear heads fitted to human judgements, and
averages over space. As a diversity score (used by BicycleGAN, MUNIT, DRIT and MSGAN), it is the mean
distance between random pairs of generated images: higher is more diverse, a collapsed generator gives 0.
For paired image translation, the mean distance between each output and its target measures fidelity:
lower is better.

The network is torch-fidelity's ``SampleSimilarityLPIPS`` (registered there as ``"lpips-vgg16"``; the
version its perceptual path length uses): ``LPIPSVGG16`` subclasses it and inherits its normalisation,
optional resize and forward unchanged, so distances equal torch-fidelity's for the same weights. What
differs is loading. torch-fidelity's constructor downloads and unpickles both of its files with
unrestricted unpickling (through ``torch.hub.load_state_dict_from_url`` and torchvision's
``vgg16(weights=IMAGENET1K_V1)``); ``LPIPSVGG16`` builds the same layers and loads two *local* files with
``torch.load(weights_only=True)``, strictly, and never downloads (both are found by ``ganbench.weights``; the
VGG16 file found in a cache must have the sha256 prefix in its name, ``397923af``, and one named by its variable or
argument warns when it does not):

- the LPIPS linear heads, ``weights-vgg16-lpips.pth`` (``URL_VGG16_LPIPS``, torch-fidelity's re-upload of
  ``lpips/weights/v0.1/vgg.pth``): ``$GANBENCH_LPIPS_WEIGHTS``, ``$GANBENCH_CACHE/weights/<file>``, or
  ``torch.hub.get_dir()/checkpoints/<file>`` (where torch-fidelity caches it);
- the ImageNet VGG16 backbone, torchvision's ``vgg16-397923af.pth`` (``VGG16_URL``; only its ``features.*``
  tensors are used): ``$GANBENCH_VGG16_WEIGHTS``, ``$GANBENCH_CACHE/weights/<file>``, or
  ``torch.hub.get_dir()/checkpoints/<file>`` (where torchvision caches it).

A missing file raises ``FileNotFoundError`` at once, naming the file, its URL and where to put it.
Inputs are uint8 NCHW; 1-channel images are repeated to 3 channels.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_fidelity.sample_similarity_base import SampleSimilarityBase
from torch_fidelity.sample_similarity_lpips import URL_VGG16_LPIPS, NetLinLayer, SampleSimilarityLPIPS, VGG16features
from torchvision.models.vgg import cfgs, make_layers

from ganbench.results.schema import Score
from ganbench.weights import WeightsFile, load_state_dict

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"  # torchvision VGG16_Weights.IMAGENET1K_V1
LPIPS_WEIGHTS = WeightsFile(label="LPIPS VGG16 linear-head weights", filename=Path(URL_VGG16_LPIPS).name,
                            url=URL_VGG16_LPIPS, envs=("GANBENCH_LPIPS_WEIGHTS",))
VGG16_WEIGHTS = WeightsFile(label="torchvision ImageNet VGG16 weights (LPIPS backbone)", filename=Path(VGG16_URL).name,
                            url=VGG16_URL, envs=("GANBENCH_VGG16_WEIGHTS",), hash_prefix="397923af")
FIDELITY_NAME = "lpips-vgg16"  # torch-fidelity's registration of the reference module

PathLike = str | os.PathLike[str]


def lpips_weights_available() -> bool:
    """Whether both LPIPS files (linear heads and VGG16 backbone) are on disk; never touches the network."""
    return LPIPS_WEIGHTS.local() is not None and VGG16_WEIGHTS.local() is not None


def _resolve(path: PathLike | None, spec: WeightsFile, argument: str) -> Path:
    """The file ``argument`` names, or else the one the resolver finds locally (never downloaded)."""
    return spec.resolve(download=False, named=path, named_by=argument)


class LPIPSVGG16(SampleSimilarityLPIPS):
    """torch-fidelity's ``SampleSimilarityLPIPS`` loaded from local files with ``weights_only=True``.

    ``forward(in0, in1)`` is torch-fidelity's (after repeating 1-channel inputs to 3): one distance per pair.

    Args:
        name: Name in torch-fidelity's sample-similarity registry.
        sample_similarity_resize: Resize both inputs to this side before VGG (None keeps their size).
        sample_similarity_dtype: Required input dtype ("uint8" by default; None accepts any).
        weights_path: The LPIPS linear heads (``weights-vgg16-lpips.pth``); None resolves it locally.
        vgg16_weights_path: torchvision's ``vgg16-397923af.pth`` (or any file whose ``features.*`` tensors
            are VGG16's); None resolves it locally.
        **kwargs: Ignored (torch-fidelity passes its own keyword arguments).

    Raises:
        FileNotFoundError: A weights file is missing (no download is attempted).
        pickle.UnpicklingError: A file pickles anything but tensors.
    """

    def __init__(self, name: str = FIDELITY_NAME, sample_similarity_resize: int | None = None,
                 sample_similarity_dtype: str | None = "uint8", weights_path: PathLike | None = None,
                 vgg16_weights_path: PathLike | None = None, **kwargs):
        heads_path = _resolve(weights_path, LPIPS_WEIGHTS, "weights_path")
        vgg_path = _resolve(vgg16_weights_path, VGG16_WEIGHTS, "vgg16_weights_path")
        # The layers of SampleSimilarityLPIPS.__init__, without its downloads and unrestricted unpickling.
        SampleSimilarityBase.__init__(self, name)
        self.sample_similarity_resize = sample_similarity_resize
        self.sample_similarity_dtype = sample_similarity_dtype
        self.chns = [64, 128, 256, 512, 512]
        self.L = len(self.chns)
        self.lin0 = NetLinLayer(self.chns[0], use_dropout=True)
        self.lin1 = NetLinLayer(self.chns[1], use_dropout=True)
        self.lin2 = NetLinLayer(self.chns[2], use_dropout=True)
        self.lin3 = NetLinLayer(self.chns[3], use_dropout=True)
        self.lin4 = NetLinLayer(self.chns[4], use_dropout=True)
        self.lins = [self.lin0, self.lin1, self.lin2, self.lin3, self.lin4]
        self.load_state_dict(load_state_dict(heads_path), strict=True)  # lin*.model.1.weight only, as in torch-fidelity
        self.net = vgg16_features(vgg_path)
        self.weights_paths = (heads_path, vgg_path)
        self.eval()
        self.requires_grad_(False)

    def forward(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        """LPIPS distance of each pair ``(in0[i], in1[i])``, shape (N,)."""
        return super().forward(_rgb(in0), _rgb(in1))


def vgg16_features(path: PathLike) -> VGG16features:
    """torch-fidelity's ``VGG16features`` (five slices up to relu5_3) with the ``features.*`` tensors of
    ``path`` loaded strictly and safely (memory-mapped where the file format allows, so that the 500 MB
    classifier is not read)."""
    state = load_state_dict(path)  # torchvision's 2017 file predates the zip format and is read whole
    features = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    with torch.device("meta"):  # torchvision's vgg16().features, without the classifier or any initialisation
        vgg = make_layers(cfgs["D"])
    vgg.load_state_dict(features, strict=True, assign=True)  # keys and shapes still checked
    net = VGG16features.__new__(VGG16features)  # its __init__ would download torchvision's weights
    nn.Module.__init__(net)
    net.N_slices = 5
    bounds = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]  # as in VGG16features.__init__
    for i, (lo, hi) in enumerate(bounds, start=1):
        block = nn.Sequential()
        for x in range(lo, hi):
            block.add_module(str(x), vgg[x])
        setattr(net, f"slice{i}", block)
    net.requires_grad_(False)
    return net.eval()


def _rgb(x: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"LPIPS expects NCHW images with 1 or 3 channels, got {tuple(getattr(x, 'shape', ()))}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def random_pairs(n: int, pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (a, b) of ``pairs`` random pairs of distinct images among ``n`` (as ``ms_ssim_diversity`` draws them)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(n, (pairs,), generator=g)
    b = (a + torch.randint(1, n, (pairs,), generator=g)) % n  # never the same image
    return a, b


@torch.no_grad()
def _distances(net: LPIPSVGG16, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> np.ndarray:
    out = [net(x[i:i + batch_size], y[i:i + batch_size]).double().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def _score(vals: np.ndarray, n: int, higher_is_better: bool, method: str) -> Score:
    mean = float(vals.mean())
    se = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else float("nan")
    return Score(mean, se, mean - 1.96 * se, mean + 1.96 * se, n, higher_is_better, method)


def _check_images(images: torch.Tensor, what: str) -> None:
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{what} must be uint8 NCHW images with 1 or 3 channels, got "
                         f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}")


def lpips_diversity(images: torch.Tensor, weights_path: PathLike | None = None, pairs: int = 500, seed: int = 0, *,
                    vgg16_weights_path: PathLike | None = None, resize: int | None = None, batch_size: int = 32,
                    net: LPIPSVGG16 | None = None) -> dict[str, Score]:
    """Mean LPIPS distance between random pairs of generated images (higher = more diverse).

    The diversity score of Zhu et al. 2017 (BicycleGAN) and Huang et al. 2018 (MUNIT), computed with the
    LPIPS of Zhang et al. 2018 through torch-fidelity's ``SampleSimilarityLPIPS``.

    Args:
        images: uint8 NCHW generated images (1 or 3 channels), at least 2.
        weights_path: LPIPS linear heads (``weights-vgg16-lpips.pth``); None looks in
            ``$GANBENCH_LPIPS_WEIGHTS``, ``$GANBENCH_CACHE/weights/`` and the torch hub cache.
        pairs: How many random pairs of distinct images (drawn with replacement across pairs).
        seed: Seeds the pair draw.
        vgg16_weights_path: torchvision's ``vgg16-397923af.pth``; None resolves it like ``weights_path``
            (``$GANBENCH_VGG16_WEIGHTS``).
        resize: Resize images to this side before VGG (torch-fidelity's ``sample_similarity_resize``);
            None keeps their size.
        batch_size: Pairs per forward pass.
        net: An ``LPIPSVGG16`` already built (the paths and ``resize`` are then ignored).

    Returns:
        ``{"lpips_diversity": Score}``: value is the mean over pairs, std its standard error, the interval
        mean +- 1.96 standard errors, n the number of images.

    Raises:
        ValueError: Fewer than 2 images, or not uint8 NCHW.
        FileNotFoundError: A weights file is missing (nothing is downloaded).
    """
    _check_images(images, "LPIPS diversity images")
    if len(images) < 2 or pairs < 2:
        raise ValueError(f"LPIPS diversity needs at least 2 images and 2 pairs, got {len(images)} images, "
                         f"{pairs} pairs")
    net = net if net is not None else LPIPSVGG16(sample_similarity_resize=resize, weights_path=weights_path,
                                                 vgg16_weights_path=vgg16_weights_path)
    a, b = random_pairs(len(images), pairs, seed)
    vals = _distances(net, images[a], images[b], batch_size)
    size = net.sample_similarity_resize
    return {"lpips_diversity": _score(vals, len(images), True,
                                      f"{pairs} random pairs (seed {seed}); std = standard error; LPIPS VGG16 "
                                      f"(torch-fidelity lpips-vgg16) at {f'{size}x{size}' if size else 'input size'}")}


def lpips_to_target(outputs: torch.Tensor, targets: torch.Tensor, weights_path: PathLike | None = None, *,
                    vgg16_weights_path: PathLike | None = None, resize: int | None = None, batch_size: int = 32,
                    net: LPIPSVGG16 | None = None) -> dict[str, Score]:
    """Mean LPIPS distance between each output and its target (paired translation; lower is better).

    Args:
        outputs: uint8 NCHW translated images.
        targets: uint8 NCHW ground truth, paired with ``outputs`` index by index, same shape.
        weights_path: LPIPS linear heads; None resolves it locally (see ``lpips_diversity``).
        vgg16_weights_path: VGG16 backbone; None resolves it locally.
        resize: Resize both to this side before VGG; None keeps their size.
        batch_size: Pairs per forward pass.
        net: An ``LPIPSVGG16`` already built.

    Returns:
        ``{"lpips_to_target": Score}``: mean over pairs, standard error, 95% interval, n pairs.

    Raises:
        ValueError: The shapes differ or the images are not uint8 NCHW.
        FileNotFoundError: A weights file is missing (nothing is downloaded).
    """
    _check_images(outputs, "LPIPS outputs")
    _check_images(targets, "LPIPS targets")
    if outputs.shape != targets.shape or len(outputs) < 1:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} must be paired, "
                         "same shape")
    net = net if net is not None else LPIPSVGG16(sample_similarity_resize=resize, weights_path=weights_path,
                                                 vgg16_weights_path=vgg16_weights_path)
    vals = _distances(net, outputs, targets, batch_size)
    size = net.sample_similarity_resize
    return {"lpips_to_target": _score(vals, len(outputs), False,
                                      f"{len(outputs)} output/target pairs; std = standard error; LPIPS VGG16 "
                                      f"(torch-fidelity lpips-vgg16) at {f'{size}x{size}' if size else 'input size'}")}


__all__ = ["LPIPSVGG16", "LPIPS_WEIGHTS", "VGG16_WEIGHTS", "lpips_diversity", "lpips_to_target",
           "lpips_weights_available", "random_pairs", "vgg16_features"]
