"""Training for the image-to-image translation models: Pix2Pix, CycleGAN and DiscoGAN.

One step function per method, each following its reference implementation's update order and loss weights:

- ``pix2pix_step``: junyanz/pytorch-CycleGAN-and-pix2pix ``models/pix2pix_model.py`` (``optimize_parameters``):
  D on (a, b) against (a, G(a)) with binary cross-entropy, the two terms halved; then G against the updated D
  plus ``lambda_l1`` (100) x L1(G(a), b). No image pool (the reference sets ``pool_size=0`` for pix2pix).
- ``cyclegan_step``: the same repository's ``models/cycle_gan_model.py``: both generators first, with
  least-squares GAN terms, cycle L1 x ``lambda_cycle`` (10) both ways and identity L1 x ``lambda_identity`` x
  ``lambda_cycle`` (0.5 x 10); then both discriminators on the real batch and on generated images drawn through a
  50-image history pool per direction, each D loss halved.
- ``discogan_step``: SKTBrain/DiscoGAN ``discogan/image_translation.py``: one forward of both directions and both
  reconstructions; every ``update_interval``-th (3rd) step updates both discriminators (halved binary
  cross-entropy), the others both generators with ``(0.1 x GAN + 0.9 x feature matching) x (1 - rate) +
  reconstruction MSE x rate``, ``rate`` 0.01 during the first ``gan_curriculum`` steps and 0.5 after; Adam with
  weight decay 1e-5.

All use Adam(2e-4, betas=(0.5, 0.999)) and optionally the reference's linear learning-rate decay to zero over
the last ``decay_steps`` steps. The trainer keeps the conventions of ``ganbench.train.loop``: every step draws its
batches, dropout noise and pool decisions from generators seeded by (seed, step), so a run resumed from its
checkpoint takes exactly the steps an uninterrupted run takes; one safetensors checkpoint (all networks,
optimizer states, image pools, step) written atomically; ``losses.csv``; a progress bar on stderr.

What differs from the references: batches are drawn with replacement from per-step generators instead of
epoch shuffles, and the learning-rate decay is applied per step instead of per epoch.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from ganbench.data import Split
from ganbench.results.store import atomic_path, write_text_atomic
from ganbench.train.loop import (CheckpointMismatch, _load_optimizer, _optimizer_tensors, _prefixed, _step_generator,
                                 _unprefixed)
from ganbench.train.objectives import least_squares, nonsaturating, nonsaturating_g
from ganbench.zoo import from_uint8
from ganbench.zoo.cyclegan import CycleGANConfig, CycleGANDiscriminator, CycleGANGenerator
from ganbench.zoo.discogan import DiscoGANConfig, DiscoGANDiscriminator, DiscoGANGenerator
from ganbench.zoo.pix2pix import Pix2PixConfig, Pix2PixDiscriminator, UNetGenerator
from ganbench.zoo.translator import Translator

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ganbench.translation-checkpoint/1"


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


@dataclass
class TranslationState:
    """Everything a step function reads and updates."""

    config: Any  # the method's config (direction A -> B)
    nets: dict[str, nn.Module]  # "G_ab", plus "D" (Pix2Pix) or "G_ba", "D_a", "D_b" (CycleGAN, DiscoGAN)
    opt_g: torch.optim.Optimizer  # Adam over every generator
    opt_d: torch.optim.Optimizer  # Adam over every discriminator
    pools: dict[str, ImagePool] = dataclasses.field(default_factory=dict)  # CycleGAN: generated A and B images


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        net.requires_grad_(flag)


def pix2pix_step(s: TranslationState, a: torch.Tensor, b: torch.Tensor, step: int, g: torch.Generator
                 ) -> dict[str, float]:
    """One Pix2Pix update: D then G, as the reference's ``Pix2PixModel.optimize_parameters``."""
    G, D = s.nets["G_ab"], s.nets["D"]
    fake_b = G(a)
    d_fake, d_real = D(a, fake_b.detach()), D(a, b)  # the reference's order (it moves batch-norm running stats)
    loss_d = 0.5 * nonsaturating(d_real, d_fake)
    s.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    s.opt_d.step()

    _set_requires_grad([D], False)
    loss_gan = nonsaturating_g(D(a, fake_b))
    loss_l1 = F.l1_loss(fake_b, b)
    s.opt_g.zero_grad(set_to_none=True)
    (loss_gan + s.config.lambda_l1 * loss_l1).backward()
    s.opt_g.step()
    _set_requires_grad([D], True)
    return {"loss_d": loss_d.item(), "loss_g_gan": loss_gan.item(), "l1": loss_l1.item(),
            "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}


def cyclegan_step(s: TranslationState, a: torch.Tensor, b: torch.Tensor, step: int, g: torch.Generator
                  ) -> dict[str, float]:
    """One CycleGAN update: both generators, then both discriminators on pooled fakes, as the reference's
    ``CycleGANModel.optimize_parameters``."""
    cfg = s.config
    G_ab, G_ba, D_a, D_b = s.nets["G_ab"], s.nets["G_ba"], s.nets["D_a"], s.nets["D_b"]
    fake_b, fake_a = G_ab(a), G_ba(b)
    rec_a, rec_b = G_ba(fake_b), G_ab(fake_a)

    _set_requires_grad([D_a, D_b], False)
    lam = cfg.lambda_cycle
    if cfg.lambda_identity > 0:
        idt_b = F.l1_loss(G_ab(b), b) * lam * cfg.lambda_identity  # G_ab should leave B images alone
        idt_a = F.l1_loss(G_ba(a), a) * lam * cfg.lambda_identity
    else:
        idt_a = idt_b = torch.zeros((), device=a.device)
    pred_b, pred_a = D_b(fake_b), D_a(fake_a)
    gan_ab = F.mse_loss(pred_b, torch.ones_like(pred_b))
    gan_ba = F.mse_loss(pred_a, torch.ones_like(pred_a))
    cycle_a, cycle_b = F.l1_loss(rec_a, a) * lam, F.l1_loss(rec_b, b) * lam
    s.opt_g.zero_grad(set_to_none=True)
    (gan_ab + gan_ba + cycle_a + cycle_b + idt_a + idt_b).backward()
    s.opt_g.step()
    _set_requires_grad([D_a, D_b], True)

    # least_squares is 0.5 (D(real) - 1)^2 + 0.5 D(fake)^2: the reference's halved D loss.
    loss_d_b = least_squares(D_b(b), D_b(s.pools["b"].query(fake_b, g)))
    loss_d_a = least_squares(D_a(a), D_a(s.pools["a"].query(fake_a, g)))
    s.opt_d.zero_grad(set_to_none=True)
    (loss_d_a + loss_d_b).backward()
    s.opt_d.step()
    return {"loss_d_a": loss_d_a.item(), "loss_d_b": loss_d_b.item(), "gan_ab": gan_ab.item(),
            "gan_ba": gan_ba.item(), "cycle_a": cycle_a.item(), "cycle_b": cycle_b.item(), "idt_a": idt_a.item(),
            "idt_b": idt_b.item()}


def _feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """The reference's ``get_fm_loss``: per layer, the mean squared difference of the batch-mean activations
    (its HingeEmbeddingLoss with target 1 reduces to that mean), summed over layers."""
    return sum(((r.mean(0) - f.mean(0)) ** 2).mean() for r, f in zip(real, fake))


def _half_bce(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * nonsaturating(d_real, d_fake)


def discogan_rate(cfg: DiscoGANConfig, step: int) -> float:
    """Weight of the reconstruction terms at ``step`` (the reference's GAN curriculum)."""
    return cfg.starting_rate if step < cfg.gan_curriculum else cfg.default_rate


def discogan_step(s: TranslationState, a: torch.Tensor, b: torch.Tensor, step: int, g: torch.Generator
                  ) -> dict[str, float]:
    """One DiscoGAN iteration of the reference's loop: a D update when ``step % update_interval == 0``, a G
    update otherwise; the losses of both are computed and logged every step (``updated``: 0 for a D step, 1 for a
    G step)."""
    cfg = s.config
    G_ab, G_ba, D_a, D_b = s.nets["G_ab"], s.nets["G_ba"], s.nets["D_a"], s.nets["D_b"]
    update_d = step % cfg.update_interval == 0
    with torch.set_grad_enabled(not update_d):  # a D step needs no gradient through the generators
        ab, ba = G_ab(a), G_ba(b)
        aba, bab = G_ba(ab), G_ab(ba)
    # The reference's MSE is over [0, 1] pixels: a quarter of the MSE over ganbench's [-1, 1].
    recon_a, recon_b = F.mse_loss(aba, a) / 4, F.mse_loss(bab, b) / 4
    _set_requires_grad([D_a, D_b], update_d)
    a_real, a_real_feats = D_a(a)
    a_fake, a_fake_feats = D_a(ba)
    b_real, b_real_feats = D_b(b)
    b_fake, b_fake_feats = D_b(ab)
    dis_a, dis_b = _half_bce(a_real, a_fake), _half_bce(b_real, b_fake)
    gen_a, gen_b = nonsaturating_g(a_fake), nonsaturating_g(b_fake)  # gen_a: G_ba fooling D_a
    fm_a, fm_b = _feature_matching(a_real_feats, a_fake_feats), _feature_matching(b_real_feats, b_fake_feats)
    rate, w = discogan_rate(cfg, step), cfg.fm_weight
    total_ab = (gen_b * (1 - w) + fm_b * w) * (1 - rate) + recon_a * rate  # the reference's gen_loss_A_total
    total_ba = (gen_a * (1 - w) + fm_a * w) * (1 - rate) + recon_b * rate
    if update_d:
        s.opt_d.zero_grad(set_to_none=True)
        (dis_a + dis_b).backward()
        s.opt_d.step()
    else:
        s.opt_g.zero_grad(set_to_none=True)
        (total_ab + total_ba).backward()
        s.opt_g.step()
    _set_requires_grad([D_a, D_b], True)
    return {"updated": 0.0 if update_d else 1.0, "loss_d_a": dis_a.item(), "loss_d_b": dis_b.item(),
            "gan_ab": gen_b.item(), "gan_ba": gen_a.item(), "fm_a": fm_a.item(), "fm_b": fm_b.item(),
            "recon_a": recon_a.item(), "recon_b": recon_b.item(), "rate": rate}


StepFn = Callable[[TranslationState, torch.Tensor, torch.Tensor, int, torch.Generator], dict[str, float]]


@dataclass(frozen=True)
class TranslationMethod:
    """How one translation method is built and trained."""

    name: str  # "pix2pix", "cyclegan" or "discogan"
    config_cls: type  # its config dataclass
    paired: bool  # trains on aligned (a, b) pairs
    build: Callable[[Any], dict[str, nn.Module]]  # config -> networks, generators named "G_*", discriminators "D*"
    step: StepFn  # one training iteration
    pools: tuple[str, ...]  # image pools (CycleGAN: one per domain)
    reference_batch: int  # the reference's batch size
    loss_columns: tuple[str, ...]  # the step function's log keys, in losses.csv order


def _build_pix2pix(cfg: Pix2PixConfig) -> dict[str, nn.Module]:
    return {"G_ab": UNetGenerator(cfg), "D": Pix2PixDiscriminator(cfg)}


def _build_cyclegan(cfg: CycleGANConfig) -> dict[str, nn.Module]:
    return {"G_ab": CycleGANGenerator(cfg), "G_ba": CycleGANGenerator(cfg.reversed()),
            "D_a": CycleGANDiscriminator(cfg.reversed()), "D_b": CycleGANDiscriminator(cfg)}


def _build_discogan(cfg: DiscoGANConfig) -> dict[str, nn.Module]:
    return {"G_ab": DiscoGANGenerator(cfg), "G_ba": DiscoGANGenerator(cfg.reversed()),
            "D_a": DiscoGANDiscriminator(cfg.reversed()), "D_b": DiscoGANDiscriminator(cfg)}


METHODS: dict[str, TranslationMethod] = {
    "pix2pix": TranslationMethod("pix2pix", Pix2PixConfig, True, _build_pix2pix, pix2pix_step, (), 1,
                                 ("loss_d", "loss_g_gan", "l1", "d_real", "d_fake")),
    "cyclegan": TranslationMethod("cyclegan", CycleGANConfig, False, _build_cyclegan, cyclegan_step, ("a", "b"), 1,
                                  ("loss_d_a", "loss_d_b", "gan_ab", "gan_ba", "cycle_a", "cycle_b", "idt_a",
                                   "idt_b")),
    "discogan": TranslationMethod("discogan", DiscoGANConfig, False, _build_discogan, discogan_step, (), 64,
                                  ("updated", "loss_d_a", "loss_d_b", "gan_ab", "gan_ba", "fm_a", "fm_b", "recon_a",
                                   "recon_b", "rate")),
}


def get_method(name: str) -> TranslationMethod:
    if name not in METHODS:
        raise ValueError(f"unknown translation method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]


@dataclass
class TranslationTrainConfig:
    steps: int = 2000  # optimisation steps
    batch_size: int | None = None  # images per domain and step; None: the reference's (1; DiscoGAN 64)
    seed: int = 0  # seeds initialisation, batches, dropout and image pools
    checkpoint_every: int = 500  # steps between checkpoints (and at the end)
    lr: float = 2e-4  # Adam learning rate of every network
    beta1: float = 0.5  # Adam beta1 (beta2 is 0.999)
    decay_steps: int = 0  # the last steps over which the learning rate falls linearly to 0 (the reference's
    # 'linear' policy, per step); 0: constant

    def __post_init__(self) -> None:
        if self.steps < 0 or self.checkpoint_every < 1 or self.decay_steps < 0:
            raise ValueError(f"steps and decay_steps must be >= 0 and checkpoint_every >= 1, got {self}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")

    def lr_at(self, step: int) -> float:
        """The reference's 'linear' rule ``1 - max(0, t + 1 - n_constant) / (n_decay + 1)``, t counted in steps."""
        if not self.decay_steps:
            return self.lr
        constant = self.steps - self.decay_steps
        return self.lr * (1.0 - max(0, step + 1 - constant) / float(self.decay_steps + 1))


@dataclass
class TranslationOutcome:
    translators: dict[str, Translator]  # "ab" (and "ba" for CycleGAN/DiscoGAN): the trained generators
    weights_paths: dict[str, Path]  # generator_ab.safetensors, generator_ba.safetensors
    steps: int  # steps completed
    resumed_from: int  # step the run started at (0 for a fresh run)
    seconds: float  # wall time of this invocation's training
    losses: list[dict[str, float]]  # one row per step, as in losses.csv


def _domain(name: str, data: Split | torch.Tensor) -> tuple[torch.Tensor, dict[str, Any], str]:
    """uint8 NCHW images of one domain, what identifies them, and how error messages name them."""
    if isinstance(data, Split):
        images, label = data.data, f"{name} (dataset {data.dataset!r}, split {data.split!r})"
    elif torch.is_tensor(data):
        images, label = data, name
    else:
        raise TypeError(f"{name} must be a Split or a uint8 NCHW tensor, got {type(data).__name__}")
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"{label} must hold uint8 NCHW images, got {images.dtype} {tuple(images.shape)}")
    if len(images) == 0:
        raise ValueError(f"{label} holds no images")
    if isinstance(data, Split):
        ident = {"dataset": data.dataset, "split": data.split, "sha256": data.sha256}
    else:  # hashed as Split hashes its data
        h = hashlib.sha256(str(tuple(images.shape)).encode())
        h.update(images.contiguous().numpy().tobytes())
        ident = {"dataset": None, "split": None, "sha256": h.hexdigest()}
    return images, ident, label


def _check_domains(method: TranslationMethod, cfg: Any, A: torch.Tensor, a_label: str, B: torch.Tensor,
                   b_label: str) -> None:
    for images, label, field, want in ((A, a_label, "in_channels", cfg.in_channels),
                                       (B, b_label, "out_channels", cfg.out_channels)):
        if images.shape[1] != want:
            raise ValueError(f"{label} has {images.shape[1]}-channel images but the {method.name} config "
                             f"has {field}={want}")
        if tuple(images.shape[2:]) != (cfg.resolution, cfg.resolution):
            raise ValueError(f"{label} has {tuple(images.shape[2:])} images but the {method.name} config "
                             f"has resolution={cfg.resolution}")
    if method.paired and len(A) != len(B):
        raise ValueError(f"{method.name} trains on aligned pairs, but {a_label} holds {len(A)} images and "
                         f"{b_label} holds {len(B)}")


def _make_config(method: TranslationMethod, config: Any) -> Any:
    if config is None:
        return method.config_cls()
    if isinstance(config, dict):
        names = {f.name for f in dataclasses.fields(method.config_cls)}
        unknown = set(config) - names
        if unknown:
            raise ValueError(f"{method.name} has no config field(s) {sorted(unknown)}; valid: {sorted(names)}")
        return method.config_cls(**config)
    if not isinstance(config, method.config_cls):
        raise TypeError(f"{method.name} needs a {method.config_cls.__name__} (or a dict of its fields), got "
                        f"{type(config).__name__}")
    return config


def build_state(method: TranslationMethod, cfg: Any, train: TranslationTrainConfig, device: torch.device
                ) -> TranslationState:
    """Networks initialised from ``train.seed`` (the caller's random state untouched), their optimizers and
    empty pools."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train.seed)
        nets = {k: v.to(device).train() for k, v in method.build(cfg).items()}
    gens = [n for k, n in nets.items() if k.startswith("G")]
    discs = [n for k, n in nets.items() if k.startswith("D")]
    wd = getattr(cfg, "weight_decay", 0.0)
    betas = (train.beta1, 0.999)
    opt_g = torch.optim.Adam(itertools.chain(*(n.parameters() for n in gens)), lr=train.lr, betas=betas,
                             weight_decay=wd)
    opt_d = torch.optim.Adam(itertools.chain(*(n.parameters() for n in discs)), lr=train.lr, betas=betas,
                             weight_decay=wd)
    pools = {k: ImagePool(cfg.pool_size) for k in method.pools}
    return TranslationState(cfg, nets, opt_g, opt_d, pools)


def train_translation(method: str, config: Any, data_a: Split | torch.Tensor, data_b: Split | torch.Tensor,
                      out_dir: str | Path, train: TranslationTrainConfig = TranslationTrainConfig(),
                      resume: bool = False, progress: bool = True, device: str | torch.device | None = None
                      ) -> TranslationOutcome:
    """Train a translation method on domains A and B, writing checkpoints, a loss log and the generators.

    Args:
        method: "pix2pix", "cyclegan" or "discogan".
        config: The method's config dataclass, a dict of its fields, or None for the paper's defaults.
        data_a: Domain A images (uint8 NCHW, a ``Split`` or a tensor). For Pix2Pix, aligned with ``data_b``.
        data_b: Domain B images.
        out_dir: Receives ``checkpoint.safetensors``, ``losses.csv``, ``generator_ab.safetensors`` (and
            ``generator_ba.safetensors``) and ``train.json``.
        resume: Continue from ``out_dir/checkpoint.safetensors``. Without it an existing checkpoint is an error.
        device: Where to train; default CUDA when present, else the CPU.

    Raises:
        ValueError: If the domains do not match the config (channels, resolution) or, for Pix2Pix, each other.
        FileExistsError: If a checkpoint exists and ``resume`` is False.
        CheckpointMismatch: If the checkpoint was made with another method, data or configuration.
    """
    m = get_method(method)
    cfg = _make_config(m, config)
    A, a_id, a_label = _domain("data_a", data_a)
    B, b_id, b_label = _domain("data_b", data_b)
    _check_domains(m, cfg, A, a_label, B, b_label)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = train.batch_size or m.reference_batch
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.safetensors"
    tc = dataclasses.asdict(train)
    tc.pop("checkpoint_every")
    if not train.decay_steps:  # a constant learning rate lets a finished run be extended; a decay schedule does not
        tc.pop("steps")
    # Through JSON so that it compares equal to the copy read back from a checkpoint (tuples become lists).
    identity = json.loads(json.dumps({"method": m.name, "config": dataclasses.asdict(cfg), "train_config": tc,
                                      "batch_size": batch, "data_a": a_id, "data_b": b_id}))

    state = build_state(m, cfg, train, device)
    start, losses = 0, []
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{str(ckpt_path)!r} exists; pass resume=True (--resume) to continue it, "
                                  f"or choose another output directory")
        start, losses = _load_checkpoint(ckpt_path, identity, state, out_dir)
        log.info("resuming %s from step %d of %d", out_dir, start, train.steps)

    rng_devices = [device.index or 0] if device.type == "cuda" else []
    t0 = time.perf_counter()
    bar = tqdm(total=train.steps, initial=start, desc=f"train {m.name}", unit="step", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    for step in range(start, train.steps):
        g = _step_generator(train.seed, step)
        idx_a = torch.randint(len(A), (batch,), generator=g)
        idx_b = idx_a if m.paired else torch.randint(len(B), (batch,), generator=g)
        a, b = from_uint8(A[idx_a]).to(device), from_uint8(B[idx_b]).to(device)
        for opt in (state.opt_g, state.opt_d):
            for group in opt.param_groups:
                group["lr"] = train.lr_at(step)
        with torch.random.fork_rng(devices=rng_devices):  # dropout noise from (seed, step), caller's RNG untouched
            torch.manual_seed(int(torch.randint(2 ** 62, (), generator=g)))
            row = m.step(state, a, b, step, g)
        losses.append({"step": step + 1, **row})
        bar.update(1)
        if (step + 1) % 50 == 0:
            bar.set_postfix({k: f"{row[k]:.3f}" for k in m.loss_columns if k not in ("updated", "rate")})
        if (step + 1) % train.checkpoint_every == 0 or step + 1 == train.steps:
            _save_checkpoint(ckpt_path, identity, step + 1, m, state, losses, out_dir)
    bar.close()
    seconds = time.perf_counter() - t0

    translators, paths = {}, {}
    for direction, key in (("ab", "G_ab"), ("ba", "G_ba")):
        if key not in state.nets:
            continue
        net = copy.deepcopy(state.nets[key]).requires_grad_(False)
        tr = Translator(m.name, cfg if direction == "ab" else cfg.reversed(), net, direction,
                        name=f"{m.name}.{direction}")
        paths[direction] = out_dir / f"generator_{direction}.safetensors"
        tr.save(paths[direction])
        translators[direction] = tr
    summary = {**identity, "steps": train.steps, "checkpoint_every": train.checkpoint_every,
               "weights_sha256": {d: t.weights_sha256 for d, t in translators.items()}}
    write_text_atomic(out_dir / "train.json", json.dumps(summary, indent=2) + "\n")
    return TranslationOutcome(translators, paths, train.steps, start, seconds, losses)


def _write_losses(out_dir: Path, method: TranslationMethod, losses: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["step", *method.loss_columns])
    writer.writeheader()
    writer.writerows(losses)
    write_text_atomic(out_dir / "losses.csv", buf.getvalue())


def _save_checkpoint(path: Path, identity: dict, step: int, method: TranslationMethod, state: TranslationState,
                     losses: list[dict], out_dir: Path) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for name, net in state.nets.items():
        tensors.update(_prefixed(name, net))
    tg, groups_g = _optimizer_tensors("opt_g", state.opt_g)
    td, groups_d = _optimizer_tensors("opt_d", state.opt_d)
    tensors.update(tg)
    tensors.update(td)
    for name, pool in state.pools.items():
        stored = pool.state()
        if stored is not None:
            tensors[f"pool.{name}"] = stored
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {"format": CHECKPOINT_FORMAT, "step": str(step), "identity": json.dumps(identity),
            "opt_g_groups": json.dumps(groups_g), "opt_d_groups": json.dumps(groups_d)}
    # The loss log goes first: a crash between the two leaves a log ahead of the checkpoint, which resume
    # truncates; never a checkpoint whose log is missing rows.
    _write_losses(out_dir, method, losses)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _load_checkpoint(path: Path, identity: dict, state: TranslationState, out_dir: Path
                     ) -> tuple[int, list[dict]]:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatch(f"{str(path)!r} is not a ganbench translation checkpoint (format "
                                 f"{meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
    saved = json.loads(meta["identity"])
    if saved != identity:
        diff = sorted(k for k in identity if saved.get(k) != identity[k])
        raise CheckpointMismatch(f"checkpoint {str(path)!r} was made with a different {', '.join(diff)}; "
                                 f"use another output directory")
    for name, net in state.nets.items():
        net.load_state_dict(_unprefixed(name, tensors), strict=True)
    _load_optimizer(state.opt_g, "opt_g", tensors, json.loads(meta["opt_g_groups"]))
    _load_optimizer(state.opt_d, "opt_d", tensors, json.loads(meta["opt_d_groups"]))
    like = next(iter(state.nets["G_ab"].parameters()))
    for name, pool in state.pools.items():
        pool.load(tensors.get(f"pool.{name}"), like)
    step = int(meta["step"])
    losses: list[dict] = []
    log_path = out_dir / "losses.csv"
    if log_path.exists():
        with open(log_path, newline="") as fh:
            losses = [{k: (int(v) if k == "step" else float(v)) for k, v in row.items()}
                      for row in csv.DictReader(fh) if int(row["step"]) <= step]
    return step, losses
