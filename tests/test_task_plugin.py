"""A new task kind, written here and nowhere under ``ganbench/``: denoising (noisy digits in, clean digits out).

It registers a dataset, a task and a model, trains one step through the one training loop, is scored through the
one evaluation path (L1 and PSNR to the clean target, FID against the clean training digits, an identity row that
scores the noisy inputs as if they were outputs), and renders leaderboard rows, all through ganbench's public
registries and contracts. The registrations are removed again when the test ends.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from ganbench.data import load
from ganbench.data.translation import TranslationSplit
from ganbench.evaluate import Protocol, Row, evaluate
from ganbench.registry import DATASETS, MODELS, TASKS
from ganbench.report.leaderboard import render_markdown
from ganbench.results.schema import SampleInfo
from ganbench.runner import reference_checks
from ganbench.tasks import IDENTITY, REAL, ReferenceRow, SampleSet, Task, TaskData, check_sample_count, register_task
from ganbench.train import TrainConfig, train
from ganbench.zoo import Generator, ModelEntry, StepContext, from_uint8, register_model, to_uint8

NOISE_STD = 60.0  # grey levels


def noisy_digits(split: str = "train", resolution: int | None = None) -> TranslationSplit:
    """Each MNIST digit with seeded Gaussian pixel noise (A) beside the clean digit (B)."""
    clean = load("mnist", split, resolution)
    g = torch.Generator().manual_seed(7 if split == "train" else 8)
    noisy = (clean.data.float() + NOISE_STD * torch.randn(clean.data.shape, generator=g)).round().clamp(0, 255)
    return TranslationSplit("noisy_digits", split, noisy.to(torch.uint8), clean.data, True, clean.resize,
                            f"mnist + N(0, {NOISE_STD}^2) noise", clean.labels, clean.labels, ("noisy", "clean"))


class Denoising(Task):
    name = "denoising"
    description = "noisy digits in, clean digits out: L1/PSNR to the clean target, FID against clean digits"
    output = "denoise"
    data_kinds = ("paired",)
    reference_rows = (IDENTITY, REAL)
    main_metric = "l1"
    families = ("paired",)
    sample_metrics = ("fid",)

    def load(self, dataset: str, reference_split: str, heldout_split: str | None, resolution: int | None,
             resize: str = "bilinear") -> TaskData:
        if resize != "bilinear":
            raise ValueError(f"the denoising pairs are resized bilinearly; resize mode {resize!r} is not offered")
        train_split = DATASETS.get(dataset)(reference_split, resolution)
        test = DATASETS.get(dataset)(heldout_split or "test", resolution)
        return TaskData(dataset, train_split.domain("b"), f"{reference_split} (clean)", None, test,
                        int(test.b.shape[-1]))

    def draw(self, model: Any, data: TaskData, n: int, seed: int) -> SampleSet:
        check_sample_count(len(data.test), n, "the noisy test digits")
        t0 = time.perf_counter()
        outputs = model.denoise(data.test.a[:n])
        info = SampleInfo(n, "transform", model=model.name, weights_sha256=model.weights_sha256,
                          dataset=data.test.dataset, split=data.test.split, split_sha256=data.test.sha256, domain="a",
                          transform="denoise")
        return SampleSet(outputs, info, time.perf_counter() - t0)

    def draw_reference(self, row: ReferenceRow, data: TaskData, n: int, seed: int) -> SampleSet:
        test = data.test
        images, domain = (test.a[:n], "a") if row is IDENTITY else (test.b[:n], "b")
        return SampleSet(images, SampleInfo(n, "transform" if row is IDENTITY else "split", dataset=test.dataset,
                                            split=test.split, split_sha256=test.sha256, domain=domain,
                                            transform="identity" if row is IDENTITY else None))

    def metric_extras(self, samples: SampleSet, data: TaskData, row: ReferenceRow | None) -> dict[str, Any]:
        return {"targets": data.test.b[:len(samples)]}

    def checks(self, result, others):
        from ganbench.tasks.base import compare_check

        return [c for o in others if o.reference_row == IDENTITY.name
                for c in [compare_check(result, o, "l1", "identity", False)] if c is not None]


@dataclass
class DenoiserConfig:
    resolution: int = 28  # image side
    channels: int = 1  # image channels
    width: int = 8  # hidden channels


class DenoiserNet(nn.Module):
    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cfg.channels, cfg.width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(cfg.width, cfg.channels, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Denoiser(Generator):
    @torch.no_grad()
    def denoise(self, images: torch.Tensor) -> torch.Tensor:
        return to_uint8(self.net(from_uint8(images)))


def l1_step(ctx: StepContext) -> dict[str, float]:
    loss = (ctx.G(ctx.batch["a"]) - ctx.batch["b"]).abs().mean()
    ctx.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    ctx.opt_g.step()
    return {"l1": loss.item()}


ENTRY = ModelEntry("denoiser_test", "test", "denoising", "paired", DenoiserConfig, DenoiserNet, lambda cfg: None,
                   "l1", 1e-2, 1e-2, (0.9, 0.999), "a test's own model", train_step=l1_step, wrapper=Denoiser,
                   batch_size=16)


@pytest.fixture
def denoising():
    """Register the dataset, task and model; remove them afterwards so no other test sees them."""
    DATASETS.register("noisy_digits", noisy_digits, kind="translation", task="denoising")
    register_task(Denoising())
    register_model(ENTRY)
    try:
        yield
    finally:
        DATASETS.unregister("noisy_digits")
        TASKS.unregister("denoising")
        MODELS.unregister("denoiser_test")


def test_a_task_written_in_a_test_file_trains_evaluates_and_renders(denoising, tmp_path):
    split = DATASETS.get("noisy_digits")("train")
    outcome = train(MODELS.get("denoiser_test"), split, tmp_path / "run", TrainConfig(steps=1, checkpoint_every=1),
                    progress=False)
    assert outcome.steps == 1 and (tmp_path / "run" / "losses.csv").read_text().count("\n") == 2
    model = outcome.generator
    assert isinstance(model, Denoiser) and model.weights_sha256

    protocol = Protocol("noisy_digits", "mnist_cnn", 200, seed=3)
    scored = evaluate(protocol, model=model, progress=False)
    identity = evaluate(protocol, task="denoising", row=Row(IDENTITY), progress=False)
    real = evaluate(protocol, task="denoising", row=Row(REAL), progress=False)

    assert scored.task == "denoising" and scored.kind == "model" and identity.reference_row == "identity"
    assert scored.samples.transform == "denoise" and scored.samples.split_sha256 == split_sha("test")
    assert set(scored.scores) == {"fid", "l1", "psnr", "ssim"}
    # the identity row's L1 is the mean absolute noise left after clipping: recompute it independently
    test = DATASETS.get("noisy_digits")("test")
    expected = (test.a[:200].double() - test.b[:200].double()).abs().mean().item() / 255
    assert identity.scores["l1"].value == pytest.approx(expected, rel=1e-12)
    assert real.scores["l1"].value == 0.0 and real.scores["fid"].value < identity.scores["fid"].value

    board = render_markdown([scored, identity, real], title="denoising")
    assert "noisy_digits · denoising · mnist_cnn" in board
    assert "**denoiser_test**" in board and "*identity mapping*" in board and "l1 ↓" in board
    checks = reference_checks([scored, identity, real])
    assert len(checks) == 1 and checks[0].run_id == scored.run_id and "identity" in checks[0].what


def split_sha(split: str) -> str:
    return DATASETS.get("noisy_digits")(split).sha256


def test_the_registrations_are_gone_after_the_test():
    assert "denoising" not in TASKS and "denoiser_test" not in MODELS and "noisy_digits" not in DATASETS


def test_a_task_that_is_not_a_task_is_refused():
    with pytest.raises(TypeError, match="Task"):
        register_task(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a Task"):
        TASKS.register("not_a_task", object())
    with pytest.raises(TypeError, match="ModelEntry"):
        register_model(dataclasses.replace)  # type: ignore[arg-type]
