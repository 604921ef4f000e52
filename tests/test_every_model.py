"""Every registered model and every registered task, swept from the registries (as timm's ``tests/test_models.py``
sweeps its model list): a model added to the zoo is tested here without a line of test code.

Per model, at its ``tiny`` preset: it builds; its network's outputs keep the uint8 contract its task reads (samples
of the config's shape, or translations of the input's size); the same seed draws the same outputs; one training step
runs through the one loop; a run stopped after its first step and resumed equals an uninterrupted one exactly; and its
generator file loads back to the same tensors. Per task: every declared reference row is drawn and scored, and a
model of the task is scored through the one evaluation path.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ganbench.data.core import Split
from ganbench.data.translation import TranslationSplit
from ganbench.registry import MODELS, TASKS
from ganbench.tasks import UNTRAINED, get_task
from ganbench.train import TrainConfig, train
from ganbench.zoo import Translator, load_generator, untrained_generator

MODEL_NAMES = MODELS.names_in_order()
TASK_NAMES = TASKS.names_in_order()


def synthetic_split(entry, cfg, n: int = 16) -> Split | TranslationSplit:
    """Random data of the shape ``cfg`` trains on (labels 0..9 for the conditional models)."""
    g = torch.Generator().manual_seed(0)
    if entry.data_kind == "points":
        return Split("synthetic", "train", torch.randn(n, cfg.dim, generator=g), torch.arange(n) % 8, "none", "test")
    if entry.data_kind in ("paired", "unpaired"):
        side = cfg.resolution
        a = torch.randint(0, 256, (n, cfg.in_channels, side, side), generator=g, dtype=torch.uint8)
        b = torch.randint(0, 256, (n, cfg.out_channels, side, side), generator=g, dtype=torch.uint8)
        return TranslationSplit("synthetic", "train", a, b, entry.data_kind == "paired", "none", "test")
    images = torch.randint(0, 256, (n, cfg.channels, cfg.resolution, cfg.resolution), generator=g, dtype=torch.uint8)
    return Split("synthetic", "train", images, torch.arange(n) % 10, "none", "test")


def tiny(name: str):
    entry = MODELS.get(name)
    return entry, entry.make_config("tiny" if "tiny" in entry.presets else None)


def draw_outputs(model, cfg, n: int, seed: int) -> torch.Tensor:
    if isinstance(model, Translator):
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (n, cfg.in_channels, cfg.resolution, cfg.resolution), generator=g,
                               dtype=torch.uint8)
        return model.translate(images)
    if model.entry.task == "super_resolution":
        from ganbench.tasks.super_resolution import super_resolved

        hr = synthetic_split(model.entry, cfg, n)
        return super_resolved(hr, n, model.net)
    return model.sample(n, seed)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_outputs_keep_the_contract(name):
    entry, cfg = tiny(name)
    model = untrained_generator(name, seed=0, **dataclasses.asdict(cfg))
    out = draw_outputs(model, cfg, 3, seed=5)
    if entry.data_kind == "points":
        assert out.dtype == torch.float32 and out.shape == (3, cfg.dim)
    else:
        channels = getattr(cfg, "out_channels", None) or cfg.channels
        assert out.dtype == torch.uint8 and out.shape == (3, channels, cfg.resolution, cfg.resolution)
    assert torch.equal(out, draw_outputs(model, cfg, 3, seed=5)), "the same seed must draw the same outputs"
    assert get_task(entry.task).name in TASKS, f"{name}'s task {entry.task!r} is not registered"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_step_trains_resumes_exactly_and_round_trips(name, tmp_path):
    entry, cfg = tiny(name)
    if entry.name == "srgan":
        cfg = dataclasses.replace(cfg, pretrain_steps=1)  # the second step is an adversarial one
    split = synthetic_split(entry, cfg)
    settings = dict(batch_size=2, checkpoint_every=1, seed=3)
    straight = train(entry, split, tmp_path / "straight", TrainConfig(steps=2, **settings), cfg, progress=False)
    train(entry, split, tmp_path / "resumed", TrainConfig(steps=1, **settings), cfg, progress=False)
    resumed = train(entry, split, tmp_path / "resumed", TrainConfig(steps=2, **settings), cfg, resume=True,
                    progress=False)
    assert resumed.resumed_from == 1 and len(resumed.losses) == 2
    a, b = straight.generator.net.state_dict(), resumed.generator.net.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resume must repeat the run exactly"
    loaded = load_generator(straight.weights_path)
    assert type(loaded) is type(straight.generator) and loaded.weights_sha256 == straight.generator.weights_sha256
    c = loaded.net.state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_the_sweep_covers_the_zoo():
    assert {"dcgan", "lsgan", "mlpgan", "cdcgan", "text2img", "pixelcnn", "progan", "stylegan2", "srgan", "pix2pix",
            "cyclegan", "discogan"} <= set(MODEL_NAMES)
    assert {"unconditional", "class_conditional", "text_to_image", "likelihood", "paired_translation",
            "unpaired_translation", "super_resolution"} <= set(TASK_NAMES)


TASK_DATA = {  # a built-in dataset each built-in task is scored on, and a model of the task
    "unconditional": ("mnist", "dcgan"), "class_conditional": ("mnist", "cdcgan"),
    "text_to_image": ("mnist", "text2img"), "likelihood": ("mnist", "pixelcnn"),
    "paired_translation": ("edges2digits", "pix2pix"), "unpaired_translation": ("mnist2digits8", "cyclegan"),
    "super_resolution": ("sr_digits", "srgan"),
}


@pytest.mark.parametrize("task_name", TASK_NAMES)
def test_every_task_draws_its_rows_and_scores_a_model(task_name):
    from ganbench.evaluate import Protocol, Row, evaluate

    if task_name not in TASK_DATA:
        pytest.skip(f"{task_name} is registered by a test, not built in")
    dataset, model_name = TASK_DATA[task_name]
    task = get_task(task_name)
    protocol = Protocol(dataset, "mnist_cnn", 40, seed=1, resolution=32, metrics=())
    data = task.load(dataset, "train", "test", 32)
    results = []
    for row in task.reference_rows:
        if row is UNTRAINED:
            continue
        drawn = task.draw_reference(row, data, 40, 1)
        assert len(drawn) == 40 and drawn.info.n == 40
        results.append(evaluate(protocol, task=task, row=Row(row), data=data, progress=False))
    _, cfg = tiny(model_name)
    model = untrained_generator(model_name, seed=0, **dataclasses.asdict(cfg))
    results.append(evaluate(protocol, task=task, model=model, data=data, progress=False))
    scored = results[-1]
    assert scored.task == task_name and scored.kind == "model" and scored.samples.n == 40
    assert task.main_metric in scored.scores, f"{task_name}'s main metric is not computed for its model"
    for r in results[:-1]:
        assert r.kind == "reference" and r.reference_row in {row.name for row in task.reference_rows}
    for check in task.checks(scored, results):
        assert check.run_id == scored.run_id and isinstance(check.passed, bool)
