"""Super-resolution tasks (x4), built offline from real images, and the bicubic resampling they are defined by.

A super-resolution dataset is a ``Split`` of high-resolution (HR) images; the low-resolution (LR) input of each is
``downscale(hr)``, bicubic x4 downsampling rounded to 8 bits, as the SR literature makes its LR images (Ledig et al.
2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network", Sec. 3.2: "obtained the
LR images by downsampling the HR images using bicubic kernel with downsampling factor r = 4"). The trainer
(``ganbench.train.srgan``) makes the LR batch from the HR batch with the same function, so training and scoring see
the same degradation.

Bicubic here is torch's ``F.interpolate(mode="bicubic", antialias=True)``: the cubic convolution kernel with
a = -0.5, stretched by the scale when shrinking (antialiasing), which is MATLAB's ``imresize`` kernel and PIL's
``BICUBIC`` (tests/test_superres.py checks PIL's float resize gives the same numbers). What differs from MATLAB:
at the image border PIL and torch renormalise the truncated kernel where MATLAB mirrors the image, which changes
the outermost few pixels only. ``bicubic_upscale`` (the same kernel, enlarging) is the reference row every SR model
is compared with.

Tasks (HR side / LR side):

- ``sr_photos``: crops of scikit-image's colour sample photos (``PHOTOS`` of ``ganbench.data.translation``, in the
  wheel), at their native pixels, 64/16 by default (``resolution=32`` gives 32/8). Split rule as
  ``colorize_photos``: the rightmost quarter of each photo's columns is the test region; test crops tile it
  without overlap, train crops tile the rest with a stride of half a crop. Train and test share no pixel. Flat
  crops (BT.601 luma standard deviation under ``FLAT_STD`` = 2 levels: the astronaut's black background) are left
  out: bicubic reproduces a constant crop exactly, and one infinite PSNR makes the mean infinite. At 64 pixels
  none is flat (713 train, 60 test crops); at 32, 280 of 3139 train and 30 of 268 test crops are.
- ``sr_fashion``: Fashion-MNIST (Xiao et al. 2017), 60000/10000, 28x28 zero-padded to 32 (LeNet-5's input size;
  padding adds no interpolation to the HR images), 32/8, with the 10 class labels. Read from the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``), ``$GANBENCH_FASHION_MNIST`` (a directory of
  the four ``*-ubyte.gz`` files) or torchvision's ``FashionMNIST/raw`` under ``ganbench.data.data_root()``.
- ``sr_digits``: the ``mnist`` digits, 28x28 zero-padded to 32, 32/8, always available offline.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganbench.data.core import Split, _check_split, data_root, mnist
from ganbench.registry import DATASETS

SCALE = 4  # the SR factor of every task here
FASHION_DEB_DIR = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist puts the files
FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
PHOTO_RESOLUTIONS = (32, 64)  # HR crop sides of sr_photos
PADDED_SIDE = 32  # 28x28 digits and garments are zero-padded to this
FLAT_STD = 2.0  # photo crops whose luma varies less than this (std, 8-bit levels) are left out as flat


def _check_uint8(images: torch.Tensor, what: str) -> None:
    if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        got = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{what} must be uint8 NCHW images with 1 or 3 channels, got {got}")


def _bicubic(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    out = F.interpolate(images.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
    return out.round().clamp(0, 255).to(torch.uint8)


def downscale(hr: torch.Tensor, scale: int = SCALE) -> torch.Tensor:
    """LR inputs of uint8 NCHW HR images: bicubic (a = -0.5, antialiased) downsampling by ``scale``, rounded.

    Raises:
        ValueError: If the images are not uint8 NCHW or their sides are not multiples of ``scale``.
    """
    _check_uint8(hr, "HR images")
    h, w = hr.shape[-2:]
    if scale < 1 or h % scale or w % scale:
        raise ValueError(f"HR sides must be multiples of the scale {scale}, got {h}x{w}")
    return _bicubic(hr, (h // scale, w // scale))


def bicubic_upscale(lr: torch.Tensor, scale: int = SCALE) -> torch.Tensor:
    """The bicubic reference: uint8 NCHW LR images enlarged ``scale`` times with the same kernel, rounded."""
    _check_uint8(lr, "LR images")
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    return _bicubic(lr, (lr.shape[-2] * scale, lr.shape[-1] * scale))


def pad_to(images: torch.Tensor, side: int = PADDED_SIDE) -> torch.Tensor:
    """Zero-pad uint8 NCHW images equally on every side to ``side`` x ``side``."""
    h, w = images.shape[-2:]
    if h > side or w > side or (side - h) % 2 or (side - w) % 2:
        raise ValueError(f"cannot pad {h}x{w} images symmetrically to {side}x{side}")
    p, q = (side - h) // 2, (side - w) // 2
    return F.pad(images, (q, q, p, p))


def _padded_resolution(name: str, resolution: int | None) -> None:
    if resolution not in (None, PADDED_SIDE):
        raise ValueError(f"{name} is {PADDED_SIDE}x{PADDED_SIDE} (28x28 zero-padded) with {PADDED_SIDE // SCALE}x"
                         f"{PADDED_SIDE // SCALE} LR inputs; resolution must be None or {PADDED_SIDE}, got "
                         f"{resolution}")


# ------------------------------------------------------------------------------------------------- photos


def photo_crops(split: str, side: int, min_std: float = FLAT_STD) -> tuple[torch.Tensor, list[str]]:
    """uint8 (N, 3, side, side) crops of the sample photos by the split rule of ``sr_photos``, and their origins
    ("photo@y,x"); crops whose BT.601 luma has a standard deviation below ``min_std`` are left out."""
    from ganbench.data.translation import LUMA, PHOTOS, TEST_COLUMNS, _photo

    crops, origins = [], []
    stride = side if split == "test" else side // 2
    for name in PHOTOS:
        img = _photo(name)
        h, w, _ = img.shape
        boundary = w - int(w * TEST_COLUMNS)
        x_lo, x_hi = (boundary, w) if split == "test" else (0, boundary)
        for y in range(0, h - side + 1, stride):
            for x in range(x_lo, x_hi - side + 1, stride):
                crop = img[y:y + side, x:x + side]
                if (crop.astype(np.float64) @ np.asarray(LUMA)).std() >= min_std:
                    crops.append(crop)
                    origins.append(f"{name}@{y},{x}")
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous(), origins


@DATASETS.register("sr_photos", kind="images", task="super_resolution", channels=3, native_resolution=64,
                   scale=SCALE, description="x4 SR: 64x64 crops of scikit-image's colour photos (LR 16x16); "
                                            "resolution=32 gives 32/8")
def sr_photos(split: str = "train", resolution: int | None = None) -> Split:
    """HR crops of scikit-image's colour sample photos; see the module docstring for the split rule.

    Args:
        split: "train" or "test".
        resolution: HR crop side, 64 (default) or 32.
    """
    _check_split(split)
    side = resolution or 64
    if side not in PHOTO_RESOLUTIONS:
        raise ValueError(f"sr_photos crops are {' or '.join(map(str, PHOTO_RESOLUTIONS))} pixels, got resolution "
                         f"{resolution}")
    from ganbench.data.translation import PHOTOS

    crops, _ = photo_crops(split, side)
    return Split("sr_photos", split, crops, None, f"none ({side}px native crops)",
                 f"skimage.data {', '.join(PHOTOS)}")


# ------------------------------------------------------------------------------------------- fashion / digits


def _idx(path: Path, kind: str) -> np.ndarray:
    """Parse one gzip'd IDX file (LeCun's MNIST format): images (N, H, W) or labels (N,) as uint8."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    want = 2051 if kind == "images" else 2049
    if magic != want:
        raise ValueError(f"{str(path)!r} is not an IDX {kind} file (magic {magic}, expected {want})")
    if kind == "images":
        n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        data = np.frombuffer(raw, np.uint8, n * h * w, offset=16).reshape(n, h, w)
    else:
        n = int.from_bytes(raw[4:8], "big")
        data = np.frombuffer(raw, np.uint8, n, offset=8)
    return data


def fashion_mnist_dirs() -> list[Path]:
    """Where Fashion-MNIST's ``*-ubyte.gz`` files are looked for, in order."""
    named = os.environ.get("GANBENCH_FASHION_MNIST", "").strip()
    return ([Path(named).expanduser()] if named else []) + [FASHION_DEB_DIR, data_root() / "FashionMNIST" / "raw"]


def _fashion_dir() -> Path:
    for d in fashion_mnist_dirs():
        if all((d / f).is_file() for files in FASHION_FILES.values() for f in files):
            return d
    raise FileNotFoundError(
        "Fashion-MNIST not found: install the Debian package dataset-fashion-mnist (apt-get install -y "
        f"dataset-fashion-mnist puts it under {FASHION_DEB_DIR}), or set GANBENCH_FASHION_MNIST to a directory holding "
        f"{', '.join(f for files in FASHION_FILES.values() for f in files)}. Looked in: "
        f"{', '.join(str(d) for d in fashion_mnist_dirs())}. The sr_digits task needs no download.")


@DATASETS.register("sr_fashion", kind="images", task="super_resolution", channels=1, native_resolution=PADDED_SIDE,
                   classes=10, scale=SCALE,
                   description="x4 SR: Fashion-MNIST 28x28 zero-padded to 32 (LR 8x8); Debian dataset-fashion-mnist")
def sr_fashion(split: str = "train", resolution: int | None = None) -> Split:
    """Fashion-MNIST garments, zero-padded to 32x32, with their class labels.

    Raises:
        FileNotFoundError: Naming the Debian package ``dataset-fashion-mnist`` when the files are not found.
    """
    _check_split(split)
    _padded_resolution("sr_fashion", resolution)
    root = _fashion_dir()
    image_file, label_file = FASHION_FILES[split]
    images, labels = _idx(root / image_file, "images"), _idx(root / label_file, "labels")
    if len(images) != len(labels):
        raise ValueError(f"{str(root / image_file)!r} holds {len(images)} images but {str(root / label_file)!r} "
                         f"{len(labels)} labels")
    hr = pad_to(torch.from_numpy(images.copy()).unsqueeze(1))
    return Split("sr_fashion", split, hr, torch.from_numpy(labels.astype(np.int64)), "none (28x28 zero-padded to 32)",
                 f"Fashion-MNIST {str(root)}")


@DATASETS.register("sr_digits", kind="images", task="super_resolution", channels=1, native_resolution=PADDED_SIDE,
                   classes=10, scale=SCALE, description="x4 SR: mnist digits 28x28 zero-padded to 32 (LR 8x8)")
def sr_digits(split: str = "train", resolution: int | None = None, source: str = "auto") -> Split:
    """``mnist`` digits (``source`` as there), zero-padded to 32x32, with their labels."""
    _padded_resolution("sr_digits", resolution)
    base = mnist(split, None, source)
    return Split("sr_digits", split, pad_to(base.data), base.labels, "none (28x28 zero-padded to 32)", base.source)


__all__ = ["FASHION_DEB_DIR", "SCALE", "bicubic_upscale", "downscale", "fashion_mnist_dirs", "pad_to", "photo_crops",
           "sr_digits", "sr_fashion", "sr_photos"]
