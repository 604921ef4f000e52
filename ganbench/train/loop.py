"""The adversarial training loop every zoo model trains with.

Each step draws its real batch and latents from a generator seeded by (seed, step), so a run resumed
from a checkpoint takes exactly the steps an uninterrupted run takes. Checkpoints are one safetensors
file (networks, EMA, optimizer state, step, configs) written atomically.
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

from ganbench.data import Split
from ganbench.results.store import atomic_path, write_text_atomic
from ganbench.train.objectives import objective
from ganbench.zoo import Generator, ModelEntry, from_uint8

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ganbench.checkpoint/1"


@dataclass
class TrainConfig:
    steps: int = 2000  # optimisation steps (one D and one G update each)
    batch_size: int = 64  # real and fake images per step
    seed: int = 0  # seeds initialisation, batches and latents
    ema_decay: float | None = None  # keep an exponential moving average of G with this decay
    checkpoint_every: int = 500  # steps between checkpoints (and at the end)
    lr_g: float | None = None  # override the model entry's G learning rate
    lr_d: float | None = None  # override the model entry's D learning rate


@dataclass
class TrainOutcome:
    generator: Generator  # the trained generator (EMA weights when EMA was on)
    weights_path: Path  # generator.safetensors
    steps: int  # steps completed
    resumed_from: int  # step the run started at (0 for a fresh run)
    seconds: float  # wall time of this invocation's training


class CheckpointMismatch(ValueError):
    """The checkpoint in a run directory belongs to a different model, data or configuration."""


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def _to_training_tensor(split: Split) -> torch.Tensor:
    return from_uint8(split.data) if split.kind == "images" else split.data.float()


def _optimizer_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    sd = opt.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}.state.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, sd["param_groups"]


def _load_optimizer(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + ".state."):
            idx, key = name[len(prefix) + 7:].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": groups})


def _prefixed(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().contiguous() for k, v in module.state_dict().items()}


def _unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _run_identity(entry: ModelEntry, model_cfg: Any, cfg: TrainConfig, split: Split) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed (the step count may grow)."""
    tc = dataclasses.asdict(cfg)
    tc.pop("steps")
    tc.pop("checkpoint_every")
    return {"model": entry.name, "model_config": dataclasses.asdict(model_cfg), "train_config": tc,
            "dataset": split.dataset, "split": split.split, "data_sha256": split.sha256}


def train(entry: ModelEntry, split: Split, out_dir: str | Path, cfg: TrainConfig = TrainConfig(),
          model_config: dict[str, Any] | None = None, resume: bool = False, progress: bool = True) -> TrainOutcome:
    """Train ``entry`` on ``split``, writing checkpoints, a loss log and the final generator to ``out_dir``.

    Args:
        resume: Continue from ``out_dir/checkpoint.safetensors``. Without it an existing checkpoint is an error,
            so a finished run is never silently overwritten.

    Raises:
        FileExistsError: If a checkpoint exists and ``resume`` is False.
        CheckpointMismatch: If the checkpoint was made with another model, dataset or configuration.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.safetensors"
    if split.kind != entry.data_kind:
        raise ValueError(f"model {entry.name!r} trains on {entry.data_kind}, dataset {split.dataset!r} has {split.kind}")
    model_cfg = entry.make_config(**(model_config or {}))
    identity = _run_identity(entry, model_cfg, cfg, split)

    torch.manual_seed(cfg.seed)
    G, D = entry.build_generator(model_cfg), entry.build_discriminator(model_cfg)  # D is None for likelihood models
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.ema_decay else None
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g or entry.lr_g, betas=entry.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d or entry.lr_d, betas=entry.betas) if D is not None else None
    d_loss_fn, g_loss_fn = objective(entry.objective) if entry.train_step is None else (None, None)

    start, losses = 0, []
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{str(ckpt_path)!r} exists; pass resume=True (--resume) to continue it, "
                                  f"or choose another output directory")
        start, losses = _load_checkpoint(ckpt_path, identity, G, D, G_ema, opt_g, opt_d, out_dir)
        log.info("resuming %s from step %d of %d", out_dir, start, cfg.steps)

    data = _to_training_tensor(split)
    labels = split.labels
    t0 = time.perf_counter()
    G.train()
    if D is not None:
        D.train()
    bar = tqdm(total=cfg.steps, initial=start, desc=f"train {entry.name}", unit="step", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    for step in range(start, cfg.steps):
        g = _step_generator(cfg.seed, step)
        idx = torch.randint(len(data), (cfg.batch_size,), generator=g)
        real = data[idx]
        if entry.train_step is not None:
            ctx = StepContext(G, D, opt_g, opt_d, real, labels[idx] if labels is not None else None, step, g, model_cfg,
                              cfg)
            row = {k: float(v) for k, v in entry.train_step(ctx).items()}
        else:
            z = torch.randn(cfg.batch_size, G.nz, generator=g)
            loss_d, loss_g, d_real, d_fake = adversarial_step(G, D, opt_g, opt_d, real, z, d_loss_fn, g_loss_fn)
            row = {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": d_real.mean().item(),
                   "d_fake": d_fake.mean().item()}

        if G_ema is not None:
            _update_ema(G_ema, G, cfg.ema_decay)
        losses.append({"step": step + 1, **row})
        bar.update(1)
        if (step + 1) % 50 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(row.items())[:3]})
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps:
            _save_checkpoint(ckpt_path, identity, step + 1, cfg, G, D, G_ema, opt_g, opt_d, losses, out_dir)
    bar.close()
    seconds = time.perf_counter() - t0

    final = G_ema if G_ema is not None else G
    if entry.task == "class-conditional":  # sample(n, seed, labels=None) draws every class equally often
        from ganbench.zoo.cdcgan import ConditionalGenerator

        generator = ConditionalGenerator(entry, model_cfg, copy.deepcopy(final))
    else:
        generator = Generator(entry, model_cfg, copy.deepcopy(final))
    weights_path = out_dir / "generator.safetensors"
    generator.save(weights_path)
    summary = {**identity, "steps": cfg.steps, "checkpoint_every": cfg.checkpoint_every,
               "weights_sha256": generator.weights_sha256, "ema": G_ema is not None}
    write_text_atomic(out_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    return TrainOutcome(generator, weights_path, cfg.steps, start, seconds)


@dataclass
class StepContext:
    """What a model-specific training step (``ModelEntry.train_step``) receives, once per step.

    The step draws every random number it needs from ``generator`` (seeded by run seed and step), so a
    resumed run repeats an uninterrupted one; state that must survive a resume (a path-length mean, a
    growth stage) lives in module buffers of G or D, which checkpoints save. It returns the losses to log.
    """

    G: nn.Module
    D: nn.Module | None  # None for likelihood models
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    real: torch.Tensor  # (B, C, H, W) in [-1, 1], or (B, D) points
    labels: torch.Tensor | None  # class labels of ``real`` when the dataset has them
    step: int  # 0-based index of this step
    generator: torch.Generator  # the step's seeded random source
    model_config: Any
    train_config: TrainConfig


def adversarial_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                     real: torch.Tensor, z: torch.Tensor, d_loss_fn: Callable, g_loss_fn: Callable
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One D update on (real, G(z)) then one G update through the updated D (Goodfellow et al. 2014, Alg. 1
    with k = 1). Returns (loss_d, loss_g, D(real), D(G(z)) before D's update). The throughput bench times
    exactly this function, so a training step there is a training step here."""
    fake = G(z)
    d_real, d_fake = D(real), D(fake.detach())
    loss_d = d_loss_fn(d_real, d_fake)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    loss_g = g_loss_fn(D(fake))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g, d_real, d_fake


def finished_run(entry: ModelEntry, split: Split, out_dir: str | Path, cfg: TrainConfig,
                 model_config: dict[str, Any] | None = None) -> Generator | None:
    """The generator of a completed run in ``out_dir`` with exactly these inputs, or None.

    Checked, not just present: ``train.json`` must record the same model, config, data hash and step
    count, and ``generator.safetensors`` must hash to the sha256 it records.
    """
    from ganbench.results.store import file_sha256
    from ganbench.zoo import load_generator

    out_dir = Path(out_dir)
    summary_path, weights = out_dir / "train.json", out_dir / "generator.safetensors"
    if not (summary_path.exists() and weights.exists()):
        return None
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError:
        return None
    identity = _run_identity(entry, entry.make_config(**(model_config or {})), cfg, split)
    if any(summary.get(k) != v for k, v in identity.items()) or summary.get("steps") != cfg.steps:
        return None
    if file_sha256(weights) != summary.get("weights_sha256"):
        return None
    return load_generator(weights)


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


def _save_checkpoint(path: Path, identity: dict, step: int, cfg: TrainConfig, G: nn.Module, D: nn.Module,
                     G_ema: nn.Module | None, opt_g, opt_d, losses: list[dict], out_dir: Path) -> None:
    tensors = {**_prefixed("G", G), **(_prefixed("D", D) if D is not None else {})}
    if G_ema is not None:
        tensors.update(_prefixed("G_ema", G_ema))
    tg, groups_g = _optimizer_tensors("opt_g", opt_g)
    td, groups_d = _optimizer_tensors("opt_d", opt_d) if opt_d is not None else ({}, [])
    tensors.update(tg)
    tensors.update(td)
    meta = {"format": CHECKPOINT_FORMAT, "step": str(step), "identity": json.dumps(identity),
            "train_config": json.dumps(dataclasses.asdict(cfg)),
            "opt_g_groups": json.dumps(groups_g), "opt_d_groups": json.dumps(groups_d)}
    # The loss log is written first: a crash between the two leaves a log that is ahead of the
    # checkpoint, which resume truncates; never a checkpoint whose log is missing rows.
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for row in losses for k in row)) or ["step"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(losses)
    write_text_atomic(out_dir / "losses.csv", buf.getvalue())
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_checkpoint(path: Path, identity: dict, G, D, G_ema, opt_g, opt_d, out_dir: Path) -> tuple[int, list[dict]]:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatch(f"{str(path)!r} is not a ganbench training checkpoint")
    saved = json.loads(meta["identity"])
    if saved != identity:
        diff = sorted(k for k in identity if saved.get(k) != identity[k])
        raise CheckpointMismatch(f"checkpoint {str(path)!r} was made with a different {', '.join(diff)}; "
                                 f"use another output directory")
    G.load_state_dict(_unprefixed("G", tensors), strict=True)
    if D is not None:
        D.load_state_dict(_unprefixed("D", tensors), strict=True)
    if G_ema is not None:
        G_ema.load_state_dict(_unprefixed("G_ema", tensors), strict=True)
    _load_optimizer(opt_g, "opt_g", tensors, json.loads(meta["opt_g_groups"]))
    if opt_d is not None:
        _load_optimizer(opt_d, "opt_d", tensors, json.loads(meta["opt_d_groups"]))
    step = int(meta["step"])
    losses: list[dict] = []
    log_path = out_dir / "losses.csv"
    if log_path.exists():
        with open(log_path, newline="") as fh:
            losses = [{k: (int(v) if k == "step" else float(v)) for k, v in row.items() if v != ""}
                      for row in csv.DictReader(fh) if int(row["step"]) <= step]
    return step, losses
