"""Issue 15: any model against the user's own data, standard datasets, published statistics and named protocols.

Oracles are the reference libraries on the same inputs: torch-fidelity's ``calculate_metrics`` on the same two
folders, pytorch-fid's and clean-fid's Frechet distance on the statistics ganbench writes, clean-fid's own resizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import main
from ganbench.data import load
from ganbench.data.resize import resize_float
from ganbench.results.store import read_result
from tests.test_standard_datasets import py2_pickle

README = Path(__file__).resolve().parents[1] / "README.md"


def cli(*args: str, env: dict | None = None):
    r = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return r


def write_pngs(folder: Path, images: torch.Tensor) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        arr = im.permute(1, 2, 0).numpy()
        Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory) -> Path:
    """real/: 600 held-out digits; fake/: 500 blurred training digits (far from zero on every score)."""
    root = tmp_path_factory.mktemp("folders")
    write_pngs(root / "real", load("mnist", "test", None).data[:600])
    train = load("mnist", "train", None).data[:500].float()
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(train, (1, 1, 1, 1), mode="replicate"), 3, 1)
    write_pngs(root / "fake", blurred.round().clamp(0, 255).to(torch.uint8))
    return root


def eval_json(*args: str) -> dict:
    r = cli("eval", *args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.output[r.output.index("{"):])


def test_folder_against_folder_equals_torch_fidelity_on_the_same_folders(digit_folders, tmp_path):
    import torch_fidelity

    from ganbench.features import get_extractor

    ours = eval_json(str(digit_folders / "fake"), "--reference", str(digit_folders / "real"), "--extractor",
                     "mnist_cnn", "-n", "500", "--heldout-split", "none", "--metrics", "fid,kid", "--seed", "7",
                     "--out", str(tmp_path))
    path, _ = get_extractor("mnist_cnn").weights()
    theirs = torch_fidelity.calculate_metrics(
        input1=str(digit_folders / "fake"), input2=str(digit_folders / "real"), cuda=False, fid=True, kid=True,
        feature_extractor="ganbench-mnist-cnn", feature_extractor_weights_path=str(path), kid_subset_size=250,
        kid_subsets=100, rng_seed=7, cache=False, verbose=False, batch_size=250)
    assert ours["scores"]["fid"]["value"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-6)
    assert ours["scores"]["kid"]["value"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-6)
    assert ours["samples"]["source"] == "folder" and ours["dataset"]["name"] == "folder:real"


def test_a_stats_file_is_read_by_pytorch_fid_and_clean_fid_and_reused_as_a_reference(digit_folders, tmp_path):
    from cleanfid.fid import frechet_distance as cleanfid_fd
    from pytorch_fid.fid_score import calculate_frechet_distance

    from ganbench.features import extract, get_extractor
    from ganbench.metrics.frechet import GaussianStats

    out = tmp_path / "real.npz"
    r = cli("stats", str(digit_folders / "real"), "--extractor", "mnist_cnn", "--out", str(out))
    assert r.exit_code == 0, r.output
    with np.load(out) as f:  # pytorch-fid's own reading
        mu_r, sigma_r = f["mu"][:], f["sigma"][:]
        meta = json.loads(str(f["ganbench"]))
    assert mu_r.dtype == np.float64 and sigma_r.dtype == np.float64 and meta["n"] == 600
    assert meta["extractor"] == "mnist_cnn" and len(meta["extractor_weights_sha256"]) == 64

    args = ("-n", "500", "--heldout-split", "none", "--metrics", "fid", "--out", str(tmp_path / "res"))
    via_folder = eval_json(str(digit_folders / "fake"), "--reference", str(digit_folders / "real"), *args)
    via_stats = eval_json(str(digit_folders / "fake"), "--reference", str(out), *args)
    fake = extract(get_extractor("mnist_cnn"), load_folder(digit_folders / "fake"), progress=False)["pool"]
    g = GaussianStats.from_features(fake)
    expected = calculate_frechet_distance(g.mu, g.sigma, mu_r, sigma_r)
    assert via_stats["scores"]["fid"]["value"] == pytest.approx(expected, rel=1e-6)
    assert cleanfid_fd(g.mu, g.sigma, mu_r, sigma_r) == pytest.approx(expected, rel=1e-6)
    assert via_stats["scores"]["fid"]["value"] == pytest.approx(via_folder["scores"]["fid"]["value"], rel=1e-6)

    plain = tmp_path / "pytorch_fid_style.npz"  # mu and sigma only, as pytorch-fid's --save-stats writes them
    np.savez(plain, mu=mu_r, sigma=sigma_r)
    via_plain = eval_json(str(digit_folders / "fake"), "--reference", str(plain), "--extractor", "mnist_cnn", *args)
    assert via_plain["scores"]["fid"]["value"] == pytest.approx(via_folder["scores"]["fid"]["value"], rel=1e-6)


def load_folder(path: Path) -> torch.Tensor:
    from ganbench.data import image_folder

    return image_folder(path, channels=1).data


def test_against_a_stats_file_other_metrics_are_skipped_with_a_reason_or_refused(digit_folders, tmp_path):
    out = tmp_path / "real.npz"
    assert cli("stats", str(digit_folders / "real"), "--extractor", "mnist_cnn", "--out", str(out)).exit_code == 0
    doc = eval_json(str(digit_folders / "fake"), "--reference", str(out), "-n", "500", "--heldout-split", "none",
                    "--out", str(tmp_path / "res"))
    assert {"fid", "fid_inf"} <= set(doc["scores"]) and "kid" not in doc["scores"]
    assert {"kid", "prc", "dc"} <= set(doc["skipped"]) and "statistics file" in doc["skipped"]["kid"]
    r = CliRunner().invoke(main, ["eval", str(digit_folders / "fake"), "--reference", str(out), "-n", "500",
                                  "--metrics", "kid", "--heldout-split", "none"])
    assert r.exit_code == 2 and "kid" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("src,dst", [(28, 32), (64, 299), (256, 299)])
def test_the_clean_resize_equals_clean_fid(src, dst):
    from cleanfid.resize import make_resizer

    rng = np.random.default_rng(src)
    img = rng.integers(0, 256, (src, src, 3), dtype=np.uint8)
    theirs = make_resizer("PIL", False, "bicubic", (dst, dst))(img)
    ours = resize_float(torch.from_numpy(img).permute(2, 0, 1)[None], dst, "clean")[0].permute(1, 2, 0).numpy()
    assert np.abs(theirs - ours).max() <= 1e-5
    legacy = make_resizer("PyTorch", False, "bilinear", (dst, dst))(img)
    ours_legacy = resize_float(torch.from_numpy(img).permute(2, 0, 1)[None], dst, "legacy_pytorch")[0]
    assert np.abs(legacy - ours_legacy.permute(1, 2, 0).numpy()).max() <= 1e-4


@pytest.mark.parametrize("resize", ["bilinear", "clean"])
def test_a_folder_at_another_resolution_is_resized_like_its_reference(tmp_path, resize):
    """The held-out digits as 28 px files scored at 32 equal the same digits brought to 32 the same way and scored
    natively; both resize modes are recorded."""
    from ganbench.evaluate import evaluate
    from ganbench.protocols import Protocol
    from ganbench.results.schema import SampleInfo
    from ganbench.tasks import SampleSet
    from ganbench.tasks.base import load_resized

    folder = write_pngs(tmp_path / "heldout", load("mnist", "test", None).data)
    doc = eval_json(str(folder), "--reference", "mnist", "--resolution", "32", "--resize", resize, "-n", "1000",
                    "--metrics", "fid,kid", "--heldout-split", "none", "--seed", "12345", "--out", str(tmp_path / "r"))
    native = load_resized("mnist", "test", 32, resize).data
    direct = evaluate(Protocol("mnist", "mnist_cnn", 1000, 12345, 32, "train", None, ("fid", "kid"), resize=resize),
                      samples=SampleSet(native, SampleInfo(1000, "split", dataset="mnist", split="test")),
                      progress=False)
    assert doc["scores"]["fid"]["value"] == pytest.approx(direct.scores["fid"].value, rel=1e-6)
    assert doc["scores"]["kid"]["value"] == pytest.approx(direct.scores["kid"].value, rel=1e-6, abs=1e-12)
    assert doc["samples"]["resize"] == resize and doc["dataset"]["resize"] == resize
    if resize == "bilinear":  # the old mismatch gave 0.342 (PIL bicubic samples against a bilinear reference)
        assert doc["scores"]["fid"]["value"] < 0.15


def test_protocols_are_listed_recorded_and_never_mixed(digit_folders, tmp_path):
    listing = cli("ls", "protocols")
    for name in ("fid50k_full", "kid50k_full", "pr50k3_full", "is50k", "fid10k", "fid50k_clean"):
        assert name in listing.output
    res = tmp_path / "res"
    # a custom result and a named-protocol result on the same reference
    folder = write_pngs(tmp_path / "g", load("mnist", "test", None).data[:1000])
    custom = eval_json(str(folder), "--reference", "mnist", "-n", "1000", "--metrics", "fid", "--heldout-split",
                       "none", "--out", str(res))
    named = eval_json(str(folder), "--reference", "mnist", "--protocol", "digits1k", "--heldout-split", "none",
                      "--out", str(res / "named"))
    assert custom["protocol"] == "custom" and named["protocol"] == "digits1k"
    board = CliRunner().invoke(main, ["leaderboard", str(res), "--out", str(tmp_path / "b.md")])
    assert board.exit_code == 2 and "different protocols" in board.output
    named_file = next((res / "named").glob("*.json"))
    custom_file = next(res.glob("*.json"))
    check = CliRunner().invoke(main, ["check", str(named_file), "--against", str(custom_file)])
    assert check.exit_code == 2 and "protocol" in check.output
    conflict = CliRunner().invoke(main, ["eval", str(folder), "--reference", "mnist", "--protocol", "digits1k",
                                         "-n", "50"])
    assert conflict.exit_code == 2 and "conflicts with protocol" in conflict.output


def test_a_folder_given_as_a_dataset_and_unknown_references_are_messages(digit_folders):
    ok = CliRunner().invoke(main, ["eval", str(digit_folders / "fake"), "--dataset", str(digit_folders / "real"),
                                   "--extractor", "mnist_cnn", "-n", "100", "--metrics", "fid", "--heldout-split",
                                   "none", "--out", "/tmp/ganbench-test-unused"])
    assert ok.exit_code == 0, ok.output
    for ref in ("mnits", "no/such/folder", "image_folder"):
        r = CliRunner().invoke(main, ["eval", str(digit_folders / "fake"), "--reference", ref])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "Did you mean 'mnist'" in CliRunner().invoke(main, ["eval", "x/", "--reference", "mnits"]).output


def test_a_zip_and_a_nested_folder_read_like_the_flat_folder(digit_folders, tmp_path):
    import zipfile

    from ganbench.data import image_folder

    flat = image_folder(digit_folders / "real", channels=1)
    nested = tmp_path / "nested"
    for i, p in enumerate(sorted((digit_folders / "real").glob("*.png"))):
        (nested / f"part{i // 200}").mkdir(parents=True, exist_ok=True)
        (nested / f"part{i // 200}" / p.name).write_bytes(p.read_bytes())
    with zipfile.ZipFile(tmp_path / "real.zip", "w") as z:
        for p in sorted((digit_folders / "real").glob("*.png")):
            z.write(p, f"imgs/{p.name}")
    assert torch.equal(image_folder(nested, channels=1).data, flat.data)
    assert torch.equal(image_folder(tmp_path / "real.zip", channels=1).data, flat.data)


# ----------------------------------------------------------------------------------------------- the README's commands


def readme_commands() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Your model, your data"):]
    block = section[section.index("```bash") + 7:section.index("```", section.index("```bash") + 7)]
    return [line.split("#")[0].strip() for line in block.strip().splitlines() if line.strip()]


def cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    hwc = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    rows = np.concatenate([hwc[..., c].reshape(n, 1024) for c in range(3)], axis=1)
    # as Python 2's cPickle wrote the published batches (protocol 2 from Python 3 names _codecs.encode, which a
    # CIFAR reader refuses)
    return py2_pickle({b"batch_label": b"b", b"labels": [int(x) for x in rng.integers(0, 10, n)], b"data": rows,
                       b"filenames": [b"f.png"] * n})


def test_the_readme_commands_run_as_written(tmp_path, monkeypatch):
    """Folder against folder, a model against (fabricated) CIFAR-10 under a named protocol, a stats file written and
    reused: the README's lines, run in a directory holding what they name (grey digits in real/ and fake/), with
    test-sized CIFAR (a 12-sample fid10k, random Inception weights of the right shapes)."""
    import dataclasses

    from ganbench.features.inception import write_random_weights
    from ganbench.registry import PROTOCOLS

    commands = readme_commands()
    assert len(commands) == 3 and all(c.startswith("ganbench ") for c in commands)
    monkeypatch.chdir(tmp_path)
    write_pngs(tmp_path / "real", load("mnist", "test", None).data)
    write_pngs(tmp_path / "fake", load("mnist", "train", None).data[:1000])
    data = tmp_path / "data" / "cifar-10-batches-py"
    data.mkdir(parents=True)
    for i in range(1, 6):
        (data / f"data_batch_{i}").write_bytes(cifar_batch(3, i))
    (data / "test_batch").write_bytes(cifar_batch(3, 9))
    (tmp_path / "my_gan.py").write_text(
        "import torch\nclass G:\n    def sample(self, n, seed):\n"
        "        g = torch.Generator().manual_seed(seed)\n"
        "        return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)\n")
    weights = write_random_weights(tmp_path / "inception.pth", seed=0, calibration_images=2)
    env = {"GANBENCH_DATA": str(tmp_path / "data"), "GANBENCH_INCEPTION_WEIGHTS": str(weights)}
    small = dataclasses.replace(PROTOCOLS.get("fid10k"), n=12)
    monkeypatch.setitem(PROTOCOLS._entries["fid10k"].__dict__, "target", small)
    for command in commands:
        for part in command.split(" && "):
            r = CliRunner().invoke(main, part.split()[1:], env=env, catch_exceptions=False)
            assert r.exit_code == 0, (part, r.output)
    assert Path("real.npz").is_file()
    results = sorted(Path("results").glob("*.json"))
    assert {read_result(p).protocol for p in results} == {"custom", "fid10k"}
