"""The model zoo: one registry entry per architecture + training recipe, and the sampling contract.

A trained generator is used through ``Generator.sample(n, seed)``, which returns uint8 NCHW images
(float32 (N, 2) points for the toy sets), as torch-fidelity's ``GenerativeModelBase`` does. Metrics
see only these samples, never the model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ganbench.registry import MODELS
from ganbench.results.store import atomic_path, file_sha256
from ganbench.zoo.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator
from ganbench.zoo.mlpgan import MLPDiscriminator, MLPGANConfig, MLPGenerator

GENERATOR_FORMAT = "ganbench.generator/1"


@dataclass(frozen=True)
class ModelEntry:
    """An architecture with the recipe it is trained with."""

    name: str  # registry name
    family: str  # module under ganbench/zoo that defines the networks
    task: str  # "unconditional", "class-conditional", "paired-translation", ...
    data_kind: str  # "images" or "points"
    config_cls: type  # dataclass of architecture hyper-parameters
    build_generator: Callable[[Any], nn.Module]
    build_discriminator: Callable[[Any], nn.Module]
    objective: str  # loss in ganbench.train.objectives
    lr_g: float  # Adam learning rate of G
    lr_d: float  # Adam learning rate of D
    betas: tuple[float, float]  # Adam betas
    paper: str  # citation of the method
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)  # named configs: "tiny", "paper", ...
    # (config, batch, torch.Generator) -> the generator's positional inputs; None: a latent z of (batch, nz).
    # Sampling and the throughput bench draw a model's inputs through this (labels for conditional models).
    generator_inputs: Callable[[Any, int, torch.Generator], tuple[torch.Tensor, ...]] | None = None
    # A model-specific training step (ganbench.train.loop.StepContext -> losses to log) replacing the
    # default adversarial step of ``objective`` (regularisers, growth, likelihood training).
    train_step: Callable[[Any], dict[str, float]] | None = None

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

    def example_real(self, config: Any, batch: int, generator: torch.Generator) -> torch.Tensor:
        """A batch shaped like the discriminator's real input, values in [-1, 1] (for timing, not training)."""
        if self.data_kind == "points":
            return torch.randn(batch, config.dim, generator=generator)
        return torch.rand(batch, config.channels, config.resolution, config.resolution, generator=generator) * 2 - 1


def register_model(entry: ModelEntry) -> ModelEntry:
    MODELS.register(entry.name, entry, task=entry.task, family=entry.family, data_kind=entry.data_kind)
    return entry


DCGAN_PAPER = "Radford, Metz & Chintala 2015, arXiv:1511.06434"
# "tiny": what the quick suite trains on 2 CPU cores; "paper": the published architecture (DCGAN at 64x64 RGB).
DCGAN_PRESETS = {"tiny": {"resolution": 32, "channels": 1, "ngf": 32, "ndf": 32},
                 "paper": {"resolution": 64, "channels": 3, "ngf": 64, "ndf": 64}}
register_model(ModelEntry("dcgan", "dcgan", "unconditional", "images", DCGANConfig, DCGANGenerator,
                          DCGANDiscriminator, "nonsaturating", 2e-4, 2e-4, (0.5, 0.999), DCGAN_PAPER,
                          presets=DCGAN_PRESETS))
register_model(ModelEntry("lsgan", "dcgan", "unconditional", "images", DCGANConfig, DCGANGenerator,
                          DCGANDiscriminator, "least_squares", 2e-4, 2e-4, (0.5, 0.999),
                          "Mao et al. 2017, arXiv:1611.04076 (DCGAN networks, least-squares objective)",
                          presets=DCGAN_PRESETS))
register_model(ModelEntry("mlpgan", "mlpgan", "unconditional", "points", MLPGANConfig, MLPGenerator,
                          MLPDiscriminator, "nonsaturating", 1e-4, 1e-4, (0.5, 0.999),
                          "Goodfellow et al. 2014 MLP GAN on the 2D sets of Lin et al. 2018 (PacGAN)",
                          presets={"tiny": {}, "paper": {"hidden": 400, "depth": 3}}))


def get_model(name: str) -> ModelEntry:
    return MODELS.get(name)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 [0, 255]."""
    return ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return x.float() / 127.5 - 1.0


class Generator:
    """A generator network with the sampling contract ``sample(n, seed) -> samples``.

    Latents are drawn in one call from a generator seeded with ``seed``, so the samples do not depend
    on the batch size; the network runs in eval mode (batch norm uses its running statistics).
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
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(tmp), metadata=meta)
        self.weights_sha256 = file_sha256(path)
        return self.weights_sha256


def untrained_generator(model: str, seed: int = 0, **config: Any) -> Generator:
    """A freshly initialised generator: the lower reference row of a leaderboard."""
    entry = get_model(model)
    cfg = entry.make_config(**config)
    torch.manual_seed(seed)
    return Generator(entry, cfg, entry.build_generator(cfg), None, name=f"{model} (untrained)")


def load_generator(path: str | Path) -> Generator:
    """Load a generator written by ``Generator.save`` or a training checkpoint's exported weights."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator weights {str(path)!r} do not exist")
    with safe_open(str(path), "pt") as f:
        meta = json.loads((f.metadata() or {}).get("ganbench", "{}"))
    if meta.get("format") != GENERATOR_FORMAT:
        raise ValueError(f"{str(path)!r} is not a ganbench generator file (metadata format "
                         f"{meta.get('format')!r}, expected {GENERATOR_FORMAT!r})")
    entry = get_model(meta["model"])
    cfg = entry.make_config(**meta["config"])
    net = entry.build_generator(cfg)
    net.load_state_dict(load_file(str(path)), strict=True)
    from ganbench.zoo.cdcgan import ConditionalGenerator

    cls = ConditionalGenerator if entry.task == "class-conditional" else Generator
    return cls(entry, cfg, net, file_sha256(path), name=entry.name)


def _source_images(cfg: Any, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
    """A translation generator's input: a batch of domain-A images in [-1, 1]."""
    return (torch.rand(batch, cfg.in_channels, cfg.resolution, cfg.resolution, generator=generator) * 2 - 1,)


# Translation models train through ganbench.train.translation (objective = its method name) and are used
# through ganbench.zoo.translator.Translator (uint8 images in, uint8 images out), not Generator.sample.
from ganbench.zoo.cyclegan import PRESETS as _CYCLEGAN_PRESETS  # noqa: E402
from ganbench.zoo.cyclegan import CycleGANConfig, CycleGANDiscriminator, CycleGANGenerator  # noqa: E402
from ganbench.zoo.discogan import PRESETS as _DISCOGAN_PRESETS  # noqa: E402
from ganbench.zoo.discogan import DiscoGANConfig, DiscoGANDiscriminator, DiscoGANGenerator  # noqa: E402
from ganbench.zoo.pix2pix import PRESETS as _PIX2PIX_PRESETS  # noqa: E402
from ganbench.zoo.pix2pix import Pix2PixConfig, Pix2PixDiscriminator, UNetGenerator  # noqa: E402

register_model(ModelEntry("pix2pix", "pix2pix", "paired-translation", "images", Pix2PixConfig, UNetGenerator,
                          Pix2PixDiscriminator, "pix2pix", 2e-4, 2e-4, (0.5, 0.999),
                          "Isola, Zhu, Zhou & Efros 2017, arXiv:1611.07004", presets=_PIX2PIX_PRESETS,
                          generator_inputs=_source_images))
register_model(ModelEntry("cyclegan", "cyclegan", "unpaired-translation", "images", CycleGANConfig, CycleGANGenerator,
                          CycleGANDiscriminator, "cyclegan", 2e-4, 2e-4, (0.5, 0.999),
                          "Zhu, Park, Isola & Efros 2017, arXiv:1703.10593",
                          presets={k: v for k, v in _CYCLEGAN_PRESETS.items() if k in ("tiny", "paper")},
                          generator_inputs=_source_images))
register_model(ModelEntry("discogan", "discogan", "unpaired-translation", "images", DiscoGANConfig, DiscoGANGenerator,
                          DiscoGANDiscriminator, "discogan", 2e-4, 2e-4, (0.5, 0.999),
                          "Kim, Cha, Kim, Lee & Kim 2017, arXiv:1703.05192", presets=_DISCOGAN_PRESETS,
                          generator_inputs=_source_images))

from ganbench.zoo import cdcgan as _cdcgan  # noqa: E402,F401  (registers "cdcgan"; needs ModelEntry above)
from ganbench.zoo import srgan as _srgan  # noqa: E402,F401  (registers "srgan")
from ganbench.zoo import text2img as _text2img  # noqa: E402,F401  (registers "text2img")
from ganbench.zoo import pixelcnn as _pixelcnn  # noqa: E402,F401  (registers "pixelcnn"; needs ModelEntry above)
from ganbench.zoo import progan as _progan  # noqa: E402,F401  (registers "progan")
from ganbench.zoo import stylegan2 as _stylegan2  # noqa: E402,F401  (registers "stylegan2")
