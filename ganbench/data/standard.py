"""The datasets GAN papers report on, each read from its own published on-disk format.

Every loader returns a ``ganbench.data.core.Split`` (uint8 NCHW images, int64 labels where the set has classes)
and takes ``root`` (a directory searched first), then ``ganbench.data.core.data_root()`` (``$GANBENCH_DATA``).
Under each root the files are looked for in torchvision's layout where torchvision reads the set, so a root
that torchvision downloaded into works as it is; the sets torchvision does not read live in a folder named
after the set (``svhn/``, ``lsun/``, ``ffhq/``, ``afhq/``).

==================  ===========================================================================================
name                what is read (under each root)
==================  ===========================================================================================
``cifar10``         ``cifar-10-batches-py/data_batch_1..5`` (train), ``test_batch`` (test): the Python pickles of
                    cifar-10-python.tar.gz, each a dict of ``data`` (N x 3072 uint8, 1024 R then G then B values,
                    rows of 32) and ``labels``. Read with a restricted unpickler (below).
``cifar100``        ``cifar-100-python/train``, ``test``; labels are ``fine_labels`` (100 classes).
``stl10``           ``stl10_binary/{train,test,unlabeled}_X.bin``: raw uint8, each image 3 x 96 x 96 stored
                    column-major (channel, then column, then row), and ``{train,test}_y.bin``: one byte per
                    image, classes 1..10 (stored as 0..9). ``unlabeled`` has no labels.
``svhn``            ``train_32x32.mat``, ``test_32x32.mat``, ``extra_32x32.mat`` (torchvision puts them in the
                    root itself; ``svhn/`` is searched too): MATLAB files with ``X`` (32 x 32 x 3 x N) and
                    ``y`` (N x 1, 1..10, where 10 is the digit 0; stored as the digit).
``celeba``          ``celeba/img_align_celeba/*.jpg`` (178 x 218) and ``celeba/list_eval_partition.txt``
                    (0 train, 1 valid, 2 test), as torchvision. Default: the centre 178 x 178 square (rows 20 to
                    197), resized bilinearly to 64 x 64; ``crop=108`` takes the centre 108 x 108 square that
                    DCGAN-tensorflow (carpedm20) and BEGAN use instead. ``resize`` records the crop.
``lsun_<category>`` the LMDB ``lsun/<category>_<split>_lmdb`` (or ``<category>_<split>_lmdb`` in the root, as
                    torchvision) when the ``lmdb`` package is importable; the object category ``cat`` is one
                    LMDB ``lsun/cat`` with no val split. Otherwise, or when no LMDB is found, the folder LSUN's
                    ``data.py export`` writes, ``lsun/<category>/`` (train; ``lsun/<category>_val/`` for val),
                    searched recursively for images.
``fashion_mnist``   the four ``*-ubyte.gz`` IDX files in ``FashionMNIST/raw`` under ``root``, ``root`` itself,
                    then where ``ganbench.data.superres.fashion_mnist_dirs()`` looks ($GANBENCH_FASHION_MNIST,
                    Debian's ``dataset-fashion-mnist``, torchvision's ``FashionMNIST/raw`` under data_root()).
``ffhq``            ``ffhq/images1024x1024/`` (or ``ffhq/thumbnails128x128/``; either folder directly under the
                    root too): the numbered PNGs ``00000/00000.png`` .. ``69000/69999.png``. One split,
                    ``train``, holding all 70000 images: the NVlabs protocol scores against all of them.
``afhq``            ``afhq/{train,val}/{cat,dog,wild}/*.png|jpg``; labels cat 0, dog 1, wild 2.
==================  ===========================================================================================

Resizing: ``resolution`` resizes with ``ganbench.data.core.resize_images`` (bilinear, antialiased when shrinking).
LSUN images (short side 256, long side varying) are first centre-cropped to a square on their short side, as
StyleGAN's ``dataset_tool.py --transform=center-crop`` does; FFHQ and AFHQ are square already, and a non-square
file among them is cropped the same way. Decoding follows the reference loaders (torchvision's ``pil_loader``,
StyleGAN's ``dataset_tool.py``): every image is converted to RGB.

Downloads, when files are missing: CIFAR-10, CIFAR-100, STL-10, SVHN and Fashion-MNIST are downloaded from the
URLs torchvision uses and checked against the md5 sums torchvision publishes (``DOWNLOADS``), with a progress bar
on stderr, into the first root (``root``, else data_root()), unless ganbench is offline (``GANBENCH_OFFLINE`` or
``HF_HUB_OFFLINE`` set, or the host does not answer within half a second: see ``ganbench.weights``) or
``download=False``. CelebA, LSUN, FFHQ and AFHQ are never downloaded: no
checksum is published for their archives (CelebA and FFHQ are on Google Drive behind quotas, LSUN's server and
AFHQ's Dropbox publish none), so the error says where to get them. A set that is missing and not downloaded
raises ``FileNotFoundError`` naming every path looked at and how to get the files, within a second offline.

Hugging Face Hub image datasets are not registry names (names are ``[a-z0-9_]+``): ``load_hub_dataset`` reads
``hf:OWNER/NAME[:split]`` specs, and ``resolve_dataset`` maps either a registered name or such a spec to a loader.

Safety: the CIFAR batches are pickles. They are read by ``_BatchUnpickler``, which resolves only the three globals
a pickled numpy array needs (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``) and
refuses any other (``os.system``, ``builtins.eval``, ...) before anything is called, so reading a hostile file
executes nothing. SVHN's ``.mat`` files are parsed by scipy (data only); LMDB values are decoded as images.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import sys
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from ganbench.data.core import IMAGE_SUFFIXES, Split, _check_split, data_root, resize_images
from ganbench.data.superres import FASHION_FILES, _idx, fashion_mnist_dirs
from ganbench.data.translation import _cell_image, _decode, _open, _single_channel
from ganbench.registry import DATASETS

# ------------------------------------------------------------------------------------------ finding and fetching


@dataclass(frozen=True)
class Download:
    """One file torchvision downloads for a dataset, with the md5 torchvision publishes for it."""

    url: str  # where torchvision downloads it from
    md5: str  # the md5 torchvision checks it against (the dataset class's tgz_md5 / md5 fields)
    extract: bool  # True: a .tar.gz unpacked into the root; False: a file kept as it is


DOWNLOADS: dict[str, tuple[Download, ...]] = {
    "cifar10": (Download("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                         "c58f30108f718f92721af3b95e74349a", True),),
    "cifar100": (Download("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                          "eb9058c3a382ffc7106e4002c42a8d85", True),),
    "stl10": (Download("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                       "91f7769df0f17e558f3565bffb0c7dfb", True),),
    "svhn/train": (Download("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                            "e26dedcc434d2e4c54c9b2d4a06d8373", False),),
    "svhn/test": (Download("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                           "eb5a983be6a315427106f1b164d9cef3", False),),
    "svhn/extra": (Download("http://ufldl.stanford.edu/housenumbers/extra_32x32.mat",
                            "a93ce644f1a588dc4d68dda5feec44a7", False),),
    "fashion_mnist/train": (
        Download("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
                 "8d4fb7e6c68d591d4c3dfef9ec88bf0d", False),
        Download("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz",
                 "25c81989df183df01b3e8a0aad5dffbe", False)),
    "fashion_mnist/test": (
        Download("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz",
                 "bef4ecab320f06d8554ea6380940ec79", False),
        Download("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
                 "bb300cfdad3c16e7a12a480ee83cd310", False)),
}


def search_roots(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The directories a loader searches, in order: ``root`` when given, then ``data_root()``."""
    roots = [Path(root).expanduser()] if root is not None else []
    default = data_root().expanduser()
    return roots + ([default] if default not in roots else [])


def _not_found(what: str, expected: Iterable[Path], reason: str, how: str) -> FileNotFoundError:
    listed = "\n  ".join(dict.fromkeys(str(p) for p in expected))
    return FileNotFoundError(f"{what} not found ({reason}). Looked for:\n  {listed}\nTo get it: {how}")


def _offline_reason(url: str) -> str | None:
    """Why ``url`` cannot be downloaded now, or None when the host answers."""
    # imported here: foundation pulls in torch-fidelity and torchvision, which reading local files never needs
    from ganbench.weights import OFFLINE_ENVS, PROBE_TIMEOUT_S, host_reachable, offline_by_env

    if offline_by_env():
        return "offline: " + ", ".join(f"{n}={os.environ.get(n, '')!r}" for n in OFFLINE_ENVS)
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not host_reachable(parts.hostname or "", port):
        return f"offline: {parts.hostname}:{port} did not answer within {PROBE_TIMEOUT_S} s"
    return None


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(item: Download, into: Path) -> None:
    """Download ``item`` into ``into`` with a progress bar on stderr, check torchvision's md5, unpack archives.

    Raises:
        OSError: The md5 differs from torchvision's (the file is deleted, nothing is unpacked).
    """
    into.mkdir(parents=True, exist_ok=True)
    name = Path(urlparse(item.url).path).name
    part = into / f".{name}.part"  # renamed or unpacked only once the md5 matches
    print(f"downloading {item.url} to {into}", file=sys.stderr)
    try:
        torch.hub.download_url_to_file(item.url, str(part), progress=True)
    except OSError as e:  # urllib's URLError and HTTPError are OSErrors; say which file and where it was going
        part.unlink(missing_ok=True)
        raise OSError(f"downloading {item.url} into {str(into)!r} failed: {e}") from e
    got = _md5(part)
    if got != item.md5:
        part.unlink()
        raise OSError(f"{item.url} downloaded with md5 {got}, but torchvision publishes {item.md5}; the file was "
                      f"deleted (a truncated or altered download); try again")
    if item.extract:
        with tarfile.open(part, "r:gz") as tar:
            tar.extractall(into, filter="data")  # "data": no absolute paths, links out of ``into`` or devices
        part.unlink()
    else:
        part.replace(into / name)


def _obtain(what: str, find: Callable[[], object | None], expected: Callable[[], list[Path]], key: str | None,
            into: Path, how: str, download: bool):
    """What ``find`` returns, downloading the ``DOWNLOADS[key]`` files into ``into`` first when it returns None
    and downloading is possible; otherwise a ``FileNotFoundError`` naming ``expected()`` and ``how``."""
    found = find()
    if found is not None:
        return found
    items = DOWNLOADS.get(key, ()) if key is not None else ()
    if not items:
        raise _not_found(what, expected(), "no checksum is published for it, so ganbench never downloads it", how)
    if not download:
        raise _not_found(what, expected(), "download=False", how)
    reason = _offline_reason(items[0].url)
    if reason is not None:
        raise _not_found(what, expected(), reason, how)
    for item in items:
        _fetch(item, into)
    found = find()
    if found is None:
        raise _not_found(what, expected(), f"downloaded into {str(into)!r}, but the files are still missing", how)
    return found


def _torchvision_how(key: str, into: str) -> str:
    urls = ", ".join(f"{d.url} (md5 {d.md5})" for d in DOWNLOADS[key])
    first = DOWNLOADS[key][0]
    unpack = (f" and unpack it there (tar xzf {Path(urlparse(first.url).path).name} -C {into})" if first.extract
              else "")
    return (f"download {urls} (torchvision's URL and published md5) into {into}{unpack}, or run online once and "
            f"ganbench downloads and checks it")


# ------------------------------------------------------------------------------------------------ image helpers


def _center_square(arr: np.ndarray) -> np.ndarray:
    """The centre square of an HWC image on its short side (the image itself when square)."""
    h, w = arr.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return arr[top:top + s, left:left + s]


def _rgb_file(path: Path) -> np.ndarray:
    """An image file as HWC uint8 RGB (converted as torchvision's ``pil_loader`` does); errors name the file."""
    with _open(path, f"file {str(path)!r}") as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _stack_images(items: Iterable[tuple[str, np.ndarray]], count: int, resolution: int | None,
                  crop: Callable[[np.ndarray], np.ndarray] | None) -> tuple[torch.Tensor, bool, bool]:
    """uint8 NCHW from ``count`` (where, HWC array) items, each cropped by ``crop`` and resized to ``resolution``.

    Images are resized one by one so that only the output is held in memory. Returns the images and whether any
    image was cropped and any resized.

    Raises:
        ValueError: Without ``resolution``, an image whose size differs from the first (names both).
    """
    out: torch.Tensor | None = None
    first = ""
    cropped = resized = False
    n = 0
    for where, arr in items:
        if crop is not None:
            square = crop(arr)
            cropped |= square.shape != arr.shape
            arr = square
        # PIL's arrays are read-only; torch wants writable memory (copied only when needed)
        t = torch.from_numpy(np.require(arr, requirements=["C", "W"])).permute(2, 0, 1).unsqueeze(0)
        t, mode = resize_images(t, resolution)
        resized |= mode != "none"
        if out is None:
            out, first = torch.empty((count, *t.shape[1:]), dtype=torch.uint8), where
        elif t.shape[1:] != out.shape[1:]:
            raise ValueError(f"{where} is {t.shape[-1]}x{t.shape[-2]} after cropping, but {first} (the first image) "
                             f"is {out.shape[-1]}x{out.shape[-2]}; pass a resolution to resize them to one size")
        out[n] = t[0]
        n += 1
        if n == count:
            break  # before the next item is decoded
    if hasattr(items, "close"):
        items.close()  # a generator holding a file or an LMDB transaction releases it now
    if out is None:
        raise ValueError(f"no images to read (expected {count})")
    return out[:n], cropped, resized


def _resize_word(cropped: bool, resized: bool, crop: str = "center_crop") -> str:
    parts = ([crop] if cropped else []) + (["bilinear"] if resized else [])
    return "+".join(parts) or "none"


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")


# --------------------------------------------------------------------------------------------------------- CIFAR


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch and nothing else: dicts, lists, strings, ints and numpy arrays.

    ``find_class`` is the only way a pickle reaches a callable; it returns the three objects a pickled numpy array
    names and refuses every other name before it is imported or called. Strings written by Python 2 (the published
    batches) are decoded as latin-1, as torchvision does, which numpy needs to rebuild the array bytes.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def __init__(self, file, where: str):
        super().__init__(file, encoding="latin1")
        self.where = where

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"{self.where} names {module}.{name}; a CIFAR batch holds only numpy arrays, dicts, lists, strings "
                f"and ints (allowed: {', '.join(sorted(f'{m}.{n}' for m, n in self.ALLOWED))}), so it was refused "
                f"and nothing in it was executed")
        return _numpy_reconstruct() if name == "_reconstruct" else getattr(np, name)


def read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR python batch, unpickled safely.

    Raises:
        pickle.UnpicklingError: The file names a callable other than numpy's array reconstruction.
        ValueError: The file is not a CIFAR batch dict with uint8 ``data`` (N x 3072) and N labels ``label_key``.
    """
    where = f"CIFAR batch {str(path)!r}"
    with open(path, "rb") as f:
        try:
            batch = _BatchUnpickler(f, where).load()
        except pickle.UnpicklingError:
            raise
        except Exception as e:  # truncated or not a pickle at all
            raise ValueError(f"{where} is not a readable pickle: {type(e).__name__}: {e}") from e
    if not isinstance(batch, dict):
        raise ValueError(f"{where} holds a {type(batch).__name__}, expected a dict with 'data' and {label_key!r}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{where}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
    if labels is None:
        raise ValueError(f"{where} has no {label_key!r} entry (keys: {sorted(map(str, batch))})")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: {label_key!r} must be {len(data)} integers, got {labels.dtype} {labels.shape}")
    # 1024 red values, then green, then blue, each plane row-major: exactly C, H, W
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


@dataclass(frozen=True)
class _Cifar:
    name: str
    title: str
    folder: str  # the folder the archive unpacks to
    files: dict[str, tuple[str, ...]]  # split -> batch files
    label_key: str
    classes: int


_CIFARS = {
    "cifar10": _Cifar("cifar10", "CIFAR-10", "cifar-10-batches-py",
                      {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}, "labels", 10),
    "cifar100": _Cifar("cifar100", "CIFAR-100", "cifar-100-python", {"train": ("train",), "test": ("test",)},
                       "fine_labels", 100),
}


def _load_cifar(spec: _Cifar, split: str, resolution: int | None, root, download: bool) -> Split:
    _check_split(split)
    roots = search_roots(root)
    files = spec.files[split]

    def find() -> Path | None:
        return next((r / spec.folder for r in roots if all((r / spec.folder / f).is_file() for f in files)), None)

    folder = _obtain(spec.title, find, lambda: [r / spec.folder / f for r in roots for f in files], spec.name,
                     roots[0], _torchvision_how(spec.name, str(roots[0])), download)
    parts = [read_cifar_batch(folder / f, spec.label_key) for f in files]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    if labels.min() < 0 or labels.max() >= spec.classes:
        raise ValueError(f"{spec.title} labels in {str(folder)!r} must lie in 0..{spec.classes - 1}, got "
                         f"{int(labels.min())}..{int(labels.max())}")
    images, mode = resize_images(images, resolution)
    return Split(spec.name, split, images, labels, mode, f"{spec.title} python batches in {str(folder.resolve())}")


@DATASETS.register("cifar10", kind="images", channels=3, native_resolution=32, classes=10,
                   description="CIFAR-10 (50000 train / 10000 test, 32x32): torchvision's python batches, md5-checked "
                               "download")
def cifar10(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
            download: bool = True) -> Split:
    """CIFAR-10 from ``cifar-10-batches-py/`` (the python pickles), read without executing code.

    Args:
        split: "train" (``data_batch_1`` .. ``5``) or "test" (``test_batch``).
        resolution: Square output side (bilinear); 32 natively.
        root: Directory searched before ``data_root()``; downloads go here when given.
        download: Download the archive (md5-checked) when missing and online.

    Raises:
        FileNotFoundError: Missing and not downloadable: names every path looked for and the URL.
        pickle.UnpicklingError: A batch names a callable other than numpy's array reconstruction.
    """
    return _load_cifar(_CIFARS["cifar10"], split, resolution, root, download)


@DATASETS.register("cifar100", kind="images", channels=3, native_resolution=32, classes=100,
                   description="CIFAR-100 (50000 train / 10000 test, 32x32, fine labels): torchvision's python "
                               "pickles, md5-checked download")
def cifar100(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
             download: bool = True) -> Split:
    """CIFAR-100 from ``cifar-100-python/{train,test}`` with its 100 fine labels; arguments as ``cifar10``."""
    return _load_cifar(_CIFARS["cifar100"], split, resolution, root, download)


# --------------------------------------------------------------------------------------------------------- STL-10

STL_SIDE = 96
STL_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin"),
             "unlabeled": ("unlabeled_X.bin", None)}


def read_stl10(images_file: Path, labels_file: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, 3, 96, 96) uint8 and labels 0..9 (or None) from STL-10's binary files.

    Raises:
        ValueError: A file size that is not a whole number of images, labels outside 1..10, or counts that differ.
    """
    raw = np.fromfile(images_file, dtype=np.uint8)
    per_image = 3 * STL_SIDE * STL_SIDE
    if raw.size == 0 or raw.size % per_image:
        raise ValueError(f"STL-10 image file {str(images_file)!r} holds {raw.size} bytes, not a positive multiple of "
                         f"{per_image} (3 x 96 x 96 per image)")
    # each image is stored column-major: channel, then column, then row; swap the last two axes to get C, H, W
    images = raw.reshape(-1, 3, STL_SIDE, STL_SIDE).transpose(0, 1, 3, 2)
    if labels_file is None:
        return np.ascontiguousarray(images), None
    stored = np.fromfile(labels_file, dtype=np.uint8)
    if len(stored) != len(images):
        raise ValueError(f"STL-10 label file {str(labels_file)!r} holds {len(stored)} labels, but "
                         f"{str(images_file)!r} holds {len(images)} images")
    if len(stored) and (stored.min() < 1 or stored.max() > 10):
        raise ValueError(f"STL-10 label file {str(labels_file)!r} must hold classes 1..10, found "
                         f"{int(stored.min())}..{int(stored.max())}")
    return np.ascontiguousarray(images), stored.astype(np.int64) - 1


@DATASETS.register("stl10", kind="images", channels=3, native_resolution=STL_SIDE, classes=10,
                   description="STL-10 (5000 train / 8000 test / 100000 unlabeled, 96x96): torchvision's binary "
                               "files, md5-checked download")
def stl10(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
          download: bool = True) -> Split:
    """STL-10 from ``stl10_binary/<split>_X.bin`` and ``<split>_y.bin`` (GAN papers mostly use ``unlabeled``, 48x48).

    Args:
        split: "train", "test" or "unlabeled" (no labels).
        resolution: Square output side (bilinear); 96 natively.
        root: Directory searched before ``data_root()``; downloads go here when given.
        download: Download the archive (md5-checked, 2.6 GB) when missing and online.

    Raises:
        FileNotFoundError: Missing and not downloadable: names every path looked for and the URL.
    """
    _check_split(split, tuple(STL_FILES))
    roots = search_roots(root)
    names = [f for f in STL_FILES[split] if f is not None]

    def find() -> Path | None:
        return next((r / "stl10_binary" for r in roots if all((r / "stl10_binary" / f).is_file() for f in names)),
                    None)

    folder = _obtain("STL-10", find, lambda: [r / "stl10_binary" / f for r in roots for f in names], "stl10",
                     roots[0], _torchvision_how("stl10", str(roots[0])), download)
    x_file, y_file = STL_FILES[split]
    images, labels = read_stl10(folder / x_file, folder / y_file if y_file else None)
    data, mode = resize_images(torch.from_numpy(images), resolution)
    return Split("stl10", split, data, None if labels is None else torch.from_numpy(labels), mode,
                 f"STL-10 binary files in {str(folder.resolve())}")


# ----------------------------------------------------------------------------------------------------------- SVHN

SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}


def read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and digit labels 0..9 from one SVHN cropped-digits ``.mat`` file.

    Raises:
        ValueError: Not a MATLAB file with ``X`` (32 x 32 x 3 x N uint8) and ``y`` (N labels in 1..10).
    """
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for a file that is not MATLAB v4-v7.2
        raise ValueError(f"SVHN file {str(path)!r} is not a readable MATLAB file: {type(e).__name__}: {e}") from e
    x, y = mat.get("X"), mat.get("y")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"SVHN file {str(path)!r}: 'X' must be uint8 of shape (32, 32, 3, N), got {got}")
    if not isinstance(y, np.ndarray) or y.size != x.shape[3]:
        got = y.shape if isinstance(y, np.ndarray) else type(y).__name__
        raise ValueError(f"SVHN file {str(path)!r}: 'y' must hold {x.shape[3]} labels, got {got}")
    y = y.reshape(-1)
    if np.any(y != np.round(y)) or y.min() < 1 or y.max() > 10:
        raise ValueError(f"SVHN file {str(path)!r}: 'y' must hold whole numbers 1..10, found {y.min()}..{y.max()}")
    labels = y.astype(np.int64) % 10  # the files store the digit 0 as class 10
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), labels  # H, W, C, N -> N, C, H, W


@DATASETS.register("svhn", kind="images", channels=3, native_resolution=32, classes=10,
                   description="SVHN cropped digits (73257 train / 26032 test / 531131 extra, 32x32): the .mat files, "
                               "md5-checked download")
def svhn(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
         download: bool = True) -> Split:
    """SVHN cropped digits from ``<split>_32x32.mat`` in the root (torchvision's place) or in ``<root>/svhn/``.

    Args:
        split: "train", "test" or "extra".
        resolution: Square output side (bilinear); 32 natively.
        root: Directory searched before ``data_root()``; downloads go here when given.
        download: Download the split's file (md5-checked) when missing and online.

    Raises:
        FileNotFoundError: Missing and not downloadable: names every path looked for and the URL.
    """
    _check_split(split, tuple(SVHN_FILES))
    roots = search_roots(root)
    name = SVHN_FILES[split]
    candidates = [p for r in roots for p in (r / name, r / "svhn" / name)]
    path = _obtain("SVHN", lambda: next((p for p in candidates if p.is_file()), None), lambda: candidates,
                   f"svhn/{split}", roots[0], _torchvision_how(f"svhn/{split}", str(roots[0])), download)
    images, labels = read_svhn(path)
    data, mode = resize_images(torch.from_numpy(images), resolution)
    return Split("svhn", split, data, torch.from_numpy(labels), mode, f"SVHN {str(path.resolve())}")


# --------------------------------------------------------------------------------------------------------- CelebA

CELEBA_SIZE = (178, 218)  # width, height of every img_align_celeba file
CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2, "all": None}
CELEBA_HOW = ("CelebA is on Google Drive behind download quotas and ganbench does not fetch it: download "
              "img_align_celeba.zip and Eval/list_eval_partition.txt from https://mmlab.ie.cuhk.edu.hk/projects/"
              "CelebA.html (or run torchvision.datasets.CelebA(ROOT, download=True)) and unpack them into "
              "ROOT/celeba/")


def _celeba_partition(path: Path) -> list[tuple[str, int]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2") or not parts[0].lower().endswith(".jpg"):
            raise ValueError(f"{str(path)!r} line {n}: expected '<image>.jpg <0|1|2>', got {line!r}")
        rows.append((parts[0], int(parts[1])))
    if not rows:
        raise ValueError(f"{str(path)!r} lists no images")
    return rows


@DATASETS.register("celeba", kind="images", channels=3, native_resolution=64,
                   description="CelebA aligned faces (162770 train / 19867 valid / 19962 test): centre 178x178 crop "
                               "of 178x218, bilinear to 64; manual download")
def celeba(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
           crop: int = 178, limit: int | None = None) -> Split:
    """CelebA's aligned faces, ``celeba/img_align_celeba/*.jpg``, split by ``celeba/list_eval_partition.txt``.

    Each 178x218 image is cropped to its centre ``crop`` x ``crop`` square (178: rows 20..197, the whole width;
    108: rows 55..162, columns 35..142, DCGAN-tensorflow's face crop), then resized bilinearly to ``resolution``
    (64 unless given). ``resize`` records the crop, e.g. ``center_crop178+bilinear``.

    Args:
        split: "train", "valid", "test" (partition 0, 1, 2) or "all".
        resolution: Square output side; None gives 64. ``resolution == crop`` keeps the crop's pixels.
        root: Directory searched before ``data_root()``.
        crop: Side of the centre square cropped from each 178x218 image (at most 178).
        limit: Read only the first ``limit`` images of the split (in the partition file's order).

    Raises:
        FileNotFoundError: The folder or partition file is missing (names every path; never downloaded), or an
            image the partition file lists.
        ValueError: A bad crop, a malformed partition line, or an image that is not 178x218 (names it).
    """
    _check_split(split, tuple(CELEBA_SPLITS))
    _check_limit(limit)
    if not isinstance(crop, int) or not 4 <= crop <= min(CELEBA_SIZE):
        raise ValueError(f"crop must be an integer side between 4 and {min(CELEBA_SIZE)} pixels, got {crop!r}")
    roots = search_roots(root)

    def find() -> Path | None:
        return next((r / "celeba" for r in roots if (r / "celeba" / "img_align_celeba").is_dir()
                     and (r / "celeba" / "list_eval_partition.txt").is_file()), None)

    expected = [r / "celeba" / p for r in roots for p in ("img_align_celeba/", "list_eval_partition.txt")]
    folder = _obtain("CelebA", find, lambda: expected, None, roots[0], CELEBA_HOW, False)
    rows = _celeba_partition(folder / "list_eval_partition.txt")
    wanted = CELEBA_SPLITS[split]
    names = [name for name, part in rows if wanted is None or part == wanted][:limit]
    if not names:
        raise ValueError(f"{str(folder / 'list_eval_partition.txt')!r} assigns no image to split {split!r}")
    w, h = CELEBA_SIZE
    top, left = (h - crop) // 2, (w - crop) // 2

    def items() -> Iterator[tuple[str, np.ndarray]]:
        for name in names:
            path = folder / "img_align_celeba" / name
            if not path.is_file():
                raise FileNotFoundError(f"CelebA image {str(path)!r}, listed in list_eval_partition.txt, is missing")
            arr = _rgb_file(path)
            if arr.shape[:2] != (h, w):
                raise ValueError(f"CelebA image {str(path)!r} is {arr.shape[1]}x{arr.shape[0]}; img_align_celeba "
                                 f"images are {w}x{h}")
            yield f"CelebA image {str(path)!r}", arr[top:top + crop, left:left + crop]

    images, _, resized = _stack_images(items(), len(names), resolution or 64, None)
    return Split("celeba", split, images, None, f"center_crop{crop}" + ("+bilinear" if resized else ""),
                 f"CelebA img_align_celeba in {str(folder.resolve())}")


# ----------------------------------------------------------------------------------------------------------- LSUN

LSUN_CATEGORIES = ("bedroom", "church_outdoor", "cat", "tower", "bridge", "conference_room", "dining_room", "kitchen",
                   "living_room", "restaurant", "classroom")  # the scenes GAN papers use, and the object "cat"
LSUN_OBJECTS = ("cat",)  # object categories ship as one LMDB named after the category, train only
LSUN_RESOLUTION = 256  # LSUN images are scaled so that their short side is 256


def _lmdb_available() -> bool:
    try:
        import lmdb  # noqa: F401
    except ImportError:
        return False
    return True


def _lsun_lmdb_candidates(category: str, split: str, roots: list[Path]) -> list[Path]:
    if category in LSUN_OBJECTS:
        return [p for r in roots for p in (r / "lsun" / category, r / category)]
    return [p for r in roots for p in (r / "lsun" / f"{category}_{split}_lmdb", r / f"{category}_{split}_lmdb")]


def _lsun_folder_candidates(category: str, split: str, roots: list[Path]) -> list[Path]:
    name = category if split == "train" else f"{category}_val"
    return [r / "lsun" / name for r in roots]


def _is_lmdb(path: Path) -> bool:
    return (path / "data.mdb").is_file()


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _lsun_lmdb_items(path: Path) -> tuple[int, Iterator[tuple[str, np.ndarray]]]:
    import lmdb

    env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=1)
    count = env.stat()["entries"]

    def items() -> Iterator[tuple[str, np.ndarray]]:
        try:
            with env.begin(write=False) as txn:
                for key, value in txn.cursor():  # key order, as torchvision's LSUNClass reads them
                    where = f"LSUN LMDB {str(path)!r} key {key.decode('latin1')!r}"
                    with _open(io.BytesIO(value), where) as im:
                        yield where, np.asarray(im.convert("RGB"), dtype=np.uint8)
        finally:
            env.close()

    return count, items()


def _load_lsun(category: str, split: str, resolution: int | None, root, limit: int | None) -> Split:
    splits = ("train",) if category in LSUN_OBJECTS else ("train", "val")
    _check_split(split, splits)
    _check_limit(limit)
    roots = search_roots(root)
    has_lmdb = _lmdb_available()
    lmdbs = [p for p in _lsun_lmdb_candidates(category, split, roots) if _is_lmdb(p)]
    folders = [p for p in _lsun_folder_candidates(category, split, roots) if p.is_dir() and not _is_lmdb(p)]
    name = f"lsun_{category}"
    if has_lmdb and lmdbs:
        count, items = _lsun_lmdb_items(lmdbs[0])
        source = f"LSUN {category} {split} LMDB {str(lmdbs[0].resolve())}"
    else:
        folder, files = next(((f, images) for f in folders if (images := _folder_images(f))), (None, []))
        if folder is None:
            if has_lmdb:
                layouts = "the LMDB layout (the lmdb package is installed) and the exported-folder layout"
            elif lmdbs:
                layouts = (f"only the exported-folder layout: an LMDB exists at {str(lmdbs[0])!r}, but the lmdb "
                           f"package is not installed (pip install lmdb to read it)")
            else:
                layouts = "only the exported-folder layout, because the lmdb package is not installed (pip install lmdb)"
            expected = ([p / "data.mdb" for p in _lsun_lmdb_candidates(category, split, roots)]
                        + [p / "*.webp|jpg|png" for p in _lsun_folder_candidates(category, split, roots)])
            zip_url = (f"http://dl.yf.io/lsun/objects/{category}.zip" if category in LSUN_OBJECTS
                       else f"http://dl.yf.io/lsun/scenes/{category}_{split}_lmdb.zip")
            raise _not_found(f"LSUN {category} ({split})", expected,
                             f"looked for {layouts}; no checksum is published for LSUN, so ganbench never downloads it",
                             f"download {zip_url} (https://github.com/fyu/lsun: python download.py -c {category}) and "
                             f"unzip it into ROOT/lsun/, or export it to images with LSUN's `python data.py export "
                             f"<lmdb> --out_dir ROOT/lsun/{category if split == 'train' else category + '_val'}`")
        count = len(files)
        items = ((f"LSUN image {str(f)!r}", _rgb_file(f)) for f in files)
        source = f"LSUN {category} {split} images in {str(folder.resolve())}"
    if count == 0:
        raise ValueError(f"{source} holds no images")
    images, cropped, resized = _stack_images(items, min(count, limit or count), resolution, _center_square)
    return Split(name, split, images, None, _resize_word(cropped, resized), source)


def _lsun_loader(category: str) -> Callable[..., Split]:
    def load_lsun(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
                  limit: int | None = None) -> Split:
        return _load_lsun(category, split, resolution, root, limit)

    load_lsun.__name__ = load_lsun.__qualname__ = f"lsun_{category}"
    splits = '"train"' if category in LSUN_OBJECTS else '"train" or "val"'
    load_lsun.__doc__ = f"""LSUN {category}: its LMDB when the ``lmdb`` package is importable, else its exported folder.

    Every image is centre-cropped to a square on its short side (256), then resized to ``resolution``.

    Args:
        split: {splits}.
        resolution: Square output side (bilinear); None keeps the 256x256 crops.
        root: Directory searched before ``data_root()``.
        limit: Read only the first ``limit`` images (LMDB key order, or sorted file paths).

    Raises:
        FileNotFoundError: Neither layout found: names every path, which layouts were searched and why, and how
            to get the files (never downloaded: no checksum is published).
    """
    return load_lsun


for _category in LSUN_CATEGORIES:
    DATASETS.register(f"lsun_{_category}", _lsun_loader(_category), kind="images", channels=3,
                      native_resolution=LSUN_RESOLUTION,
                      description=f"LSUN {_category.replace('_', ' ')}: LMDB (with the lmdb package) or exported "
                                  f"images, centre-cropped squares; manual download")
del _category


# ------------------------------------------------------------------------------------------------- Fashion-MNIST


@DATASETS.register("fashion_mnist", kind="images", channels=1, native_resolution=28, classes=10,
                   description="Fashion-MNIST (60000 train / 10000 test, 28x28 grey): the IDX files, md5-checked "
                               "download")
def fashion_mnist(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
                  download: bool = True) -> Split:
    """Fashion-MNIST from its gzip'd IDX files (parsed by ``ganbench.data.superres._idx``).

    Looked for in ``<root>/FashionMNIST/raw`` and ``<root>`` when ``root`` is given, then in
    ``ganbench.data.superres.fashion_mnist_dirs()``; downloaded into torchvision's ``FashionMNIST/raw`` when missing.

    Args:
        split: "train" or "test".
        resolution: Square output side (bilinear); 28 natively.
        root: Directory searched first; downloads go to ``<root>/FashionMNIST/raw`` when given.
        download: Download the split's two files (md5-checked) when missing and online.

    Raises:
        FileNotFoundError: Missing and not downloadable: names every path looked for, the URLs and the Debian
            package.
        ValueError: A file that is not IDX, or image and label counts that differ.
    """
    _check_split(split)
    extra = [Path(root).expanduser() / "FashionMNIST" / "raw", Path(root).expanduser()] if root is not None else []
    dirs = list(dict.fromkeys(extra + fashion_mnist_dirs()))
    files = FASHION_FILES[split]
    into = (extra[0] if extra else data_root() / "FashionMNIST" / "raw")
    how = (_torchvision_how(f"fashion_mnist/{split}", str(into)) + "; or apt-get install -y dataset-fashion-mnist "
           "(Debian), or set GANBENCH_FASHION_MNIST to a folder holding the files")
    folder = _obtain("Fashion-MNIST", lambda: next((d for d in dirs if all((d / f).is_file() for f in files)), None),
                     lambda: [d / f for d in dirs for f in files], f"fashion_mnist/{split}", into, how, download)
    images, labels = _idx(folder / files[0], "images"), _idx(folder / files[1], "labels")
    if len(images) != len(labels):
        raise ValueError(f"{str(folder / files[0])!r} holds {len(images)} images but {str(folder / files[1])!r} "
                         f"{len(labels)} labels")
    data, mode = resize_images(torch.from_numpy(images.copy()).unsqueeze(1), resolution)
    return Split("fashion_mnist", split, data, torch.from_numpy(labels.astype(np.int64)), mode,
                 f"Fashion-MNIST IDX files in {str(folder.resolve())}")


# ----------------------------------------------------------------------------------------------------------- FFHQ

FFHQ_FOLDERS = {"images1024x1024": 1024, "thumbnails128x128": 128}
_FFHQ_NAME = re.compile(r"^(\d{5})\.png$")


def _ffhq_files(folder: Path) -> list[Path]:
    """The numbered PNGs of an FFHQ folder in number order; each must sit in its thousand's subfolder."""
    files = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sub.iterdir():
            m = _FFHQ_NAME.match(f.name)
            if m is None:
                continue
            number = int(m.group(1))
            if sub.name != f"{number // 1000 * 1000:05d}":
                raise ValueError(f"FFHQ image {str(f)!r} is in the wrong subfolder: image {number} belongs in "
                                 f"{number // 1000 * 1000:05d}/")
            files.append((number, f))
    return [f for _, f in sorted(files)]


@DATASETS.register("ffhq", kind="images", channels=3, native_resolution=1024,
                   description="FFHQ faces (70000, 1024x1024 or the 128x128 thumbnails): NVlabs' numbered PNGs; "
                               "train = all 70000 (the NVlabs protocol); manual download")
def ffhq(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
         source: str = "auto", limit: int | None = None) -> Split:
    """FFHQ from NVlabs' folder layout: ``images1024x1024/00000/00000.png`` .. ``69000/69999.png``.

    Args:
        split: "train": every image found (70000 in the full set; StyleGAN's FID protocol scores against all).
        resolution: Square output side (bilinear, antialiased); None keeps the folder's size.
        root: Directory searched before ``data_root()`` (``<root>/ffhq/<folder>`` or ``<root>/<folder>``).
        source: "images1024x1024", "thumbnails128x128", or "auto": the thumbnails when ``resolution`` is at most
            128 and they exist, else the 1024 images, else the thumbnails. ``source`` of the split names the folder.
        limit: Read only the first ``limit`` images (in number order).

    Raises:
        FileNotFoundError: No folder found (names every path; never downloaded).
    """
    _check_split(split, ("train",))
    _check_limit(limit)
    if source not in ("auto", *FFHQ_FOLDERS):
        raise ValueError(f"ffhq source must be auto, {' or '.join(FFHQ_FOLDERS)}; got {source!r}")
    roots = search_roots(root)
    if source == "auto":
        small = resolution is not None and resolution <= 128
        order = ["thumbnails128x128", "images1024x1024"] if small else ["images1024x1024", "thumbnails128x128"]
    else:
        order = [source]
    candidates = [r / sub / name for name in order for r in roots for sub in ("ffhq", ".")]
    how = ("FFHQ is on Google Drive behind download quotas and ganbench does not fetch it: run NVlabs' "
           "download_ffhq.py (https://github.com/NVlabs/ffhq-dataset) with --images (89 GB) or --thumbs (2 GB) "
           "inside ROOT/ffhq/; that script checks each file against the md5 in ffhq-dataset-v2.json")
    folder = _obtain("FFHQ", lambda: next((c for c in candidates if c.is_dir() and _ffhq_files(c)), None),
                     lambda: [c / "00000" / "00000.png" for c in candidates], None, roots[0], how, False)
    files = _ffhq_files(folder)[:limit]
    items = ((f"FFHQ image {str(f)!r}", _rgb_file(f)) for f in files)
    images, cropped, resized = _stack_images(items, len(files), resolution, _center_square)
    return Split("ffhq", split, images, None, _resize_word(cropped, resized),
                 f"FFHQ {folder.name} in {str(folder.resolve())} ({len(files)} images)")


# ----------------------------------------------------------------------------------------------------------- AFHQ

AFHQ_CLASSES = ("cat", "dog", "wild")


@DATASETS.register("afhq", kind="images", channels=3, native_resolution=512, classes=len(AFHQ_CLASSES),
                   description="AFHQ animal faces (train / val, 512x512), labels cat 0, dog 1, wild 2; manual download")
def afhq(split: str = "train", resolution: int | None = None, root: str | os.PathLike[str] | None = None,
         category: str | None = None, limit: int | None = None) -> Split:
    """AFHQ (StarGAN v2) from ``afhq/<split>/{cat,dog,wild}/*.png|jpg``, with labels cat 0, dog 1, wild 2.

    Args:
        split: "train" or "val".
        resolution: Square output side (bilinear, antialiased); None keeps 512.
        root: Directory searched before ``data_root()``.
        category: Read one class only ("cat", "dog" or "wild": StyleGAN2-ADA's AFHQ Cat/Dog/Wild sets); its label
            is still its AFHQ class index. None reads all three.
        limit: Read only the first ``limit`` images (by class, then file name).

    Raises:
        FileNotFoundError: A class folder is missing or empty (names every path; never downloaded).
    """
    _check_split(split, ("train", "val"))
    _check_limit(limit)
    if category is not None and category not in AFHQ_CLASSES:
        raise ValueError(f"afhq category must be one of {', '.join(AFHQ_CLASSES)} or None, got {category!r}")
    classes = AFHQ_CLASSES if category is None else (category,)
    roots = search_roots(root)

    def listing(base: Path) -> list[tuple[Path, int]] | None:
        per_class = [(c, sorted(p for p in (base / c).iterdir() if p.is_file() and p.suffix.lower() in
                                (".png", ".jpg", ".jpeg"))) for c in classes if (base / c).is_dir()]
        if len(per_class) < len(classes) or not all(files for _, files in per_class):
            return None
        return [(f, AFHQ_CLASSES.index(c)) for c, files in per_class for f in files]

    how = ("no checksum is published for AFHQ's Dropbox archive and ganbench does not fetch it: run `bash download.sh "
           "afhq-dataset` from https://github.com/clovaai/stargan-v2 (it unpacks data/afhq/{train,val}/{cat,dog,wild}) "
           "and move afhq/ into ROOT")
    bases = [r / "afhq" / split for r in roots]
    base = _obtain("AFHQ", lambda: next((b for b in bases if listing(b)), None),
                   lambda: [b / c / "*.png|jpg" for b in bases for c in classes], None, roots[0], how, False)
    chosen = listing(base)[:limit]
    items = ((f"AFHQ image {str(f)!r}", _rgb_file(f)) for f, _ in chosen)
    images, cropped, resized = _stack_images(items, len(chosen), resolution, _center_square)
    labels = torch.tensor([label for _, label in chosen], dtype=torch.int64)
    return Split("afhq", split, images, labels, _resize_word(cropped, resized),
                 f"AFHQ {split}/{'+'.join(classes)} in {str(base.resolve())}")


# -------------------------------------------------------------------------------------------- Hugging Face Hub

HUB_PREFIX = "hf:"
_HUB_SPEC = re.compile(r"^hf:(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?::(?P<split>[\w.-]+))?$")
_HEX40, _HEX64 = re.compile(r"^[0-9a-f]{40}$"), re.compile(r"^[0-9a-f]{64}$")


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """(repo id, split or None) of ``hf:OWNER/NAME[:split]``.

    Raises:
        ValueError: ``spec`` does not have that form.
    """
    m = _HUB_SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        raise ValueError(f"Hub dataset spec must be 'hf:OWNER/NAME' or 'hf:OWNER/NAME:SPLIT' (e.g. "
                         f"'hf:uoft-cs/cifar10:test'), got {spec!r}")
    return m.group("repo"), m.group("split")


def _verify_hub_blob(path: Path) -> None:
    """Check a downloaded Hub file against the hash its cache blob is named by: an LFS file's sha256 (64 hex) or a
    git blob's sha1 (40 hex). Raises OSError on a mismatch; a file outside the blob store is not checked."""
    blob = path.resolve()
    name, data_hash = blob.name, None
    if _HEX64.match(name):
        data_hash = hashlib.sha256()
    elif _HEX40.match(name):
        data_hash = hashlib.sha1(f"blob {blob.stat().st_size}\0".encode())
    if data_hash is None:
        return
    with open(blob, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            data_hash.update(block)
    if data_hash.hexdigest() != name:
        blob.unlink()
        raise OSError(f"Hub file {str(path)!r} hashes to {data_hash.hexdigest()}, but the Hub publishes {name} for it; "
                      f"the blob was deleted, try again")


def _hub_parquet_files(repo: str, split: str, revision: str | None, cache_dir, download: bool) -> list[Path]:
    """``data/<split>-*.parquet`` of a Hub dataset: from the local Hub cache, else downloaded when online."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    pattern = f"data/{split}-*.parquet"
    cache = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    repo_cache = cache / f"datasets--{repo.replace('/', '--')}"

    def local() -> list[Path]:
        try:
            snap = Path(snapshot_download(repo, repo_type="dataset", revision=revision, cache_dir=cache_dir,
                                          allow_patterns=[pattern], local_files_only=True))
        except LocalEntryNotFoundError:
            return []
        return sorted(snap.glob(pattern))

    files = local()
    if files:
        return files
    how = (f"run `hf download {repo} --repo-type dataset --include '{pattern}'` (huggingface_hub's CLI; "
           f"huggingface-cli download in older versions) while online, or call this online")
    expected = [repo_cache / "snapshots" / (revision or "<revision of refs/main>") / pattern]
    if not download:
        raise _not_found(f"Hub dataset {repo!r} split {split!r}", expected, "download=False", how)
    reason = _offline_reason(constants.ENDPOINT)
    if reason is not None:
        raise _not_found(f"Hub dataset {repo!r} split {split!r}", expected, reason, how)
    snap = Path(snapshot_download(repo, repo_type="dataset", revision=revision, cache_dir=cache_dir,
                                  allow_patterns=[pattern]))
    files = sorted(snap.glob(pattern))
    if not files:
        raise _not_found(f"Hub dataset {repo!r} split {split!r}", [snap / pattern],
                         "the repository has no file matching it", "pick a split the repository has (its data/ folder)")
    for f in files:
        _verify_hub_blob(f)
    return files


def _image_column(schema, where: str) -> str:
    """The first column stored as the ``datasets`` Image feature: a struct of ``bytes`` and ``path``."""
    import pyarrow as pa

    for field in schema:
        if pa.types.is_struct(field.type) and {f.name for f in field.type} == {"bytes", "path"}:
            return field.name
    raise ValueError(f"{where} has no image column (a struct of 'bytes' and 'path', as the datasets library stores "
                     f"images); its columns are {', '.join(f'{f.name}: {f.type}' for f in schema)}")


def _label_column(schema) -> str | None:
    import pyarrow as pa

    for name in ("label", "labels"):
        idx = schema.get_field_index(name)
        if idx >= 0 and pa.types.is_integer(schema.field(idx).type):
            return name
    return None


def load_hub_dataset(spec: str, split: str | None = None, resolution: int | None = None, *,
                     channels: int | None = None, gray_to_rgb: bool = False, limit: int | None = None,
                     revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                     download: bool = True) -> Split:
    """An image dataset of the Hugging Face Hub, read from its parquet files (``data/<split>-*.parquet``).

    The files come from the local Hub cache (``cache_dir``, default huggingface_hub's ``$HF_HUB_CACHE``) when there,
    else are downloaded with ``huggingface_hub.snapshot_download`` (only that split's files, progress on stderr,
    each checked against the sha256 the Hub names its blob by) unless ganbench is offline (``HF_HUB_OFFLINE``,
    ``GANBENCH_OFFLINE``, or the Hub does not answer). The image column is the first column stored as the
    ``datasets`` Image feature (a struct of ``bytes`` and ``path``); labels come from an integer ``label`` or
    ``labels`` column when there is one.

    Args:
        spec: ``hf:OWNER/NAME`` or ``hf:OWNER/NAME:SPLIT``.
        split: The split to read; defaults to the spec's split, else "train". Must agree with the spec's.
        resolution: Square output side: each image is centre-cropped to a square on its short side and resized
            bilinearly. None keeps the images as stored, which must then all have one size.
        channels: 1 or 3; None takes the first image's (1 for greyscale, else 3).
        gray_to_rgb: Accept greyscale images when ``channels`` is 3, repeating the channel.
        limit: Read only the first ``limit`` rows.
        revision: Hub revision (branch, tag or commit); None is ``main``.
        cache_dir: The Hub cache to use.
        download: Allow downloading when the files are not cached.

    Raises:
        ValueError: A malformed spec, conflicting splits, no image column, a null label, an undecodable cell, or
            images of different sizes without ``resolution`` (each names the file and row).
        FileNotFoundError: Not cached and not downloadable: names the cache path and the command to fetch it.
    """
    import pyarrow.parquet as pq

    repo, spec_split = parse_hub_spec(spec)
    if split is not None and spec_split is not None and split != spec_split:
        raise ValueError(f"{spec!r} names split {spec_split!r}, but split={split!r} was asked")
    split = split or spec_split or "train"
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    _check_limit(limit)
    files = _hub_parquet_files(repo, split, revision, cache_dir, download)
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    count = min(total, limit or total)
    if count == 0:
        raise ValueError(f"Hub dataset {repo!r} split {split!r} has no rows ({', '.join(map(str, files))})")
    labels: list[int] = []
    has_labels: list[bool] = []
    state = {"channels": channels}

    def items() -> Iterator[tuple[str, np.ndarray]]:
        for f in files:
            pf = pq.ParquetFile(f)
            where_file = f"parquet file {str(f)!r}"
            image_col, label_col = _image_column(pf.schema_arrow, where_file), _label_column(pf.schema_arrow)
            has_labels.append(label_col is not None)
            row = 0
            columns = [image_col] + ([label_col] if label_col else [])
            for batch in pf.iter_batches(batch_size=256, columns=columns):
                cells = batch.column(image_col).to_pylist()
                row_labels = batch.column(label_col).to_pylist() if label_col else [None] * len(cells)
                for cell, label in zip(cells, row_labels):
                    where = f"{where_file} row {row} column {image_col!r}"
                    if label_col and label is None:
                        raise ValueError(f"{where_file} row {row}: column {label_col!r} is empty")
                    im = _cell_image(cell, f.parent, where)
                    if state["channels"] is None:
                        state["channels"] = 1 if _single_channel(im) else 3
                    labels.append(label)
                    row += 1
                    yield where, _decode(im, where, state["channels"], gray_to_rgb)

    crop = _center_square if resolution is not None else None
    images, cropped, resized = _stack_images(items(), count, resolution, crop)
    if len(set(has_labels)) > 1:
        raise ValueError(f"Hub dataset {repo!r} split {split!r}: some parquet files have a label column and some do "
                         f"not ({', '.join(map(str, files))})")
    label_tensor = torch.tensor(labels[:len(images)], dtype=torch.int64) if has_labels and has_labels[0] else None
    origin = f"hf://datasets/{repo}@{files[0].parent.parent.name} ({len(files)} parquet file{'s' * (len(files) > 1)})"
    return Split(f"{HUB_PREFIX}{repo}", split, images, label_tensor, _resize_word(cropped, resized), origin)


def resolve_dataset(ref: str) -> Callable[..., Split]:
    """The loader for a registered dataset name or an ``hf:OWNER/NAME[:split]`` Hub spec.

    A registered name returns its registered loader. A Hub spec returns a loader with the registry's call
    signature, ``(split=None, resolution=None, **kwargs)``, where ``split=None`` means the spec's split (else
    "train") and kwargs are ``load_hub_dataset``'s.

    Raises:
        ValueError: A malformed Hub spec.
        ganbench.registry.UnknownNameError: An unknown name (the message lists the valid ones).
    """
    if isinstance(ref, str) and ref.startswith(HUB_PREFIX):
        parse_hub_spec(ref)  # a malformed spec fails here, not at the first call

        def load_hub(split: str | None = None, resolution: int | None = None, **kwargs) -> Split:
            return load_hub_dataset(ref, split, resolution, **kwargs)

        load_hub.__name__ = load_hub.__qualname__ = "load_hub"
        load_hub.__doc__ = f"Load {ref} from the Hugging Face Hub; see ``load_hub_dataset``."
        return load_hub
    return DATASETS.get(ref)


STANDARD_DATASETS = ("cifar10", "cifar100", "stl10", "svhn", "celeba", *(f"lsun_{c}" for c in LSUN_CATEGORIES),
                     "fashion_mnist", "ffhq", "afhq")  # every name this module registers

__all__ = ["AFHQ_CLASSES", "DOWNLOADS", "Download", "FFHQ_FOLDERS", "LSUN_CATEGORIES", "STANDARD_DATASETS", "afhq",
           "celeba", "cifar10", "cifar100", "fashion_mnist", "ffhq", "load_hub_dataset", "parse_hub_spec",
           "read_cifar_batch", "read_stl10", "read_svhn", "resolve_dataset", "search_roots", "stl10", "svhn"]
