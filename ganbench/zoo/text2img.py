"""Text-to-image GAN: Reed et al. 2016's GAN-CLS ("Generative Adversarial Text to Image Synthesis", ICML 2016,
arXiv:1605.05396) with the conditioning augmentation of StackGAN (Zhang et al. 2017, "StackGAN: Text to
Photo-realistic Image Synthesis with Stacked Generative Adversarial Networks", ICCV 2017, arXiv:1612.03242), on
captioned digits (``ganbench.data.captions``).

- Text encoder (``TextEncoder``): word embeddings and a one-layer GRU over the caption's tokens; the text embedding
  is the GRU's last hidden state at the caption's last word. Reed et al. and StackGAN use a char-CNN-RNN embedding
  pretrained on their datasets and then frozen; here the vocabulary has 18 words and the encoder is trained with the
  GAN: G and D each own one and learn it from their own loss (there is no pretrained encoder to share).
- Conditioning augmentation (StackGAN Sec. 3.1, ``ConditioningAugmentation``): a fully connected layer maps the text
  embedding to the mean and log-variance of a diagonal Gaussian over a ``c_dim`` conditioning code; the code is
  drawn by reparameterisation, ``c = mu + exp(logvar / 2) * eps``, and G's loss adds ``kl_weight`` x the KL
  divergence of that Gaussian from N(0, I), averaged over code elements as StackGAN's ``KL_loss`` does
  (hanzhanggit/StackGAN-Pytorch ``miscc/utils.py``; its coefficient ``TRAIN.COEFF.KL`` is 2). StackGAN-v1's code puts
  a ReLU before the split, which makes mu and logvar non-negative; ganbench uses the plain linear layer the paper
  describes. At sampling time ``eps`` is not given and ``c = mu``: samples are a function of (z, caption).
- G: DCGAN's transposed-convolution stack (``ganbench.zoo.dcgan.generator_layers``) on ``[z, c]``, as GAN-CLS puts
  the compressed text next to z.
- D (matching-aware, Reed et al. Sec. 4.2): DCGAN's strided convolutions down to 4x4; the text embedding, compressed
  to ``d_text_dim`` by a linear layer and LeakyReLU(0.2), is replicated over the 4x4 grid and concatenated; then
  StackGAN's ``D_GET_LOGITS``: conv 3x3, BN, LeakyReLU(0.2), conv 4x4 to one logit (N,). The training step
  (``ganbench.train.text2img``) scores real+right, real+wrong and fake+right pairs.

Inputs: ``G(z, tokens, eps=None)`` with z (N, nz) and caption token ids (N, L) int64; ``generator_inputs`` draws z
and uniformly random captions (digit and attribute levels) from the seeded generator, so ``Generator.sample`` and
the bench work unchanged; ``sample_with_captions`` returns the captions beside the images for scoring.

Training (``text2img_step``, run by ``ganbench.train.loop``): the matching-aware discriminator of Reed et al. 2016 (GAN-CLS, arXiv:1605.05396,
Algorithm 1) with StackGAN's conditioning-augmentation KL term (Zhang et al. 2017, arXiv:1612.03242, Eq. 3-4), as
hanzhanggit/StackGAN-Pytorch ``miscc/utils.py`` (``compute_discriminator_loss``, ``KL_loss``) computes them.

Each step takes the real batch and its class labels from the training loop (``ctx.real``, ``ctx.labels``; the
dataset must have labels, e.g. ``mnist``) and captions every real image from its pixels and label
(``ganbench.data.captions.build_captions``; deterministic). Then:

1. D on three kinds of pairs: (real image, its caption) -> 1; (real image, a wrong caption) -> 0; (G(z, caption),
   caption) -> 0, with binary cross-entropy, ``L_D = L_real + (L_wrong + L_fake) / 2``. The wrong caption of image
   i is the caption of image i - 1 of the batch (StackGAN pairs ``real[:-1]`` with ``cond[1:]``; rolling keeps all B
   pairs). About one in ten shares the digit; such a pair still differs in the attributes or is, rarely, the same
   caption, as in the reference.
2. G: ``-log D(G(z, caption), caption)`` plus ``kl_weight`` x the CA KL term, StackGAN's element mean
   ``-0.5 mean(1 + logvar - mu^2 - exp(logvar))``.

z and the CA noise eps come from the step's seeded generator, so a resumed run repeats an uninterrupted one.
Logged: ``loss_d``, ``loss_g``, ``kl`` (the KL divergence in nats per caption, summed over the code),
``d_real``, ``d_wrong``, ``d_fake`` (mean logits). Adam(2e-4, betas (0.5, 0.999)) as in both references.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganbench.data.captions import PAD, VOCAB, build_captions, random_captions
from ganbench.zoo.base import Generator, ModelEntry, register_model, to_uint8
from ganbench.zoo.dcgan import DCGANConfig, dcgan_init, generator_layers


@dataclass
class Text2ImgConfig:
    resolution: int = 32  # output side: 32, 64 or 128
    channels: int = 1  # image channels
    nz: int = 100  # latent dimension
    ngf: int = 64  # G width (channels of its last hidden layer)
    ndf: int = 64  # D width (channels of its first layer)
    embed_dim: int = 32  # word embedding size
    text_dim: int = 64  # GRU hidden size = text embedding size
    c_dim: int = 32  # conditioning-augmentation code size (StackGAN: 128)
    d_text_dim: int = 32  # D's compressed text embedding (GAN-CLS: 128)
    kl_weight: float = 2.0  # weight of the CA KL term in G's loss (StackGAN's TRAIN.COEFF.KL)

    def __post_init__(self) -> None:
        self.dcgan()  # checks the resolution
        if min(self.nz, self.ngf, self.ndf, self.embed_dim, self.text_dim, self.c_dim, self.d_text_dim) < 1:
            raise ValueError("text-to-image sizes (nz, ngf, ndf, embed_dim, text_dim, c_dim, d_text_dim) must be "
                             "positive")
        if self.kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {self.kl_weight}")

    def dcgan(self) -> DCGANConfig:
        return DCGANConfig(self.resolution, self.channels, self.nz, self.ngf, self.ndf)


def check_tokens(tokens: torch.Tensor, batch: int | None = None) -> torch.Tensor:
    """Validate caption token ids: int64 (N, L), in the vocabulary, every caption at least one word, no word after
    padding. Returns the caption lengths (N,)."""
    if not torch.is_tensor(tokens) or tokens.dtype != torch.int64 or tokens.dim() != 2:
        got = f"{tokens.dtype} {tuple(tokens.shape)}" if torch.is_tensor(tokens) else type(tokens).__name__
        raise ValueError(f"captions must be int64 (N, L) token ids (ganbench.data.captions), got {got}")
    if batch is not None and len(tokens) != batch:
        raise ValueError(f"got {batch} latents but {len(tokens)} captions")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= len(VOCAB)):
        raise ValueError(f"caption token ids must lie in [0, {len(VOCAB)}), got [{int(tokens.min())}, "
                         f"{int(tokens.max())}]")
    words = tokens != PAD
    lengths = words.sum(1)
    if len(tokens) and (int(lengths.min()) == 0 or bool((words[:, 1:] & ~words[:, :-1]).any())):
        raise ValueError("every caption needs at least one word, and padding (0) only after its last word")
    return lengths


class TextEncoder(nn.Module):
    """Caption token ids (N, L) -> text embedding (N, text_dim): the GRU's state after the caption's last word."""

    def __init__(self, embed_dim: int, text_dim: int):
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), embed_dim, padding_idx=PAD)
        self.gru = nn.GRU(embed_dim, text_dim, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = check_tokens(tokens)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.gru(packed)
        return h[-1]


class ConditioningAugmentation(nn.Module):
    """StackGAN's CA: text embedding -> (mu, logvar) of a diagonal Gaussian over a c_dim code."""

    def __init__(self, text_dim: int, c_dim: int):
        super().__init__()
        self.c_dim = c_dim
        self.fc = nn.Linear(text_dim, 2 * c_dim)

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.fc(embedding)
        return out[:, :self.c_dim], out[:, self.c_dim:]


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None) -> torch.Tensor:
    """``mu + exp(logvar / 2) * eps`` (``mu`` itself when eps is None)."""
    if eps is None:
        return mu
    if eps.shape != mu.shape:
        raise ValueError(f"eps must have the code's shape {tuple(mu.shape)}, got {tuple(eps.shape)}")
    return mu + (0.5 * logvar).exp() * eps


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) of each row, summed over the code: (N,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


class Text2ImgGenerator(nn.Module):
    """(z (N, nz), caption tokens (N, L), eps (N, c_dim) or None) -> image (N, C, R, R) in [-1, 1]."""

    def __init__(self, cfg: Text2ImgConfig):
        super().__init__()
        self.nz = cfg.nz
        self.c_dim = cfg.c_dim
        self.text = TextEncoder(cfg.embed_dim, cfg.text_dim)
        self.ca = ConditioningAugmentation(cfg.text_dim, cfg.c_dim)
        self.main = nn.Sequential(*generator_layers(cfg.dcgan(), cfg.nz + cfg.c_dim))
        dcgan_init(self.main)

    def condition(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the conditioning code of each caption."""
        return self.ca(self.text(tokens))

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.main(torch.cat([z.reshape(len(z), -1), c], 1)[:, :, None, None])

    def forward(self, z: torch.Tensor, tokens: torch.Tensor | None = None, eps: torch.Tensor | None = None
                ) -> torch.Tensor:
        if tokens is None:
            raise ValueError("the text-to-image generator needs captions: G(z, tokens), tokens from "
                             "ganbench.data.captions (or sample through Generator.sample)")
        check_tokens(tokens, len(z))
        mu, logvar = self.condition(tokens)
        return self.decode(z, reparameterise(mu, logvar, eps))


class Text2ImgDiscriminator(nn.Module):
    """(image (N, C, R, R), caption tokens (N, L)) -> one logit per pair (N,): real and matching, or not."""

    def __init__(self, cfg: Text2ImgConfig):
        super().__init__()
        dc = cfg.dcgan()
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, cfg.ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(dc.stages - 1):
            layers += [nn.Conv2d(cfg.ndf * mult, cfg.ndf * mult * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(cfg.ndf * mult * 2), nn.LeakyReLU(0.2, True)]
            mult *= 2
        self.image = nn.Sequential(*layers)  # -> (N, ndf * mult, 4, 4)
        self.text = TextEncoder(cfg.embed_dim, cfg.text_dim)
        self.compress = nn.Sequential(nn.Linear(cfg.text_dim, cfg.d_text_dim), nn.LeakyReLU(0.2, True))
        width = cfg.ndf * mult
        self.joint = nn.Sequential(nn.Conv2d(width + cfg.d_text_dim, width, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True), nn.Conv2d(width, 1, 4, 1, 0))
        dcgan_init(self)

    def embed_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, d_text_dim) compressed text embeddings, to pair with image features."""
        return self.compress(self.text(tokens))

    def logits(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Logits of (image features from ``self.image``, compressed text) pairs."""
        grid = text[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        return self.joint(torch.cat([features, grid], 1)).flatten()

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        check_tokens(tokens, len(x))
        return self.logits(self.image(x), self.embed_text(tokens))


def caption_inputs(cfg: Text2ImgConfig, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A latent per sample and a caption with a uniformly drawn digit and attribute levels, from ``generator``."""
    return torch.randn(batch, cfg.nz, generator=generator), random_captions(batch, generator)


def sample_with_captions(generator: Generator, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images, caption tokens) of ``generator.sample(n, seed)``: the captions it drew for them."""
    tokens = caption_inputs(generator.config, n, torch.Generator().manual_seed(seed))[1]
    return generator.sample(n, seed), tokens


TEXT2IMG_PAPER = ("Reed et al. 2016, arXiv:1605.05396 (GAN-CLS, matching-aware D) with the conditioning augmentation "
                  "of Zhang et al. 2017, arXiv:1612.03242 (StackGAN)")
TEXT2IMG_PRESETS = {
    # GAN-CLS's DCGAN networks at 64x64 RGB with StackGAN's sizes: z 100, CA code 128, 1024-d text embedding,
    # D's compressed text 128 (the Stage-I conditioning dimension)
    "paper": {"resolution": 64, "channels": 3, "nz": 100, "ngf": 64, "ndf": 64, "embed_dim": 256, "text_dim": 1024,
              "c_dim": 128, "d_text_dim": 128, "kl_weight": 2.0},
    # what a suite trains on 2 CPU cores: captioned MNIST at 32x32
    "tiny": {"resolution": 32, "channels": 1, "nz": 64, "ngf": 32, "ndf": 32, "embed_dim": 32, "text_dim": 64,
             "c_dim": 16, "d_text_dim": 32, "kl_weight": 2.0},
}


def real_captions(real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Caption token ids of a real batch in [-1, 1] with its class labels."""
    if labels is None:
        raise ValueError("text-to-image training captions each image from its class label: train on a dataset with "
                         "labels (e.g. mnist)")
    return build_captions(to_uint8(real.detach().cpu()), labels.cpu().numpy()).tokens.to(real.device)


def stackgan_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """StackGAN's ``KL_loss``: the KL divergence's summand averaged over batch and code elements."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).mean()


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def text2img_step(ctx) -> dict[str, float]:
    """One GAN-CLS + CA step on ``ctx`` (a ``ganbench.train.loop.StepContext``); returns the losses to log."""
    cfg: Text2ImgConfig = ctx.model_config
    G, D, opt_g, opt_d, g = ctx.G, ctx.D, ctx.opt_g, ctx.opt_d, ctx.generator
    real = ctx.real
    if real.dim() != 4 or tuple(real.shape[1:]) != (cfg.channels, cfg.resolution, cfg.resolution):
        raise ValueError(f"text-to-image config expects {cfg.channels}x{cfg.resolution}x{cfg.resolution} images, "
                         f"the dataset gives {tuple(real.shape[1:])}")
    right = real_captions(real, ctx.labels)
    wrong = right.roll(1, dims=0)
    n = len(real)
    z = torch.randn(n, cfg.nz, generator=g).to(real.device)
    eps = torch.randn(n, cfg.c_dim, generator=g).to(real.device)

    mu, logvar = G.condition(right)
    fake = G.decode(z, reparameterise(mu, logvar, eps))

    text_right, text_wrong = D.embed_text(right), D.embed_text(wrong)
    h_real = D.image(real)
    d_real = D.logits(h_real, text_right)
    d_wrong = D.logits(h_real, text_wrong)
    d_fake = D.logits(D.image(fake.detach()), text_right)
    loss_d = _bce(d_real, 1.0) + 0.5 * (_bce(d_wrong, 0.0) + _bce(d_fake, 0.0))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    adv = _bce(D(fake, right), 1.0)
    kl = stackgan_kl(mu, logvar)
    loss_g = adv + cfg.kl_weight * kl
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), "kl": kl_to_standard_normal(mu, logvar).mean().item(),
            "d_real": d_real.mean().item(), "d_wrong": d_wrong.mean().item(), "d_fake": d_fake.mean().item()}


__all__ = ["real_captions", "stackgan_kl", "text2img_step"]




TEXT2IMG = register_model(ModelEntry(
    "text2img", "text2img", "text_to_image", "images", Text2ImgConfig, Text2ImgGenerator, Text2ImgDiscriminator,
    "nonsaturating", 2e-4, 2e-4, (0.5, 0.999), TEXT2IMG_PAPER, presets=TEXT2IMG_PRESETS,
    generator_inputs=caption_inputs, train_step=text2img_step))

__all__ = ["ConditioningAugmentation", "TEXT2IMG", "TEXT2IMG_PRESETS", "Text2ImgConfig", "Text2ImgDiscriminator",
           "Text2ImgGenerator", "TextEncoder", "caption_inputs", "check_tokens", "kl_to_standard_normal",
           "reparameterise", "sample_with_captions"]
