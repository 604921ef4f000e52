"""The one training loop every zoo model trains with: GANs, the likelihood baseline, super-resolution and the
translation methods alike.

The loop owns what every run shares: the run's identity (model, config, training settings, data hash), the
batches, checkpoints, resume, the EMA, the learning-rate schedule, ``losses.csv``, the progress bar and the exported
generator. The model owns its networks, optimizers and step (``ModelEntry.setup_training`` and
``ModelEntry.step_function`` in ``ganbench.zoo.base``); the loop imports no model module.

Each step draws its batch (and the step draws its latents) from a generator seeded by (seed, step), so a run resumed
from a checkpoint takes exactly the steps an uninterrupted run takes. A batch is drawn by the split's kind: images
or points (``real`` and, where the dataset has them, ``labels``), or the two domains of a translation split (``a``
and ``b``: the same indices for a model trained on aligned pairs, independent ones otherwise). Checkpoints are one
safetensors file (networks, EMA, optimizer states, extras such as image pools, step, identity) written atomically,
after ``losses.csv``.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from ganbench.results.store import atomic_path, file_sha256, write_text_atomic
from ganbench.zoo.base import Generator, ModelEntry, StepContext, TrainState, from_uint8

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ganbench.checkpoint/1"


@dataclass
class TrainConfig:
    steps: int = 2000  # optimisation steps (one model step each: for GANs one D and one G update)
    batch_size: int | None = None  # samples per step (per domain for translation); None: the model's reference batch
    seed: int = 0  # seeds initialisation, batches, latents and dropout
    ema_decay: float | None = None  # keep an exponential moving average of G with this decay
    checkpoint_every: int = 500  # steps between checkpoints (and at the end)
    lr_g: float | None = None  # override the model entry's G learning rate
    lr_d: float | None = None  # override the model entry's D learning rate
    beta1: float | None = None  # override Adam's beta1 (beta2 stays the entry's)
    decay_steps: int = 0  # the last steps over which every learning rate falls linearly to 0 (pix2pix/CycleGAN's
    # 'linear' policy, per step); 0: constant

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be an integer >= 0, got {self.steps!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be an integer >= 1, got {self.checkpoint_every!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 or None, got {self.batch_size!r}")
        if not isinstance(self.decay_steps, int) or not 0 <= self.decay_steps <= self.steps:
            raise ValueError(f"decay_steps must be an integer in [0, steps={self.steps}], got {self.decay_steps!r}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {self.ema_decay!r}")

    def lr_factor(self, step: int) -> float:
        """The reference's 'linear' rule ``1 - max(0, t + 1 - n_constant) / (n_decay + 1)``, t counted in steps."""
        if not self.decay_steps:
            return 1.0
        constant = self.steps - self.decay_steps
        return 1.0 - max(0, step + 1 - constant) / float(self.decay_steps + 1)


@dataclass
class TrainOutcome:
    generator: Generator  # the trained model in the class it is used through (EMA weights when EMA was on)
    weights_path: Path  # generator.safetensors
    steps: int  # steps completed
    resumed_from: int  # step the run started at (0 for a fresh run)
    seconds: float  # wall time of this invocation's training
    losses: list[dict[str, float]]  # one row per step, as in losses.csv


class CheckpointMismatch(ValueError):
    """The checkpoint in a run directory belongs to a different model, data or configuration."""


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random source of one step of a run."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def resolved_config(entry: ModelEntry, cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the model's reference batch size filled in."""
    return dataclasses.replace(cfg, batch_size=cfg.batch_size or entry.batch_size)


def model_config_of(entry: ModelEntry, model_config: Any) -> Any:
    """The entry's config dataclass from a dict of overrides (or a config instance, checked)."""
    if model_config is None or isinstance(model_config, dict):
        return entry.make_config(**(model_config or {}))
    if not isinstance(model_config, entry.config_cls):
        raise TypeError(f"{entry.name} needs a {entry.config_cls.__name__} (or a dict of its fields), got "
                        f"{type(model_config).__name__}")
    return model_config


def batch_sampler(entry: ModelEntry, split: Any, device: torch.device) -> Callable[[torch.Generator, int],
                                                                                     dict[str, torch.Tensor]]:
    """(step generator, batch size) -> the step's batch, drawn with replacement by the split's kind."""
    if split.kind in ("images", "points"):
        data = from_uint8(split.data) if split.kind == "images" else split.data.float()
        labels = split.labels

        def draw(g: torch.Generator, n: int) -> dict[str, torch.Tensor]:
            idx = torch.randint(len(data), (n,), generator=g)
            batch = {"real": data[idx].to(device)}
            if labels is not None:
                batch["labels"] = labels[idx].to(device)
            return batch

        return draw
    A, B, aligned = split.a, split.b, entry.data_kind == "paired"

    def draw_pair(g: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        idx_a = torch.randint(len(A), (n,), generator=g)
        idx_b = idx_a if aligned else torch.randint(len(B), (n,), generator=g)
        return {"a": from_uint8(A[idx_a]).to(device), "b": from_uint8(B[idx_b]).to(device)}

    return draw_pair


def run_identity(entry: ModelEntry, model_cfg: Any, cfg: TrainConfig, split: Any) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed. The step count may grow, unless a decay schedule ties the
    learning rates to it. Through JSON, so that it compares equal to the copy read back (tuples become lists)."""
    tc = dataclasses.asdict(cfg)
    tc.pop("checkpoint_every")
    if not cfg.decay_steps:
        tc.pop("steps")
    return json.loads(json.dumps({"model": entry.name, "model_config": dataclasses.asdict(model_cfg),
                                  "train_config": tc, "dataset": split.dataset, "split": split.split,
                                  "data_sha256": split.sha256}))


def train(entry: ModelEntry, split: Any, out_dir: str | Path, cfg: TrainConfig = TrainConfig(),
          model_config: dict[str, Any] | Any = None, resume: bool = False, progress: bool = True,
          device: str | torch.device = "cpu") -> TrainOutcome:
    """Train ``entry`` on ``split``, writing checkpoints, a loss log and the final generator to ``out_dir``.

    Args:
        split: A ``Split`` (images or points) or a translation split (two domains), of a kind the entry trains on.
        model_config: The entry's config, or a dict of overrides of its defaults.
        resume: Continue from ``out_dir/checkpoint.safetensors``. Without it an existing checkpoint is an error,
            so a finished run is never silently overwritten.
        device: Where the networks and batches live; the step generators stay on the CPU.

    Raises:
        FileExistsError: If a checkpoint exists and ``resume`` is False.
        CheckpointMismatch: If the checkpoint was made with another model, dataset or configuration.
        ValueError: If the data is of a kind the model does not train on, or does not fit its config.
    """
    if not entry.accepts(split.kind):
        raise ValueError(f"model {entry.name!r} trains on {entry.data_kind} data, dataset {split.dataset!r} "
                         f"({split.split}) has {split.kind}")
    model_cfg = model_config_of(entry, model_config)
    if entry.check_data is not None:
        entry.check_data(model_cfg, split)
    cfg = resolved_config(entry, cfg)
    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.safetensors"
    identity = run_identity(entry, model_cfg, cfg, split)

    torch.manual_seed(cfg.seed)
    state = entry.setup_training(model_cfg, cfg)
    for net in state.nets.values():
        net.to(device).train()
    ema: dict[str, nn.Module] = {}
    if cfg.ema_decay:
        if "G" not in state.nets:
            raise ValueError(f"{entry.name} has no network 'G' to keep a moving average of")
        ema["G"] = copy.deepcopy(state.nets["G"]).eval().requires_grad_(False)

    start, losses = 0, []
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{str(ckpt_path)!r} exists; pass resume=True (--resume) to continue it, "
                                  f"or choose another output directory")
        start, losses = _load_checkpoint(ckpt_path, identity, state, ema, out_dir)
        log.info("resuming %s from step %d of %d", out_dir, start, cfg.steps)

    draw = batch_sampler(entry, split, device)
    step_fn = entry.step_function()
    base_lrs = {name: [group.get("initial_lr", group["lr"]) for group in opt.param_groups]
                for name, opt in state.optimizers.items()}
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {entry.name}", unit="step", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    for step in range(start, cfg.steps):
        g = step_generator(cfg.seed, step)
        batch = draw(g, cfg.batch_size)
        if cfg.decay_steps:
            for name, opt in state.optimizers.items():
                for group, lr in zip(opt.param_groups, base_lrs[name]):
                    group["initial_lr"], group["lr"] = lr, lr * cfg.lr_factor(step)
        row = {k: float(v) for k, v in step_fn(StepContext(state, batch, step, g, model_cfg, cfg)).items()}
        for name, avg in ema.items():
            _update_ema(avg, state.nets[name], cfg.ema_decay)
        losses.append({"step": step + 1, **row})
        bar.update(1)
        if (step + 1) % 50 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(row.items())[:3]})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            _save_checkpoint(ckpt_path, identity, step + 1, cfg, state, ema, losses, out_dir)
    bar.close()
    seconds = time.perf_counter() - t0

    final = ema["G"] if ema else entry.exported(state)
    generator = entry.wrap(model_cfg, copy.deepcopy(final).requires_grad_(False).cpu())
    weights_path = out_dir / "generator.safetensors"
    generator.save(weights_path)
    summary = {**identity, "steps": cfg.steps, "checkpoint_every": cfg.checkpoint_every,
               "weights_sha256": generator.weights_sha256, "ema": bool(ema)}
    write_text_atomic(out_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    return TrainOutcome(generator, weights_path, cfg.steps, start, seconds, losses)


def finished_run(entry: ModelEntry, split: Any, out_dir: str | Path, cfg: TrainConfig,
                 model_config: dict[str, Any] | Any = None) -> Generator | None:
    """The generator of a completed run in ``out_dir`` with exactly these inputs, or None.

    Checked, not just present: ``train.json`` must record the same model, config, data hash and step count, and
    ``generator.safetensors`` must hash to the sha256 it records.
    """
    out_dir = Path(out_dir)
    summary_path, weights = out_dir / "train.json", out_dir / "generator.safetensors"
    if not (summary_path.exists() and weights.exists()):
        return None
    try:
        summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    model_cfg = model_config_of(entry, model_config)
    identity = run_identity(entry, model_cfg, resolved_config(entry, cfg), split)
    if not isinstance(summary, dict) or any(summary.get(k) != v for k, v in identity.items()) \
            or summary.get("steps") != cfg.steps:
        return None
    if file_sha256(weights) != summary.get("weights_sha256"):
        return None
    return entry.restore(weights, model_cfg)


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def _prefixed(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    sd = opt.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{prefix}.state.{idx}.{key}"] = t.detach().cpu().contiguous()
    return tensors, sd["param_groups"]


def _load_optimizer(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + ".state."):
            idx, key = name[len(prefix) + 7:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


def _write_losses(out_dir: Path, losses: list[dict]) -> None:
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for row in losses for k in row)) or ["step"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(losses)
    write_text_atomic(out_dir / "losses.csv", buf.getvalue())


def _save_checkpoint(path: Path, identity: dict, step: int, cfg: TrainConfig, state: TrainState,
                     ema: dict[str, nn.Module], losses: list[dict], out_dir: Path) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for name, net in state.nets.items():
        tensors.update(_prefixed(name, net))
    for name, avg in ema.items():
        tensors.update(_prefixed(f"{name}_ema", avg))
    meta = {"format": CHECKPOINT_FORMAT, "step": str(step), "identity": json.dumps(identity),
            "train_config": json.dumps(dataclasses.asdict(cfg))}
    for name, opt in state.optimizers.items():
        t, groups = _optimizer_tensors(name, opt)
        tensors.update(t)
        meta[f"{name}_groups"] = json.dumps(groups)
    for name, extra in state.extras.items():
        stored = extra.state()
        if stored is not None:
            tensors[name] = stored.detach().cpu().contiguous()
    # The loss log is written first: a crash between the two leaves a log that is ahead of the checkpoint, which
    # resume truncates; never a checkpoint whose log is missing rows.
    _write_losses(out_dir, losses)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_checkpoint(path: Path, identity: dict, state: TrainState, ema: dict[str, nn.Module],
                     out_dir: Path) -> tuple[int, list[dict]]:
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001  (safetensors raises its own error type for damaged files)
        raise CheckpointMismatch(f"{str(path)!r} is not a readable checkpoint ({e}); remove it to start again") \
            from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatch(f"{str(path)!r} is not a ganbench training checkpoint (format "
                                 f"{meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    saved = json.loads(meta["identity"])
    if saved != identity:
        diff = sorted(k for k in identity if saved.get(k) != identity[k])
        raise CheckpointMismatch(f"checkpoint {str(path)!r} was made with a different {', '.join(diff)}; "
                                 f"use another output directory")
    device = next(iter(state.nets.values())).parameters().__next__().device
    for name, net in state.nets.items():
        net.load_state_dict(_unprefixed(name, tensors), strict=True)
    for name, avg in ema.items():
        avg.load_state_dict(_unprefixed(f"{name}_ema", tensors), strict=True)
    for name, opt in state.optimizers.items():
        _load_optimizer(opt, name, {k: v.to(device) for k, v in tensors.items() if k.startswith(name + ".")},
                        json.loads(meta[f"{name}_groups"]))
    like = next(iter(state.nets.values())).parameters().__next__()
    for name, extra in state.extras.items():
        extra.load(tensors.get(name), like)
    step = int(meta["step"])
    losses: list[dict] = []
    log_path = out_dir / "losses.csv"
    if log_path.exists():
        with open(log_path, newline="") as fh:
            losses = [{k: (int(v) if k == "step" else float(v)) for k, v in row.items() if v != ""}
                      for row in csv.DictReader(fh) if int(row["step"]) <= step]
    return step, losses


__all__ = ["CHECKPOINT_FORMAT", "CheckpointMismatch", "TrainConfig", "TrainOutcome", "batch_sampler",
           "finished_run", "run_identity", "step_generator", "train"]
