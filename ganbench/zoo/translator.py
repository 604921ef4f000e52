"""Image-to-image translation in the zoo: the ``translate(images) -> images`` contract, and what Pix2Pix, CycleGAN and
DiscoGAN share to train through ``ganbench.train.loop``.

- ``Translator``: a trained translation network used through ``translate(uint8 NCHW) -> uint8 NCHW``, the
  counterpart of ``Generator.sample``. For the two-way methods (CycleGAN, DiscoGAN) the network is a
  ``TranslationPair`` holding both directions, and ``Translator.reverse()`` translates B -> A (the cycle error
  reads it). A run's ``generator.safetensors`` holds the pair (tensor names ``ab.*`` and ``ba.*``).
- ``translation_entry``: the ``ModelEntry`` of a method, given its networks, its step and its pools. Its training
  state has the reference's network names (``G_ab``, ``G_ba``, ``D_a``, ``D_b``; Pix2Pix: ``G_ab``, ``D``), one
  Adam over every generator and one over every discriminator (Adam(2e-4, betas (0.5, 0.999)) and the method's
  weight decay), and CycleGAN's image pools as checkpointed extras.
- Every step draws its batches, dropout noise and pool decisions from generators seeded by (seed, step): the
  loop draws the batch indices; ``seeded_dropout`` seeds the global generator that dropout reads from the step's
  generator, inside a forked random state, so a resumed run takes exactly the steps of an uninterrupted one.

What differs from the references: batches are drawn with replacement from per-step generators instead of epoch
shuffles, and the learning-rate decay (``TrainConfig.decay_steps``) is applied per step instead of per epoch.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import torch
from torch import nn

from ganbench.zoo.base import Generator, ModelEntry, StepContext, TrainSettings, TrainState, from_uint8, to_uint8


class TranslationPair(nn.Module):
    """The two generators of a two-way method: ``ab`` (A -> B) and ``ba`` (B -> A); calling it translates A -> B."""

    def __init__(self, ab: nn.Module, ba: nn.Module):
        super().__init__()
        self.ab = ab
        self.ba = ba

    @property
    def size_multiple(self) -> int:
        return getattr(self.ab, "size_multiple", 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ab(x)


class Translator(Generator):
    """A generator network translating one domain into another, with ``translate(uint8 NCHW) -> uint8 NCHW``.

    The network runs in eval mode: batch norm uses its running statistics and dropout is off, so a translation does
    not depend on the batch it is in. (The reference's test scripts keep Pix2Pix and DiscoGAN in training mode at
    test time; that output depends on the batch.)
    """

    @property
    def in_channels(self) -> int:
        return self.config.in_channels

    @property
    def out_channels(self) -> int:
        return self.config.out_channels

    @property
    def forward_net(self) -> nn.Module:
        return self.net.ab if isinstance(self.net, TranslationPair) else self.net

    def reverse(self) -> "Translator | None":
        """The B -> A translator of a two-way method (sharing its weights), or None."""
        if not isinstance(self.net, TranslationPair):
            return None
        return Translator(self.entry, self.config.reversed(), self.net.ba, self.weights_sha256, f"{self.name} (B->A)")

    def sample(self, n: int, seed: int, batch_size: int = 500) -> torch.Tensor:
        raise TypeError(f"{self.name} translates images (translate(images)); it does not sample from a latent")

    @torch.no_grad()
    def translate(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """uint8 (N, in_channels, H, W) -> uint8 (N, out_channels, H, W), on the CPU.

        Raises:
            ValueError: If ``images`` is not uint8 NCHW with the input domain's channels, or its sides are not
                multiples of what the network down-samples by.
        """
        if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.ndim != 4:
            got = f"{images.dtype} {tuple(images.shape)}" if torch.is_tensor(images) else type(images).__name__
            raise ValueError(f"{self.name} translates uint8 NCHW images, got {got}")
        if images.shape[1] != self.in_channels:
            raise ValueError(f"{self.name} takes {self.in_channels}-channel images, got {images.shape[1]} channels")
        net = self.forward_net
        multiple = getattr(net, "size_multiple", 1)
        if images.shape[2] % multiple or images.shape[3] % multiple:
            raise ValueError(f"{self.name} needs image sides that are multiples of {multiple}, got "
                             f"{tuple(images.shape[2:])}")
        device = next(net.parameters()).device
        outs = [to_uint8(net(from_uint8(images[i:i + batch_size]).to(device))).cpu()
                for i in range(0, len(images), batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, self.out_channels, *images.shape[2:], dtype=torch.uint8)


class ImagePool:
    """A history of generated images for the discriminator (Shrivastava et al. 2017), as the reference's
    ``util/image_pool.py``: until the pool is full every image is stored and returned as it is; after that each
    image is, with probability 1/2, swapped for a uniformly chosen stored image (which is returned in its place),
    and otherwise returned as it is. The pool never holds more than ``size`` images.

    Args:
        size: Images held; 0 returns every batch unchanged.
    """

    def __init__(self, size: int):
        if size < 0:
            raise ValueError(f"image pool size must be >= 0, got {size}")
        self.size = size
        self.count = 0
        self.images: torch.Tensor | None = None  # (size, C, H, W) once the first image arrives

    def query(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch the discriminator sees in place of ``images`` (detached); updates the pool.

        Args:
            generator: CPU generator for the coin flips and slot choices (reproducible pools).
        """
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        out = []
        for image in images:
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif torch.rand((), generator=generator).item() > 0.5:
                slot = int(torch.randint(self.size, (), generator=generator))
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> torch.Tensor | None:
        """The stored images (count, C, H, W), or None while empty."""
        return None if self.images is None else self.images[:self.count].clone()

    def load(self, stored: torch.Tensor | None, like: torch.Tensor | None = None) -> None:
        """Restore ``state()``; ``like`` gives the device."""
        self.count, self.images = 0, None
        if stored is None or len(stored) == 0:
            return
        if len(stored) > self.size:
            raise ValueError(f"a pool of size {self.size} cannot hold the {len(stored)} stored images")
        device = like.device if like is not None else stored.device
        self.images = stored.new_empty((self.size, *stored.shape[1:]), device=device)
        self.images[:len(stored)] = stored.to(device)
        self.count = len(stored)


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        net.requires_grad_(flag)


def seeded_dropout(step: Callable[[StepContext], dict[str, float]]) -> Callable[[StepContext], dict[str, float]]:
    """``step`` run with the global random state (which dropout reads) seeded from the step's generator, inside a
    fork: the noise is a function of (seed, step), and the caller's random state is left as it was."""

    def seeded(ctx: StepContext) -> dict[str, float]:
        device = ctx.batch["a"].device
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            torch.manual_seed(int(torch.randint(2 ** 62, (), generator=ctx.generator)))
            return step(ctx)

    seeded.__name__ = seeded.__qualname__ = getattr(step, "__name__", "step")
    seeded.__doc__ = step.__doc__
    return seeded


def check_domains(config: Any, split: Any) -> None:
    """Refuse a translation split whose domains do not match the config's channels and resolution."""
    for images, domain, field, want in ((split.a, "A", "in_channels", config.in_channels),
                                        (split.b, "B", "out_channels", config.out_channels)):
        label = f"domain {domain} of {split.dataset}/{split.split}"
        if images.shape[1] != want:
            raise ValueError(f"{label} has {images.shape[1]}-channel images but the config has {field}={want}")
        if tuple(images.shape[2:]) != (config.resolution, config.resolution):
            raise ValueError(f"{label} has {tuple(images.shape[2:])} images but the config has "
                             f"resolution={config.resolution}")


def _translation_training(pools: tuple[str, ...]) -> Callable[[ModelEntry, Any, TrainSettings], TrainState]:
    def build(entry: ModelEntry, config: Any, train: TrainSettings) -> TrainState:
        gen, disc = entry.build_generator(config), entry.build_discriminator(config)
        nets = {"G_ab": gen.ab, "G_ba": gen.ba} if isinstance(gen, TranslationPair) else {"G_ab": gen}
        nets.update({"D_a": disc["a"], "D_b": disc["b"]} if isinstance(disc, nn.ModuleDict) else {"D": disc})
        for net in nets.values():
            net.train()
        wd = getattr(config, "weight_decay", 0.0)
        betas = (train.beta1 if train.beta1 is not None else entry.betas[0], entry.betas[1])
        gens = [n for k, n in nets.items() if k.startswith("G")]
        discs = [n for k, n in nets.items() if k.startswith("D")]
        optimizers = {
            "opt_g": torch.optim.Adam(itertools.chain(*(n.parameters() for n in gens)), lr=train.lr_g or entry.lr_g,
                                      betas=betas, weight_decay=wd),
            "opt_d": torch.optim.Adam(itertools.chain(*(n.parameters() for n in discs)), lr=train.lr_d or entry.lr_d,
                                      betas=betas, weight_decay=wd)}
        return TrainState(nets, optimizers, {f"pool.{k}": ImagePool(config.pool_size) for k in pools})

    return build


def _export(state: TrainState) -> nn.Module:
    if "G_ba" in state.nets:
        return TranslationPair(state.nets["G_ab"], state.nets["G_ba"])
    return state.nets["G_ab"]


def _source_images(config: Any, batch: int, generator: torch.Generator) -> tuple[torch.Tensor]:
    """A translation generator's input: a batch of domain-A images in [-1, 1]."""
    return (torch.rand(batch, config.in_channels, config.resolution, config.resolution, generator=generator) * 2 - 1,)


def translation_entry(name: str, paired: bool, config_cls: type, build_generator: Callable[[Any], nn.Module],
                      build_discriminator: Callable[[Any], nn.Module], step: Callable[[StepContext], dict[str, float]],
                      paper: str, presets: dict[str, dict[str, Any]], batch_size: int, pools: tuple[str, ...] = ()
                      ) -> ModelEntry:
    """The ``ModelEntry`` of a translation method (register it with ``register_model``).

    Args:
        paired: Trains on aligned pairs (Pix2Pix); otherwise on two image sets (aligned pairs also do).
        build_generator: config -> the exported network: one generator, or a ``TranslationPair``.
        build_discriminator: config -> one discriminator, or ``nn.ModuleDict({"a": D_a, "b": D_b})``.
        step: One training iteration (``ctx.batch`` has "a" and "b"); dropout is seeded around it.
        batch_size: The reference's batch size.
        pools: Image pools the step reads as ``ctx.state.extras["pool.<name>"]`` (CycleGAN: "a" and "b").
    """
    return ModelEntry(name, name, "paired_translation" if paired else "unpaired_translation",
                      "paired" if paired else "unpaired", config_cls, build_generator, build_discriminator, name,
                      2e-4, 2e-4, (0.5, 0.999), paper, presets=presets, generator_inputs=_source_images,
                      train_step=seeded_dropout(step), build_training=_translation_training(pools), export=_export,
                      wrapper=Translator, batch_size=batch_size, check_data=check_domains)


__all__ = ["ImagePool", "TranslationPair", "Translator", "check_domains", "seeded_dropout", "set_requires_grad",
           "translation_entry"]
