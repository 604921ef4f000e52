"""The training loop: checkpoints, resume after SIGKILL, EMA, and refusal to mix runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ganbench.data import load
from ganbench.train import TrainConfig, train
from ganbench.train.loop import CheckpointMismatch
from ganbench.zoo import get_model, load_generator

STEPS, EVERY, BATCH = 1500, 100, 64


def _checkpoint_step(path) -> int:
    with safe_open(str(path), "pt") as f:
        return int(f.metadata()["step"])


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint_and_matches_uninterrupted(tmp_path):
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ganbench.cli", "train", "mlpgan", "--dataset", "ring8", "--steps", str(STEPS),
           "--batch-size", str(BATCH), "--checkpoint-every", str(EVERY), "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpt = run / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not (ckpt.exists() and _checkpoint_step(ckpt) >= 2 * EVERY) and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _checkpoint_step(ckpt)
    assert EVERY <= killed_at < STEPS
    assert not (run / "generator.safetensors").exists()

    # without --resume the existing run is not overwritten
    refused = subprocess.run(cmd, capture_output=True, text=True)
    assert refused.returncode != 0 and "--resume" in refused.stderr

    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    info = json.loads(resumed.stdout)
    assert info["resumed_from"] >= killed_at and info["steps"] == STEPS

    fresh = train(get_model("mlpgan"), load("ring8", "train"), tmp_path / "fresh",
                  TrainConfig(steps=STEPS, batch_size=BATCH, checkpoint_every=EVERY), progress=False)
    a, b = load_file(str(run / "generator.safetensors")), load_file(str(fresh.weights_path))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    lines = (run / "losses.csv").read_text().strip().splitlines()
    assert len(lines) == STEPS + 1  # header + one row per step, none lost or duplicated


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    split = load("ring8", "train")
    train(get_model("mlpgan"), split, tmp_path, TrainConfig(steps=20, batch_size=16, checkpoint_every=10), progress=False)
    with pytest.raises(CheckpointMismatch, match="train_config"):
        train(get_model("mlpgan"), split, tmp_path, TrainConfig(steps=40, batch_size=32), resume=True, progress=False)


def test_ema_generator_is_saved_and_sampling_is_seeded(tmp_path):
    out = train(get_model("mlpgan"), load("ring8", "train"), tmp_path,
                TrainConfig(steps=30, batch_size=16, ema_decay=0.9), progress=False)
    g = load_generator(out.weights_path)
    assert g.weights_sha256 == out.generator.weights_sha256
    assert torch.equal(g.sample(100, seed=3), g.sample(100, seed=3))
    assert not torch.equal(g.sample(100, seed=3), g.sample(100, seed=4))
    assert torch.equal(g.sample(100, seed=3)[:40], g.sample(40, seed=3, batch_size=7)[:40]) or \
        torch.allclose(g.sample(100, seed=3)[:40], g.sample(40, seed=3, batch_size=7), atol=1e-6)


def test_dcgan_trains_images_and_outputs_uint8(tmp_path):
    split = load("mnist", "train", 32)
    out = train(get_model("lsgan"), split, tmp_path, TrainConfig(steps=3, batch_size=8),
                {"ngf": 8, "ndf": 8}, progress=False)
    x = out.generator.sample(5, seed=0)
    assert x.dtype == torch.uint8 and x.shape == (5, 1, 32, 32)
