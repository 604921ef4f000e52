"""The command line: name checks, eval's errors on bad input, and a full eval through the CLI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import main
from ganbench.data import load
from ganbench.results.store import read_results


@pytest.fixture
def runner():
    return CliRunner()


def _digits_folder(folder, n, split="test"):
    folder.mkdir(parents=True, exist_ok=True)
    data = load("mnist", split, 32).data[:n]
    for i, img in enumerate(data):
        Image.fromarray(img[0].numpy()).save(folder / f"{i:04d}.png")
    return folder


def test_ls_lists_every_registry(runner):
    out = runner.invoke(main, ["ls"])
    assert out.exit_code == 0
    from ganbench.cli import KINDS

    sections = [line[:-1] for line in out.output.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert sections == list(KINDS)  # every registry, each under its own heading
    assert {"models", "datasets", "metrics", "extractors", "tasks", "suites"} <= set(sections)
    for name in ("dcgan", "lsgan", "mlpgan", "mnist", "ring8", "grid25", "digits8", "fid", "kid", "prc", "mnist_cnn",
                 "unconditional", "quick"):
        assert name in out.output
    tasks = runner.invoke(main, ["ls", "tasks"])
    assert tasks.exit_code == 0 and tasks.output.startswith("tasks:")
    listed = {line.split()[0] for line in tasks.output.splitlines()[1:]}
    assert {"unconditional", "class_conditional", "text_to_image", "likelihood", "paired_translation",
            "unpaired_translation", "super_resolution"} <= listed


def test_unknown_model_lists_the_valid_ones(runner, tmp_path):
    out = runner.invoke(main, ["train", "dcgna", "--dataset", "mnist", "--out", str(tmp_path)])
    assert out.exit_code == 2
    assert "Did you mean 'dcgan'" in out.output
    assert all(name in out.output for name in ("dcgan", "lsgan", "mlpgan", "pix2pix", "cyclegan"))


def test_unknown_dataset_and_metric_are_refused(runner, tmp_path):
    folder = _digits_folder(tmp_path / "s", 4)
    out = runner.invoke(main, ["eval", str(folder), "--dataset", "mnsit"])
    assert out.exit_code == 2 and "Did you mean 'mnist'" in out.output
    out = runner.invoke(main, ["eval", str(folder), "--dataset", "mnist", "--metrics", "fid,fdi"])
    assert out.exit_code == 2 and "unknown metric 'fdi'" in out.output


def test_eval_names_the_corrupt_file_and_writes_nothing(runner, tmp_path):
    folder = _digits_folder(tmp_path / "samples", 20)
    (folder / "0007.png").write_bytes(b"\x89PNG truncated")
    results = tmp_path / "results"
    out = runner.invoke(main, ["eval", str(folder), "--dataset", "mnist", "--resolution", "32", "-n", "20",
                               "--out", str(results)])
    assert out.exit_code == 2
    assert "0007.png" in out.output
    assert not results.exists() or not any(results.iterdir())


def test_eval_with_too_few_samples_names_the_counts(runner, tmp_path):
    folder = _digits_folder(tmp_path / "samples", 12)
    results = tmp_path / "results"
    out = runner.invoke(main, ["eval", str(folder), "--dataset", "mnist", "-n", "500", "--out", str(results)])
    assert out.exit_code == 2
    assert "has 12 samples" in out.output and "asks for 500" in out.output
    assert not results.exists()


def test_eval_of_real_digits_scores_far_better_than_noise(runner, tmp_path):
    real = _digits_folder(tmp_path / "real", 400)
    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):
        Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)).save(noise / f"{i:04d}.png")
    results = tmp_path / "results"
    for folder in (real, noise):
        out = runner.invoke(main, ["eval", str(folder), "--dataset", "mnist", "-n", "400", "--out", str(results)])
        assert out.exit_code == 0, out.output
    by_name = {r.model.name: r for r in read_results(results)}
    r_real, r_noise = by_name["real"], by_name["noise"]
    assert r_real.scores["fid"].value * 20 < r_noise.scores["fid"].value
    assert r_real.scores["is"].value > 7 > 2 > r_noise.scores["is"].value  # 40 digits per split bias IS down
    assert r_real.scores["precision"].value > 0.6 > r_noise.scores["precision"].value
    assert r_real.samples.n == 400 and r_real.samples.source == "folder" and r_real.scores["fid"].n == 400
    assert r_real.extractor.weights_sha256 and r_real.dataset.reference_sha256 == load("mnist", "train", 32).sha256


def test_eval_json_output_of_a_trained_generator(runner, tmp_path):
    run = tmp_path / "run"
    out = runner.invoke(main, ["train", "mlpgan", "--dataset", "ring8", "--steps", "50", "--batch-size", "32",
                               "--out", str(run)])
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["eval", str(run / "generator.safetensors"), "--dataset", "ring8", "-n", "500",
                               "--json", "--out", str(tmp_path / "results")])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert {"fid", "fid_inf", "kid", "precision", "recall", "density", "coverage", "ndb", "copy_fraction",
            "birthday_support", "modes", "hq_fraction", "reverse_kl"} <= set(doc["scores"])
    assert "is" not in doc["scores"] and "ms_ssim" not in doc["scores"]  # no logits, no images for points
    assert doc["model"]["weights_sha256"] == json.loads((run / "train.json").read_text())["weights_sha256"]


def test_a_translation_model_trains_through_the_same_command_at_its_reference_batch(runner, tmp_path):
    from ganbench.zoo import Translator, load_generator

    run = tmp_path / "pix2pix"
    out = runner.invoke(main, ["train", "pix2pix", "--preset", "tiny", "--dataset", "edges2digits", "--resolution",
                               "32", "--steps", "2", "--out", str(run)])
    assert out.exit_code == 0, out.output
    info = json.loads((run / "train.json").read_text())
    assert info["model"] == "pix2pix" and info["dataset"] == "edges2digits" and info["steps"] == 2
    assert info["train_config"]["batch_size"] == 1  # no --batch-size: the model's reference batch (pix2pix: 1)
    tr = load_generator(run / "generator.safetensors")
    assert isinstance(tr, Translator) and tr.weights_sha256 == info["weights_sha256"]
    edges = load("edges2digits", "test", 32).a[:3]
    assert tr.translate(edges).shape == (3, 1, 32, 32)
