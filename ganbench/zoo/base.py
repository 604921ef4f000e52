"""The zoo's contracts: what an architecture registers, how its trained network is used, and how it trains.

- ``ModelEntry``: an architecture with its training recipe (networks, objective or its own step, optimizer
  settings, presets) and the task it serves (a ``ganbench.tasks`` name).
- ``Generator``: a trained network with the sampling contract ``sample(n, seed) -> uint8 NCHW`` (float (N, 2) for
  point sets), as torch-fidelity's ``GenerativeModelBase``; ``ConditionalGenerator`` and ``Translator`` are its
  task-specific kinds (``ModelEntry.wrapper`` names which one a model is used through).
- ``TrainState`` and ``StepContext``: what ``ganbench.train.loop`` builds once per run and hands to the model's
  training step once per step. The step lives beside its networks, in the architecture's module; the loop never
  imports a model module, and nothing in the zoo imports the loop.

Metrics never see any of this: they see samples.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ganbench.registry import MODELS
from ganbench.results.store import atomic_path, file_sha256
from ganbench.zoo.objectives import objective

GENERATOR_FORMAT = "ganbench.generator/1"
SPLIT_KINDS = ("images", "points", "paired", "unpaired")  # what a model trains on (``Split.kind``)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255]."""
    return ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float() / 127.5 - 1.0


# ------------------------------------------------------------------------------------------------- training


class TrainSettings(Protocol):
    """The fields of ``ganbench.train.TrainConfig`` that a model's training setup reads."""

    batch_size: int | None
    lr_g: float | None
    lr_d: float | None
    beta1: float | None


class Stateful(Protocol):
    """Training state beside the networks (an image pool), saved in the checkpoint as one tensor."""

    def state(self) -> torch.Tensor | None: ...

    def load(self, stored: torch.Tensor | None, like: torch.Tensor | None = None) -> None: ...


@dataclass
class TrainState:
    """Everything a run trains and checkpoints: networks, optimizers and extra state, each by name."""

    nets: dict[str, nn.Module]  # "G" and "D" for most models; "G_ab", "G_ba", "D_a", "D_b" for translation
    optimizers: dict[str, torch.optim.Optimizer]  # "opt_g" (and "opt_d" when there is a discriminator)
    extras: dict[str, Stateful] = field(default_factory=dict)  # e.g. CycleGAN's image pools "pool.a", "pool.b"


@dataclass
class StepContext:
    """What a model's training step receives, once per step.

    The step draws every random number it needs from ``generator`` (seeded by run seed and step), so a resumed run
    repeats an uninterrupted one; state that must survive a resume (a path-length mean, a growth stage) lives in
    module buffers or in ``state.extras``, which checkpoints save. It returns the losses to log.
    """

    state: TrainState
    batch: dict[str, torch.Tensor]  # "real" (+ "labels") for images and points; "a" and "b" for translation
    step: int  # 0-based index of this step
    generator: torch.Generator  # the step's seeded random source
    model_config: Any
    train_config: Any  # ganbench.train.TrainConfig

    @property
    def nets(self) -> dict[str, nn.Module]:
        return self.state.nets

    @property
    def G(self) -> nn.Module:
        return self.state.nets["G"]

    @property
    def D(self) -> nn.Module | None:  # None for likelihood models
        return self.state.nets.get("D")

    @property
    def opt_g(self) -> torch.optim.Optimizer:
        return self.state.optimizers["opt_g"]

    @property
    def opt_d(self) -> torch.optim.Optimizer | None:
        return self.state.optimizers.get("opt_d")

    @property
    def real(self) -> torch.Tensor:
        """(B, C, H, W) images in [-1, 1], or (B, D) points."""
        return self.batch["real"]

    @property
    def labels(self) -> torch.Tensor | None:
        """Class labels of ``real`` when the dataset has them."""
        return self.batch.get("labels")


def adversarial_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                     real: torch.Tensor, z: torch.Tensor, d_loss_fn: Callable, g_loss_fn: Callable
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One D update on (real, G(z)) then one G update through the updated D (Goodfellow et al. 2014, Alg. 1
    with k = 1). Returns (loss_d, loss_g, D(real), D(G(z)) before D's update)."""
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


def objective_step(objective_name: str) -> Callable[[StepContext], dict[str, float]]:
    """The default training step of an entry without its own: ``adversarial_step`` under the named objective, the
    latents drawn from the step's generator."""
    d_loss_fn, g_loss_fn = objective(objective_name)

    def step(ctx: StepContext) -> dict[str, float]:
        z = torch.randn(len(ctx.real), ctx.G.nz, generator=ctx.generator).to(ctx.real.device)
        loss_d, loss_g, d_real, d_fake = adversarial_step(ctx.G, ctx.D, ctx.opt_g, ctx.opt_d, ctx.real, z, d_loss_fn,
                                                          g_loss_fn)
        return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "d_real": d_real.mean().item(),
                "d_fake": d_fake.mean().item()}

    return step


def gan_training(entry: "ModelEntry", config: Any, train: TrainSettings) -> TrainState:
    """The default training setup: G and D (D may be None, for likelihood models), each with Adam at the entry's
    learning rates and betas (overridable by the train config). Builds G first, then D: the order the global random
    state initialises them in."""
    G, D = entry.build_generator(config), entry.build_discriminator(config)
    betas = (train.beta1, entry.betas[1]) if train.beta1 is not None else entry.betas
    nets = {"G": G}
    optimizers = {"opt_g": torch.optim.Adam(G.parameters(), lr=train.lr_g or entry.lr_g, betas=betas)}
    if D is not None:
        nets["D"] = D
        optimizers["opt_d"] = torch.optim.Adam(D.parameters(), lr=train.lr_d or entry.lr_d, betas=betas)
    return TrainState(nets, optimizers)


# ------------------------------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class ModelEntry:
    """An architecture with the recipe it is trained with and the task it serves."""

    name: str  # registry name
    family: str  # module under ganbench/zoo that defines the networks
    task: str  # registered task (ganbench.tasks): "unconditional", "class_conditional", "paired_translation", ...
    data_kind: str  # what it trains on: "images", "points", "paired" or "unpaired" (which also takes paired data)
    config_cls: type  # dataclass of architecture hyper-parameters
    build_generator: Callable[[Any], nn.Module]  # the network a trained run exports (and the bench times)
    build_discriminator: Callable[[Any], nn.Module | None]
    objective: str  # loss in ganbench.zoo.objectives (or the method's name when the entry has its own step)
    lr_g: float  # Adam learning rate of G
    lr_d: float  # Adam learning rate of D
    betas: tuple[float, float]  # Adam betas
    paper: str  # citation of the method
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # named configs: "tiny", "paper", ...
    # (config, batch, torch.Generator) -> the generator's positional inputs; None: a latent z of (batch, nz).
    # Sampling and the throughput bench draw a model's inputs through this (labels for conditional models).
    generator_inputs: Callable[[Any, int, torch.Generator], tuple[torch.Tensor, ...]] | None = None
    # A model-specific training step (StepContext -> losses to log) replacing the default adversarial step of
    # ``objective`` (regularisers, growth, likelihood training, translation).
    train_step: Callable[[StepContext], dict[str, float]] | None = None
    # (config, train settings) -> TrainState; None: ``gan_training`` (G and D with Adam).
    build_training: Callable[["ModelEntry", Any, TrainSettings], TrainState] | None = None
    # TrainState -> the network a finished run saves as generator.safetensors; None: the state's "G".
    export: Callable[[TrainState], nn.Module] | None = None
    wrapper: type["Generator"] | None = None  # the class the trained network is used through; None: Generator
    batch_size: int = 64  # the reference's batch size, used when the train config leaves it unset
    # (config, split) -> None, raising ValueError when the data cannot train this config (channels, sizes)
    check_data: Callable[[Any, Any], None] | None = None

    def make_config(self, preset: str | None = None, **overrides: Any) -> Any:
        """The config of ``preset`` (or the defaults) with ``overrides`` applied."""
        names = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"{self.name} has no config field(s) {sorted(unknown)}; valid: {sorted(names)}")
        if preset is not None and preset not in self.presets:
            raise ValueError(f"{self.name} has no preset {preset!r}; valid: {sorted(self.presets) or 'none'}")
        return self.config_cls(**{**(self.presets[preset] if preset else {}), **overrides})

    def example_inputs(self, config: Any, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Inputs of the generator network for one batch (a latent for unconditional models)."""
        if self.generator_inputs is not None:
            return self.generator_inputs(config, batch, generator)
        return (torch.randn(batch, config.nz, generator=generator),)

    def example_batch(self, config: Any, batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A training batch shaped like the real one, values in [-1, 1] (for timing, not training)."""
        if self.data_kind == "points":
            return {"real": torch.randn(batch, config.dim, generator=generator)}
        if self.data_kind in ("paired", "unpaired"):
            side = config.resolution
            return {"a": torch.rand(batch, config.in_channels, side, side, generator=generator) * 2 - 1,
                    "b": torch.rand(batch, config.out_channels, side, side, generator=generator) * 2 - 1}
        real = torch.rand(batch, config.channels, config.resolution, config.resolution, generator=generator) * 2 - 1
        return {"real": real, "labels": torch.arange(batch) % getattr(config, "n_classes", 10)}

    def accepts(self, split_kind: str) -> bool:
        """Whether the entry trains on data of this kind (``Split.kind``)."""
        return split_kind == self.data_kind or (self.data_kind == "unpaired" and split_kind == "paired")

    def setup_training(self, config: Any, train: TrainSettings) -> TrainState:
        return (self.build_training or gan_training)(self, config, train)

    def step_function(self) -> Callable[[StepContext], dict[str, float]]:
        """The training step the loop and the throughput bench run."""
        return self.train_step if self.train_step is not None else objective_step(self.objective)

    def exported(self, state: TrainState) -> nn.Module:
        return self.export(state) if self.export is not None else state.nets["G"]

    def wrap(self, config: Any, net: nn.Module, weights_sha256: str | None = None, name: str | None = None
             ) -> "Generator":
        """The trained (or fresh) network in the class it is used through."""
        return (self.wrapper or Generator)(self, config, net, weights_sha256, name)

    def restore(self, path: str | Path, config: Any) -> "Generator":
        """A network of ``config`` with the weights of a generator file, wrapped (the file's sha256 recorded).

        A two-way translation model's file holds both directions (``ab.*``, ``ba.*``); a file of one direction (a
        published generator, a saved reverse translator) restores that direction alone."""
        state = load_file(str(path))
        net = self.build_generator(config)
        one_way = getattr(net, "ab", None)
        if one_way is not None and not any(k.startswith(("ab.", "ba.")) for k in state):
            net = one_way
        net.load_state_dict(state, strict=True)
        return self.wrap(config, net, file_sha256(path), self.name)


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to the model registry, checking what it declares."""
    if not isinstance(entry, ModelEntry):
        raise TypeError(f"register_model takes a ModelEntry, got {type(entry).__name__}")
    if entry.data_kind not in SPLIT_KINDS:
        raise ValueError(f"model {entry.name!r}: data_kind must be one of {', '.join(SPLIT_KINDS)}, got "
                         f"{entry.data_kind!r}")
    if not dataclasses.is_dataclass(entry.config_cls):
        raise TypeError(f"model {entry.name!r}: config_cls must be a dataclass")
    MODELS.register(entry.name, entry, task=entry.task, family=entry.family, data_kind=entry.data_kind)
    return entry


# ------------------------------------------------------------------------------------------------- using


class Generator:
    """A generator network with the sampling contract ``sample(n, seed) -> samples``.

    Latents are drawn in one call from a generator seeded with ``seed``, so the samples do not depend on the batch
    size; the network runs in eval mode (batch norm uses its running statistics).
    """

    def __init__(self, entry: ModelEntry, config: Any, net: nn.Module, weights_sha256: str | None = None,
                 name: str | None = None):
        self.entry = entry
        self.config = config
        self.net = net.eval()
        self.weights_sha256 = weights_sha256
        self.name = name or entry.name

    @property
    def data_kind(self) -> str:
        return self.entry.data_kind

    @torch.no_grad()
    def sample(self, n: int, seed: int, batch_size: int = 500) -> torch.Tensor:
        inputs = self.entry.example_inputs(self.config, n, torch.Generator().manual_seed(seed))
        outs = [self.net(*(x[i:i + batch_size] for x in inputs)) for i in range(0, n, batch_size)]
        out = torch.cat(outs) if outs else torch.empty(0)
        return to_uint8(out) if self.data_kind == "images" else out.float()

    def save(self, path: str | Path) -> str:
        """Write the weights as safetensors (atomically); returns the file's sha256."""
        # One metadata key: safetensors writes a multi-key header in hash order, which would make the bytes
        # (and so the weights sha256) of identical weights differ from one save to the next.
        meta = {"ganbench": json.dumps({"format": GENERATOR_FORMAT, "model": self.entry.name,
                                        "config": dataclasses.asdict(self.config)}, sort_keys=True)}
        with atomic_path(path) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}, str(tmp),
                      metadata=meta)
        self.weights_sha256 = file_sha256(path)
        return self.weights_sha256


__all__ = ["GENERATOR_FORMAT", "Generator", "ModelEntry", "StepContext", "TrainState", "adversarial_step",
           "from_uint8", "gan_training", "objective_step", "register_model", "to_uint8"]
