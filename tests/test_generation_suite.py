"""The generation suite: presets resolved into jobs, task scores on every row, and the reference checks."""

import copy
import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from ganbench.data import load
from ganbench.data.superres import bicubic_upscale, downscale
from ganbench.results.schema import Score
from ganbench.runner import load_suite, reference_checks, run_suite
from ganbench.runner.stages import trained_generator
from ganbench.tasks import Check
from ganbench.zoo import get_model

SUITE = """
name = "gen_small"
results = "{results}"
leaderboard = "{board}"
sample_seed = 3

[[datasets]]
name = "mnist"
resolution = 32
extractor = "mnist_cnn"
n_samples = 100
untrained = [{{ model = "pixelcnn", preset = "tiny" }}]

[[datasets]]
name = "sr_digits"
resolution = 32
extractor = "mnist_cnn"
n_samples = 60

[[models]]
model = "pixelcnn"
dataset = "mnist"
preset = "tiny"
config = {{ layers = 3 }}
train = {{ steps = 30, batch_size = 16 }}

[[models]]
model = "text2img"
dataset = "mnist"
preset = "tiny"
train = {{ steps = 3, batch_size = 8 }}

[[models]]
model = "srgan"
dataset = "sr_digits"
preset = "tiny"
config = {{ pretrain_steps = 2 }}
train = {{ steps = 4, batch_size = 8 }}
"""


def _label(job) -> str:
    """A job's row: "model", "bench", or the reference row it draws ("real", "untrained", "bicubic", ...)."""
    return job.row if job.kind == "reference" else job.kind


def test_the_builtin_suite_trains_each_tiny_preset_beside_untrained_and_bicubic_rows():
    suite = load_suite("generation")
    for m in suite.models:
        assert m.config == get_model(m.model).presets["tiny"], m.model
    assert {m.model for m in suite.models} == {"stylegan2", "progan", "dcgan", "cdcgan", "text2img", "pixelcnn", "srgan"}
    kinds = [(_label(j), j.dataset.name, j.model.model if j.model else None) for j in suite.jobs()]
    assert ("untrained", "mnist", "stylegan2") in kinds and ("untrained", "mnist", "progan") in kinds
    assert ("bicubic", "sr_digits", None) in kinds and ("bicubic", "mnist", None) not in kinds
    assert suite.datasets["mnist"].untrained_plans()[0].config == get_model("stylegan2").presets["tiny"]


def test_a_preset_is_merged_under_the_config_and_a_wrong_one_is_named(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SUITE.format(results=tmp_path / "r", board=tmp_path / "b.md"))
    suite = load_suite(str(path))
    pixelcnn = next(m for m in suite.models if m.model == "pixelcnn")
    assert pixelcnn.config == {**get_model("pixelcnn").presets["tiny"], "layers": 3}
    path.write_text(SUITE.format(results=tmp_path / "r", board=tmp_path / "b.md").replace('preset = "tiny"\nconfig',
                                                                                          'preset = "tinny"\nconfig'))
    with pytest.raises(ValueError, match="pixelcnn has no preset 'tinny'; valid: paper, tiny"):
        load_suite(str(path))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gen")
    path = tmp / "s.toml"
    path.write_text(SUITE.format(results=tmp / "results", board=tmp / "board.md"))
    suite = load_suite(str(path))
    results = run_suite(suite, work_dir=tmp / "work", progress=False)
    return suite, {r.run_id: r for r in results}, tmp / "work"


def _row(suite, results, kind, model=None, dataset="mnist"):
    job = next(j for j in suite.jobs() if _label(j) == kind and j.dataset.name == dataset
               and (model is None or j.model.model == model))
    return job, results[job.id]


@pytest.mark.slow  # shares a 25 s suite run (python -m pytest -m slow)
def test_pixelcnn_row_reports_bits_per_dim_of_the_test_split(small_run):
    suite, results, work = small_run
    job, r = _row(suite, results, "model", "pixelcnn")
    net = trained_generator(job, work).net
    test = load("mnist", "test", 32).data
    with torch.no_grad():  # independent: the categorical cross-entropy of every sub-pixel, in bits
        logits = torch.cat([net.logits(test[i:i + 250].float() / 127.5 - 1) for i in range(0, len(test), 250)])
        nll = torch.nn.functional.cross_entropy(logits.double().movedim(2, 1), test.long(), reduction="none")
    expected = float(nll.flatten(1).mean(1).mean()) / math.log(2)
    assert r.scores["bits_per_dim"].value == pytest.approx(expected, rel=1e-9)
    assert r.scores["bits_per_dim"].n == len(test) and r.scores["bits_per_dim"].value < 8
    assert "fid" in r.scores  # and the sample metrics every row gets
    _, untrained = _row(suite, results, "untrained", "pixelcnn")
    assert "bits_per_dim" not in untrained.scores


@pytest.mark.slow  # shares a 25 s suite run (python -m pytest -m slow)
def test_text_to_image_rows_and_the_real_row_carry_r_precision(small_run, classifier_logits):
    suite, results, _ = small_run
    _, model = _row(suite, results, "model", "text2img")
    assert {"r_precision", "attr_thickness", "attr_slant", "attr_size"} <= set(model.scores)
    _, real = _row(suite, results, "real")
    assert real.kind == "reference" and real.reference_row == "real"
    test = load("mnist", "test", 32)
    # real digits with their own captions: R-precision is the classifier's accuracy on them
    accuracy = float((classifier_logits(test.data[:100], "mnist_cnn").argmax(1) == test.labels[:100]).double().mean())
    assert real.scores["r_precision"].value == pytest.approx(accuracy, abs=1e-12)


@pytest.mark.slow  # shares a 25 s suite run (python -m pytest -m slow)
def test_super_resolution_rows_are_scored_on_the_test_lr_images_beside_bicubic(small_run):
    from ganbench.zoo.srgan import upscale

    suite, results, work = small_run
    _, bicubic = _row(suite, results, "bicubic", dataset="sr_digits")
    hr = load("sr_digits", "test", 32).data[:60]
    out = bicubic_upscale(downscale(hr))
    psnr = [peak_signal_noise_ratio(h[0, 4:-4, 4:-4].numpy(), o[0, 4:-4, 4:-4].numpy(), data_range=255)
            for h, o in zip(hr, out)]
    assert bicubic.scores["psnr_y"].value == pytest.approx(float(np.mean(psnr)), rel=1e-6)  # torchmetrics: ~2e-8
    assert bicubic.kind == "reference" and bicubic.reference_row == "bicubic"
    assert bicubic.model.name == "bicubic x4 upsampling" and bicubic.samples.transform == "bicubic_upscale"
    job, model = _row(suite, results, "model", "srgan", dataset="sr_digits")
    from safetensors.torch import load_file

    samples = load_file(str(work / job.id / "samples.safetensors"))["samples"]
    assert torch.equal(samples, upscale(trained_generator(job, work).net, downscale(hr)))
    assert {"psnr_y", "ssim_y", "fid"} <= set(model.scores)
    checks = [c for c in reference_checks(list(results.values())) if c.run_id == job.id]
    assert all(isinstance(c, Check) for c in checks)
    by_metric = {c.what.split()[0]: c.passed for c in checks}
    assert by_metric["psnr_y"] == (model.scores["psnr_y"].value > bicubic.scores["psnr_y"].value)


def _score(v):
    return Score(v, 0.1, v - 0.2, v + 0.2, 100, False, "planted")


@pytest.mark.slow  # shares a 25 s suite run (python -m pytest -m slow)
def test_reference_checks_catch_a_model_worse_than_its_untrained_network(small_run):
    suite, results, _ = small_run
    _, model = _row(suite, results, "model", "pixelcnn")
    _, untrained = _row(suite, results, "untrained", "pixelcnn")
    # planted copies of the model's result (results are built only by make_result; these are edited copies)
    better, worse = copy.deepcopy(model), copy.deepcopy(model)
    better.scores = {**model.scores, "fid": _score(untrained.scores["fid"].value - 1)}
    worse.scores = {"fid": _score(untrained.scores["fid"].value + 1), "bits_per_dim": _score(8.2)}
    assert [c.passed for c in reference_checks([better, untrained])] == [True, True]
    assert [c.passed for c in reference_checks([worse, untrained])] == [False, False]


@pytest.mark.slow  # shares a 25 s suite run (python -m pytest -m slow)
def test_the_report_redraws_the_super_resolution_rows_exactly(small_run):
    from safetensors.torch import load_file

    from ganbench.report.html import checkpoint_index, redraw

    suite, results, work = small_run
    index = checkpoint_index([work])
    for kind, model in (("bicubic", None), ("model", "srgan")):
        job, result = _row(suite, results, kind, model, dataset="sr_digits")
        scored = load_file(str(work / job.id / "samples.safetensors"))["samples"]
        redrawn = redraw(result, index)
        assert redrawn.data is not None and torch.equal(redrawn.data, scored), redrawn.origin
