"""The model zoo: one module per architecture (networks, training step, registry entry), and the ways to get one.

A trained generator is used through ``Generator.sample(n, seed)`` (uint8 NCHW images, float32 (N, 2) points for
the toy sets), a translator through ``Translator.translate(images)``; see ``ganbench.zoo.base`` for the contracts.
Importing this package registers every architecture:

- ``dcgan`` and ``lsgan`` (``dcgan``), ``mlpgan`` (``mlpgan``): unconditional, the default adversarial step;
- ``cdcgan`` (class-conditional), ``text2img`` (text-to-image), ``pixelcnn`` (likelihood), ``progan`` and
  ``stylegan2`` (unconditional), ``srgan`` (super-resolution): each with its own training step;
- ``pix2pix`` (paired translation), ``cyclegan`` and ``discogan`` (unpaired translation), through
  ``ganbench.zoo.translator``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ganbench.registry import MODELS
from ganbench.zoo import cdcgan, cyclegan, dcgan, discogan, mlpgan, pix2pix, pixelcnn, progan, srgan, stylegan2, text2img
from ganbench.zoo.base import (GENERATOR_FORMAT, Generator, ModelEntry, StepContext, TrainState, from_uint8,
                               register_model, to_uint8)
from ganbench.zoo.cdcgan import ConditionalGenerator
from ganbench.zoo.translator import Translator

ARCHITECTURE_MODULES = (dcgan, mlpgan, cdcgan, text2img, pixelcnn, progan, stylegan2, srgan, pix2pix, cyclegan,
                        discogan)


def get_model(name: str) -> ModelEntry:
    return MODELS.get(name)


def untrained_generator(model: str, seed: int = 0, **config: Any) -> Generator:
    """A freshly initialised generator: the lower reference row of a leaderboard."""
    entry = get_model(model)
    cfg = entry.make_config(**config)
    torch.manual_seed(seed)
    return entry.wrap(cfg, entry.build_generator(cfg), None, name=f"{model} (untrained)")


def load_generator(path: str | Path) -> Generator:
    """Load a generator written by ``Generator.save`` (a finished run's ``generator.safetensors``), in the class its
    model is used through (``Generator``, ``ConditionalGenerator``, ``Translator``).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a ganbench generator file (a pickle, another safetensors file, damaged bytes),
            naming the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator weights {str(path)!r} do not exist")
    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("ganbench", "{}"))
    except Exception as e:  # noqa: BLE001  (safetensors, JSON and OS errors alike: the file is not one of ours)
        raise ValueError(f"{str(path)!r} is not a safetensors generator file ({e}); ganbench reads generators "
                         f"written by `ganbench train`, and third-party checkpoints (pickles) through a model card: "
                         f"`ganbench fetch ARCH.TAG` converts them to safetensors") from None
    if not isinstance(meta, dict) or meta.get("format") != GENERATOR_FORMAT:
        raise ValueError(f"{str(path)!r} is not a ganbench generator file (metadata format "
                         f"{meta.get('format') if isinstance(meta, dict) else meta!r}, expected {GENERATOR_FORMAT!r})")
    if not isinstance(meta.get("model"), str) or meta["model"] not in MODELS:
        raise ValueError(f"{str(path)!r} names model {meta.get('model')!r}, which is not registered; "
                         f"registered: {', '.join(MODELS.list())}")
    entry = get_model(meta["model"])
    if not isinstance(meta.get("config"), dict):
        raise ValueError(f"{str(path)!r} records no config of {entry.name} (metadata 'config' is "
                         f"{meta.get('config')!r})")
    try:
        return entry.restore(path, entry.make_config(**meta["config"]))
    except (TypeError, RuntimeError) as e:  # config fields or tensors that do not fit the architecture
        raise ValueError(f"{str(path)!r} does not hold a {entry.name} generator of its recorded config: "
                         f"{str(e).splitlines()[0]}") from None


__all__ = ["ARCHITECTURE_MODULES", "ConditionalGenerator", "GENERATOR_FORMAT", "Generator", "ModelEntry",
           "StepContext", "TrainState", "Translator", "from_uint8", "get_model", "load_generator", "register_model",
           "to_uint8", "untrained_generator"]
