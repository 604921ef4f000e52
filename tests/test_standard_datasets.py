"""The standard GAN datasets (``ganbench.data.standard``) read from files written here in each published format.

Every test writes a tiny set in the exact on-disk format the dataset is published in (CIFAR's Python 2 pickles,
STL-10's column-major binaries, SVHN's MATLAB files, CelebA's JPEGs and partition list, LSUN's LMDB and exported
folders, Fashion-MNIST's gzip'd IDX files, FFHQ's and AFHQ's folders, a Hub parquet in a Hub cache), loads it
through the registry and compares with an independent oracle: the array written, transposed as the format
documents (or, for JPEG, what PIL decodes from the file). Split hashes are recomputed from the oracle. Nothing
downloads: sockets other than loopback are blocked (conftest), and the one download test serves its archive from
a loopback HTTP server.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io
import torch
from PIL import Image

import ganbench.data.standard as standard
import ganbench.data.superres as superres
import ganbench.features.foundation  # noqa: F401  (imported up front: the 1 s limit is the loader's, not an import's)
from ganbench.data.core import load, resize_images
from ganbench.registry import DATASETS

RNG = functools.partial(np.random.default_rng)


@pytest.fixture(autouse=True)
def _offline_and_isolated(tmp_path_factory, monkeypatch):
    """Offline, with empty default roots: only the files a test writes can be found."""
    empty = tmp_path_factory.mktemp("nothing")
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GANBENCH_DATA", str(empty / "data"))
    monkeypatch.delenv("GANBENCH_FASHION_MNIST", raising=False)
    monkeypatch.setattr(superres, "FASHION_DEB_DIR", empty / "debian-fashion-mnist")


def oracle_sha256(images: np.ndarray, labels: np.ndarray | None) -> str:
    """``Split.sha256`` recomputed from the expected arrays: shape, pixel bytes, label bytes."""
    h = hashlib.sha256()
    h.update(str(tuple(images.shape)).encode())
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    if labels is not None:
        h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def assert_split(split, images: np.ndarray, labels: np.ndarray | None, name: str, split_name: str) -> None:
    assert split.dataset == name and split.split == split_name
    assert split.data.dtype == torch.uint8 and tuple(split.data.shape) == images.shape
    np.testing.assert_array_equal(split.data.numpy(), images)
    if labels is None:
        assert split.labels is None
    else:
        assert split.labels.dtype == torch.int64
        np.testing.assert_array_equal(split.labels.numpy(), labels)
    assert split.sha256 == oracle_sha256(images, labels)


def rand_images(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return RNG(seed).integers(0, 256, shape, dtype=np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------- CIFAR


class Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle wrote the published CIFAR batches: protocol 2, every string a
    Python 2 ``str`` (SHORT_BINSTRING / BINSTRING), booleans as ints, and numpy's reconstructor named
    ``numpy.core.multiarray._reconstruct``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)

    def save_bool_as_int(self, obj):
        self.save_long(int(obj))

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str
    dispatch[bool] = save_bool_as_int

    def save_global(self, obj, name=None):
        name = name or obj.__qualname__
        module = "numpy.core.multiarray" if name == "_reconstruct" else "numpy"
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_rows(images_hwc: np.ndarray) -> np.ndarray:
    """CIFAR's row layout, from its documentation: 1024 red values, then 1024 green, then 1024 blue, each plane
    row-major."""
    n = len(images_hwc)
    return np.concatenate([images_hwc[..., c].reshape(n, 1024) for c in range(3)], axis=1)


CIFAR_SIZES = {"cifar10": {f"data_batch_{i}": 2 + i % 2 for i in range(1, 6)} | {"test_batch": 4},
               "cifar100": {"train": 5, "test": 3}}


def write_cifar(root: Path, name: str, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Batches in the published dict layout under ``root``; returns each split's NCHW images and labels."""
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    classes, label_key = (10, "labels") if name == "cifar10" else (100, "fine_labels")
    splits: dict[str, list] = {"train": [], "test": []}
    for i, (file, n) in enumerate(CIFAR_SIZES[name].items()):
        hwc = rand_images(seed + i, (n, 32, 32, 3))
        labels = RNG(seed + 100 + i).integers(0, classes, n)
        batch = {"batch_label": f"batch {i}", label_key: [int(x) for x in labels], "data": cifar_rows(hwc),
                 "filenames": [f"img_{i}_{j}.png" for j in range(n)]}
        if name == "cifar100":
            batch["coarse_labels"] = [int(x) % 20 for x in labels]
        (folder / file).write_bytes(py2_pickle(batch))
        split = "test" if "test" in file else "train"
        splits[split].append((hwc.transpose(0, 3, 1, 2), labels))
    return {s: (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
            for s, parts in splits.items()}


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_the_python_batches(tmp_path, name):
    expected = write_cifar(tmp_path, name)
    for split in ("train", "test"):
        images, labels = expected[split]
        s = load(name, split, root=tmp_path)
        assert_split(s, images, labels, name, split)
        assert s.resize == "none"
        assert load(name, split, root=tmp_path).sha256 == s.sha256
    assert len(load(name, "train", root=tmp_path)) == sum(n for f, n in CIFAR_SIZES[name].items() if "test" not in f)
    # the byte layout itself: byte 1024 of a row is the green value of pixel (0, 0), byte 33 the red of (1, 1)
    first = (tmp_path / ("cifar-10-batches-py/data_batch_1" if name == "cifar10" else "cifar-100-python/train"))
    row = standard.read_cifar_batch(first, "labels" if name == "cifar10" else "fine_labels")[0][0]
    raw = cifar_rows(row.transpose(1, 2, 0)[None])[0]
    assert row[1, 0, 0] == raw[1024] and row[0, 1, 1] == raw[33]


def test_cifar_found_under_ganbench_data_and_resized(tmp_path, monkeypatch):
    expected = write_cifar(tmp_path / "store", "cifar10")
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path / "store"))
    s = DATASETS.get("cifar10")(split="test", resolution=16)
    want, _ = resize_images(torch.from_numpy(expected["test"][0]), 16)
    assert s.resize == "bilinear" and torch.equal(s.data, want)
    assert str((tmp_path / "store").resolve()) in s.source


@pytest.mark.parametrize("payload", [b"cos\nsystem\n(S'touch {marker}'\ntR.",
                                     b"cbuiltins\neval\n(S'open(\"{marker}\", \"w\").close()'\ntR.",
                                     b"cnumpy\nsave\n(S'{marker}'\nI0\ntR."])
def test_cifar_batch_naming_another_callable_is_refused_unexecuted(tmp_path, payload):
    marker = tmp_path / "was_executed"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for f in ("test_batch", "data_batch_1"):
        (folder / f).write_bytes(payload.replace(b"{marker}", str(marker).encode()))
    with pytest.raises(pickle.UnpicklingError) as e:
        load("cifar10", "test", root=tmp_path)
    callable_name = payload[1:payload.index(b"\n(")].decode().replace("\n", ".")
    assert callable_name in str(e.value) and "test_batch" in str(e.value) and "nothing" in str(e.value)
    assert not marker.exists() and not marker.with_suffix(".npy").exists()


def test_cifar_batch_of_the_wrong_shape_names_the_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(py2_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"test_batch.*\(N, 3072\)"):
        load("cifar10", "test", root=tmp_path)


# ----------------------------------------------------------------------------------------------------------- STL-10


def write_stl10(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    out = {}
    for i, (split, n) in enumerate({"train": 3, "test": 2, "unlabeled": 4}.items()):
        images = rand_images(10 + i, (n, 3, 96, 96))  # N, C, H, W
        # STL-10's README: each image is stored column-major, so a channel is written column by column
        (folder / f"{split}_X.bin").write_bytes(images.transpose(0, 1, 3, 2).tobytes())
        labels = None
        if split != "unlabeled":
            stored = RNG(20 + i).integers(1, 11, n).astype(np.uint8)
            (folder / f"{split}_y.bin").write_bytes(stored.tobytes())
            labels = stored.astype(np.int64) - 1
        out[split] = (images, labels)
    return out


def test_stl10_reads_column_major_binaries(tmp_path):
    expected = write_stl10(tmp_path)
    for split, (images, labels) in expected.items():
        s = load("stl10", split, root=tmp_path)
        assert_split(s, images, labels, "stl10", split)
        assert load("stl10", split, root=tmp_path).sha256 == s.sha256
    raw = np.fromfile(tmp_path / "stl10_binary" / "train_X.bin", np.uint8)
    first = load("stl10", "train", root=tmp_path).data[0]
    assert raw[1] == first[0, 1, 0] and raw[96] == first[0, 0, 1]  # byte 1: second row of the first column


def test_stl10_labels_outside_1_to_10_are_refused(tmp_path):
    write_stl10(tmp_path)
    (tmp_path / "stl10_binary" / "test_y.bin").write_bytes(bytes([0, 3]))
    with pytest.raises(ValueError, match=r"test_y\.bin.*1\.\.10"):
        load("stl10", "test", root=tmp_path)


# ------------------------------------------------------------------------------------------------------------- SVHN


def write_svhn(folder: Path, file: str, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    hwc = rand_images(seed, (n, 32, 32, 3))
    y = np.arange(n) % 10 + 1  # 1..10, where 10 stands for the digit 0
    scipy.io.savemat(folder / file, {"X": hwc.transpose(1, 2, 3, 0), "y": y.reshape(-1, 1).astype(np.uint8)})
    return hwc.transpose(0, 3, 1, 2), np.where(y == 10, 0, y)


def test_svhn_reads_the_mat_files(tmp_path):
    train = write_svhn(tmp_path, "train_32x32.mat", 30, 12)  # torchvision's place: the root itself
    test = write_svhn(tmp_path / "svhn", "test_32x32.mat", 31, 5)
    extra = write_svhn(tmp_path, "extra_32x32.mat", 32, 3)
    assert 0 in train[1] and 10 not in train[1]
    for split, (images, labels) in {"train": train, "test": test, "extra": extra}.items():
        s = load("svhn", split, root=tmp_path)
        assert_split(s, images, labels, "svhn", split)
        assert load("svhn", split, root=tmp_path).sha256 == s.sha256


def test_svhn_file_without_X_names_it(tmp_path):
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"y": np.ones((2, 1))})
    with pytest.raises(ValueError, match=r"test_32x32\.mat.*'X'"):
        load("svhn", "test", root=tmp_path)


# ----------------------------------------------------------------------------------------------------------- CelebA

CELEBA_PARTS = [0, 0, 0, 1, 2, 2]


def write_celeba(root: Path) -> list[Path]:
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    files = []
    y, x = np.mgrid[0:218, 0:178]
    for i in range(len(CELEBA_PARTS)):
        arr = np.stack([(x * (i + 1)) % 256, (y * 2 + i * 40) % 256, (x + y) % 256], axis=-1).astype(np.uint8)
        f = folder / f"{i + 1:06d}.jpg"
        Image.fromarray(arr).save(f, quality=95)
        files.append(f)
    (root / "celeba" / "list_eval_partition.txt").write_text(
        "".join(f"{f.name} {p}\n" for f, p in zip(files, CELEBA_PARTS)))
    return files


def celeba_oracle(files: list[Path], top: int, left: int, side: int) -> np.ndarray:
    decoded = [np.asarray(Image.open(f).convert("RGB")) for f in files]  # PIL's decoding of the JPEGs written
    return np.stack([d[top:top + side, left:left + side] for d in decoded]).transpose(0, 3, 1, 2)


def test_celeba_crops_the_centre_square_and_splits_by_partition(tmp_path):
    files = write_celeba(tmp_path)
    full = load("celeba", "all", resolution=178, root=tmp_path)
    assert_split(full, celeba_oracle(files, 20, 0, 178), None, "celeba", "all")
    assert full.resize == "center_crop178"
    dcgan = load("celeba", "test", resolution=108, root=tmp_path, crop=108)
    assert_split(dcgan, celeba_oracle(files[4:], 55, 35, 108), None, "celeba", "test")
    default = load("celeba", "train", root=tmp_path)  # the 64x64 default: centre 178 square, bilinear
    want, _ = resize_images(torch.from_numpy(celeba_oracle(files[:3], 20, 0, 178)), 64)
    assert default.resize == "center_crop178+bilinear" and torch.equal(default.data, want)
    assert {s: len(load("celeba", s, root=tmp_path)) for s in ("train", "valid", "test", "all")} == \
        {"train": 3, "valid": 1, "test": 2, "all": 6}
    assert load("celeba", "train", root=tmp_path).sha256 == default.sha256


def test_celeba_image_of_another_size_names_it(tmp_path):
    files = write_celeba(tmp_path)
    Image.new("RGB", (100, 100)).save(files[0])
    with pytest.raises(ValueError, match=r"000001\.jpg.*178x218"):
        load("celeba", "train", root=tmp_path)


# ------------------------------------------------------------------------------------------------------------- LSUN

LSUN_SHAPES = [(20, 26), (28, 20), (20, 20)]  # H, W: short side 20, as LSUN's is 256


def webp(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="WEBP", lossless=True)  # lossless: the oracle is the array written
    return buf.getvalue()


def centre_square(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape[:2]
    s = min(h, w)
    return arr[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


def test_lsun_reads_the_lmdb_in_key_order(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    arrays = {}
    for split in ("train", "val"):
        path = tmp_path / "lsun" / f"bedroom_{split}_lmdb"
        path.mkdir(parents=True)
        env = lmdb.open(str(path), map_size=1 << 24)
        keys = [b"f3a9c0", b"0b12de", b"7c44aa"]  # written out of order; LMDB returns them sorted
        with env.begin(write=True) as txn:
            for i, (key, shape) in enumerate(zip(keys, LSUN_SHAPES)):
                arrays[split, key] = rand_images(40 + i + (split == "val") * 10, (*shape, 3))
                txn.put(key, webp(arrays[split, key]))
        env.close()
        s = load("lsun_bedroom", split, root=tmp_path)
        want = np.stack([centre_square(arrays[split, k]) for k in sorted(keys)]).transpose(0, 3, 1, 2)
        assert_split(s, want, None, "lsun_bedroom", split)
        assert s.resize == "center_crop" and "LMDB" in s.source
    assert len(load("lsun_bedroom", "train", root=tmp_path, limit=2)) == 2


def test_lsun_reads_the_exported_folder(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)  # as if the lmdb package were not installed
    folder = tmp_path / "lsun" / "church_outdoor"
    written = {}
    for i, shape in enumerate(LSUN_SHAPES):
        key = f"{i}a{i}b{i}c"
        f = folder.joinpath(*key[:3], f"{key}.webp")  # data.py export nests files by the key's first characters
        f.parent.mkdir(parents=True, exist_ok=True)
        written[f] = rand_images(60 + i, (*shape, 3))
        f.write_bytes(webp(written[f]))
    s = load("lsun_church_outdoor", "train", root=tmp_path)
    want = np.stack([centre_square(written[f]) for f in sorted(written)]).transpose(0, 3, 1, 2)
    assert_split(s, want, None, "lsun_church_outdoor", "train")
    small = load("lsun_church_outdoor", "train", resolution=8, root=tmp_path)
    expect, _ = resize_images(torch.from_numpy(want), 8)
    assert small.resize == "center_crop+bilinear" and torch.equal(small.data, expect)


def test_lsun_lmdb_without_the_lmdb_package_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)
    lmdb_dir = tmp_path / "lsun" / "tower_train_lmdb"
    lmdb_dir.mkdir(parents=True)
    (lmdb_dir / "data.mdb").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as e:
        load("lsun_tower", "train", root=tmp_path)
    assert "lmdb package is not installed" in str(e.value) and str(lmdb_dir) in str(e.value)
    assert str(tmp_path / "lsun" / "tower") in str(e.value)


# ---------------------------------------------------------------------------------------------------- Fashion-MNIST


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_fashion(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for i, (split, (images_file, labels_file)) in enumerate(superres.FASHION_FILES.items()):
        n = 6 - 2 * i
        images, labels = rand_images(70 + i, (n, 28, 28)), RNG(80 + i).integers(0, 10, n)
        write_idx(folder / images_file, images)
        write_idx(folder / labels_file, labels)
        out[split] = (images[:, None], labels)
    return out


def test_fashion_mnist_reads_the_idx_files(tmp_path, monkeypatch):
    expected = write_fashion(tmp_path / "FashionMNIST" / "raw")
    for split, (images, labels) in expected.items():
        s = load("fashion_mnist", split, root=tmp_path)
        assert_split(s, images, labels, "fashion_mnist", split)
    other = write_fashion(tmp_path / "elsewhere")  # found through superres.fashion_mnist_dirs() as well
    monkeypatch.setenv("GANBENCH_FASHION_MNIST", str(tmp_path / "elsewhere"))
    assert_split(load("fashion_mnist", "test"), *other["test"], "fashion_mnist", "test")


# ------------------------------------------------------------------------------------------------------------- FFHQ


def write_ffhq(folder: Path, side: int, seed: int) -> dict[int, np.ndarray]:
    written = {}
    for number in (1000, 0, 1):  # 00000/00000.png, 00000/00001.png, 01000/01000.png
        arr = rand_images(seed + number, (side, side, 3))
        f = folder / f"{number // 1000 * 1000:05d}" / f"{number:05d}.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(png_bytes(arr))
        written[number] = arr
    return written


def test_ffhq_reads_the_numbered_pngs_in_order(tmp_path):
    full = write_ffhq(tmp_path / "ffhq" / "images1024x1024", 16, 90)
    thumbs = write_ffhq(tmp_path / "ffhq" / "thumbnails128x128", 8, 95)
    want = np.stack([full[k] for k in sorted(full)]).transpose(0, 3, 1, 2)
    s = load("ffhq", "train", root=tmp_path)
    assert_split(s, want, None, "ffhq", "train")
    assert "images1024x1024" in s.source and s.resize == "none"
    small = load("ffhq", "train", resolution=8, root=tmp_path)  # auto: the thumbnails serve <= 128
    assert_split(small, np.stack([thumbs[k] for k in sorted(thumbs)]).transpose(0, 3, 1, 2), None, "ffhq", "train")
    assert "thumbnails128x128" in small.source
    resized = load("ffhq", "train", resolution=8, root=tmp_path, source="images1024x1024")
    assert resized.resize == "bilinear" and torch.equal(resized.data, resize_images(torch.from_numpy(want), 8)[0])
    assert len(load("ffhq", "train", root=tmp_path, limit=2)) == 2


# ------------------------------------------------------------------------------------------------------------- AFHQ


def write_afhq(root: Path, split: str, seed: int) -> tuple[list[Path], np.ndarray]:
    files, labels = [], []
    for label, cls in enumerate(("cat", "dog", "wild")):
        for j in range(label + 1):
            f = root / "afhq" / split / cls / f"flickr_{cls}_{j:06d}.{'jpg' if j == 1 else 'png'}"
            f.parent.mkdir(parents=True, exist_ok=True)
            arr = rand_images(seed + 10 * label + j, (12, 12, 3))
            if f.suffix == ".jpg":
                Image.fromarray(arr).save(f, quality=95)
            else:
                f.write_bytes(png_bytes(arr))
            files.append(f)
            labels.append(label)
    return files, np.array(labels)


def test_afhq_reads_classes_as_labels(tmp_path):
    for i, split in enumerate(("train", "val")):
        files, labels = write_afhq(tmp_path, split, 100 + 50 * i)
        want = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]).transpose(0, 3, 1, 2)
        s = load("afhq", split, root=tmp_path)
        assert_split(s, want, labels, "afhq", split)
        dogs = load("afhq", split, root=tmp_path, category="dog")
        assert_split(dogs, want[labels == 1], labels[labels == 1], "afhq", split)
    with pytest.raises(ValueError, match="category must be one of cat, dog, wild"):
        load("afhq", "train", root=tmp_path, category="fox")


# -------------------------------------------------------------------------------------------- Hugging Face Hub

REVISION = "0123456789abcdef0123456789abcdef01234567"


def write_hub_parquet(cache: Path, repo: str, file: str, table: pa.Table) -> None:
    """A parquet file as huggingface_hub caches it: a blob named by its sha256 and a snapshot link to it."""
    base = cache / f"datasets--{repo.replace('/', '--')}"
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    data = buf.getvalue().to_pybytes()
    blob = base / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    link = base / "snapshots" / REVISION / file
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (base / "refs").mkdir(exist_ok=True)
    (base / "refs" / "main").write_text(REVISION)


IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def hub_table(images: list[np.ndarray], labels: list[int] | None) -> pa.Table:
    cols = {"idx": pa.array(range(len(images)), pa.int64()),
            "img": pa.array([{"bytes": png_bytes(a), "path": None} for a in images], IMAGE_TYPE)}
    if labels is not None:
        cols["label"] = pa.array(labels, pa.int64())
    return pa.table(cols)


def test_hub_dataset_from_the_local_cache(tmp_path):
    cache = tmp_path / "hub"
    parts = [[rand_images(200 + i, (10, 10, 3)) for i in range(k)] for k in (3, 2)]
    labels = [[4, 0, 9], [1, 1]]
    for i, (images, lab) in enumerate(zip(parts, labels)):
        write_hub_parquet(cache, "owner/tiny", f"data/train-{i:05d}-of-00002.parquet", hub_table(images, lab))
    test_images = [rand_images(300, (10, 10, 3))]
    write_hub_parquet(cache, "owner/tiny", "data/test-00000-of-00001.parquet", hub_table(test_images, [7]))
    want = np.stack(parts[0] + parts[1]).transpose(0, 3, 1, 2)
    s = standard.resolve_dataset("hf:owner/tiny")(cache_dir=cache)
    assert_split(s, want, np.array(labels[0] + labels[1]), "hf:owner/tiny", "train")
    assert REVISION in s.source
    t = standard.resolve_dataset("hf:owner/tiny:test")(cache_dir=cache)
    assert_split(t, np.stack(test_images).transpose(0, 3, 1, 2), np.array([7]), "hf:owner/tiny", "test")
    assert standard.load_hub_dataset("hf:owner/tiny", "train", cache_dir=cache).sha256 == s.sha256
    assert len(standard.load_hub_dataset("hf:owner/tiny", "train", cache_dir=cache, limit=4)) == 4
    with pytest.raises(ValueError, match="names split 'test'"):
        standard.load_hub_dataset("hf:owner/tiny:test", "train", cache_dir=cache)


def test_hub_greyscale_without_labels_cropped_and_resized(tmp_path):
    cache = tmp_path / "hub"
    grey = [rand_images(400 + i, shape) for i, shape in enumerate([(12, 16), (16, 12)])]
    table = pa.table({"image": pa.array([{"bytes": png_bytes(a), "path": None} for a in grey], IMAGE_TYPE)})
    write_hub_parquet(cache, "owner/grey", "data/train-00000-of-00001.parquet", table)
    with pytest.raises(ValueError, match=r"row 1 column 'image' is 12x16.*pass a resolution"):
        standard.load_hub_dataset("hf:owner/grey", cache_dir=cache)
    s = standard.load_hub_dataset("hf:owner/grey", resolution=12, cache_dir=cache)
    assert_split(s, np.stack([centre_square(a) for a in grey])[:, None], None, "hf:owner/grey", "train")
    assert s.resize == "center_crop"


def test_hub_specs_and_names_resolve(tmp_path):
    assert standard.resolve_dataset("cifar10") is DATASETS.get("cifar10")
    for bad in ("hf:", "hf:noslash", "hf:a/b:c:d", "hf:/x"):
        with pytest.raises(ValueError, match="hf:OWNER/NAME"):
            standard.resolve_dataset(bad)


def test_hub_dataset_not_cached_fails_fast_offline(tmp_path):
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as e:
        standard.load_hub_dataset("hf:owner/absent:test", cache_dir=tmp_path / "hub")
    assert time.perf_counter() - start < 1.0
    assert str(tmp_path / "hub" / "datasets--owner--absent") in str(e.value)
    assert "data/test-*.parquet" in str(e.value) and "hf download owner/absent" in str(e.value)


# ------------------------------------------------------------------------------------------- missing files, offline

EXPECTED_PATHS = {  # name -> (paths under each root that the error must name, how-to text it must contain)
    "cifar10": (["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/data_batch_5"], "cifar-10-python.tar.gz"),
    "cifar100": (["cifar-100-python/train"], "cifar-100-python.tar.gz"),
    "stl10": (["stl10_binary/train_X.bin", "stl10_binary/train_y.bin"], "stl10_binary.tar.gz"),
    "svhn": (["train_32x32.mat", "svhn/train_32x32.mat"], "housenumbers/train_32x32.mat"),
    "celeba": (["celeba/img_align_celeba", "celeba/list_eval_partition.txt"], "CelebA.html"),
    "fashion_mnist": (["FashionMNIST/raw/train-images-idx3-ubyte.gz", "FashionMNIST/raw/train-labels-idx1-ubyte.gz"],
                      "dataset-fashion-mnist"),
    "ffhq": (["ffhq/images1024x1024/00000/00000.png", "ffhq/thumbnails128x128/00000/00000.png"], "download_ffhq.py"),
    "afhq": (["afhq/train/cat", "afhq/train/dog", "afhq/train/wild"], "stargan-v2"),
} | {f"lsun_{c}": ([f"lsun/{c}/data.mdb" if c == "cat" else f"lsun/{c}_train_lmdb/data.mdb", f"lsun/{c}"],
                   "dl.yf.io/lsun") for c in standard.LSUN_CATEGORIES}


def test_every_registered_standard_dataset_is_covered():
    assert set(EXPECTED_PATHS) == set(standard.STANDARD_DATASETS)
    assert all(n in DATASETS for n in standard.STANDARD_DATASETS)


@pytest.mark.parametrize("name", standard.STANDARD_DATASETS)
def test_missing_offline_fails_fast_naming_the_paths(tmp_path, monkeypatch, name):
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path / "default"))
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as e:
        load(name, "train", root=tmp_path / "given")
    assert time.perf_counter() - start < 1.0
    message = str(e.value)
    paths, how = EXPECTED_PATHS[name]
    for root in ("given", "default"):
        for p in paths:
            assert str(tmp_path / root / p) in message, (p, message)
    assert how in message


def test_missing_with_the_host_unreachable_fails_fast(tmp_path, monkeypatch):
    monkeypatch.delenv("GANBENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="www.cs.toronto.edu:443 did not answer"):
        load("cifar10", "test", root=tmp_path)  # conftest refuses the connection: the probe says offline
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------------------------------ download (loopback)


@pytest.fixture
def loopback_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "served"``; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_cifar_download_is_checked_against_the_md5(tmp_path, monkeypatch, loopback_server):
    served, url = loopback_server
    expected = write_cifar(tmp_path / "made", "cifar10")
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "made" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.delenv("GANBENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")

    monkeypatch.setitem(standard.DOWNLOADS, "cifar10",
                        (standard.Download(f"{url}/cifar-10-python.tar.gz", "0" * 32, True),))
    with pytest.raises(OSError, match=f"md5 {md5}, but torchvision publishes 0{{32}}"):
        load("cifar10", "test", root=tmp_path / "bad")
    assert not any((tmp_path / "bad").iterdir())  # the bad file was deleted and nothing unpacked

    monkeypatch.setitem(standard.DOWNLOADS, "cifar10", (standard.Download(f"{url}/cifar-10-python.tar.gz", md5, True),))
    s = load("cifar10", "test", root=tmp_path / "good")
    assert_split(s, *expected["test"], "cifar10", "test")
    assert (tmp_path / "good" / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert not (tmp_path / "good" / ".cifar-10-python.tar.gz.part").exists()


def test_svhn_download_keeps_the_checked_file(tmp_path, monkeypatch, loopback_server):
    served, url = loopback_server
    images, labels = write_svhn(served, "test_32x32.mat", 33, 4)
    md5 = hashlib.md5((served / "test_32x32.mat").read_bytes()).hexdigest()
    monkeypatch.delenv("GANBENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(standard.DOWNLOADS, "svhn/test", (standard.Download(f"{url}/test_32x32.mat", md5, False),))
    assert_split(load("svhn", "test", root=tmp_path / "dl"), images, labels, "svhn", "test")
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["test_32x32.mat"]  # torchvision's place


def test_hub_blob_is_checked_against_the_hash_it_is_named_by(tmp_path):
    data = b"parquet bytes"
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for name in (hashlib.sha256(data).hexdigest(),  # an LFS file: its sha256
                 hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()):  # a git file: its git blob sha1
        (blobs / name).write_bytes(data)
        link = tmp_path / f"link-{name[:6]}"
        link.symlink_to(blobs / name)
        standard._verify_hub_blob(link)  # matches: no error
        (blobs / name).write_bytes(data + b"!")
        with pytest.raises(OSError, match=f"publishes {name}"):
            standard._verify_hub_blob(link)
        assert not (blobs / name).exists()  # the corrupt blob is gone, so the next call downloads it again
