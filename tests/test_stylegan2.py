"""StyleGAN2: parameter counts against the reference, resampling and demodulation closed forms, the R1 and
path-length oracles, style mixing, save/reload/sample identity and exact resume."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ganbench.data import load
from ganbench.train import TrainConfig, train
from ganbench.zoo import Generator, get_model, load_generator
from ganbench.zoo.stylegan2 import (STYLEGAN2, MinibatchStdLayer, StyleGAN2Config, StyleGAN2Discriminator,
                                    StyleGAN2Generator, downsample2d, lowpass_filter, mixed_styles, modulated_conv2d,
                                    path_lengths, r1_penalty, stylegan2_step, upsample2d)

# Counted by instantiating NVlabs/stylegan2-ada-pytorch (commit d72cc7d041b42ec8e806021a205ed9349f87c6a4)
# training/networks.py on CPU with the arguments train.py --cfg=cifar passes: Generator(z_dim=512, c_dim=0, w_dim=512,
# img_resolution=32, img_channels=3, mapping_kwargs={num_layers: 2}, synthesis_kwargs={channel_base: 32768,
# channel_max: 512, num_fp16_res: 4, conv_clamp: 256}) and Discriminator(c_dim=0, img_resolution=32, img_channels=3,
# architecture='orig', channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
# epilogue_kwargs={mbstd_group_size: 32}); sum(p.numel() for p in net.parameters()).
REF_G, REF_G_MAPPING, REF_G_SYNTHESIS = 19_947_539, 525_312, 19_422_227
REF_D_ORIG = 20_720_641
REF_D_RESNET = 21_507_073  # the same Discriminator with architecture='resnet' (the reference's default)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _micro(**overrides) -> StyleGAN2Config:
    base = dict(resolution=16, channels=1, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16,
                mbstd_group=4, r1_gamma=1.0)
    return StyleGAN2Config(**{**base, **overrides})


def test_paper_preset_parameter_counts_equal_the_reference():
    cfg = STYLEGAN2.make_config("paper")
    G = StyleGAN2Generator(cfg)
    assert (_count(G), _count(G.mapping), _count(G.synthesis)) == (REF_G, REF_G_MAPPING, REF_G_SYNTHESIS)
    assert G.num_ws == 8
    assert _count(StyleGAN2Discriminator(cfg)) == REF_D_ORIG
    assert _count(StyleGAN2Discriminator(STYLEGAN2.make_config("paper", d_architecture="resnet"))) == REF_D_RESNET


def test_upsampling_is_bilinear_inside_and_downsampling_is_the_binomial_filter():
    f = lowpass_filter()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    up = upsample2d(x, f.double())
    # [1, 3, 3, 1] upsampling = bilinear interpolation (half-pixel centres) away from the zero-padded border
    bil = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[..., 1:-1, 1:-1], bil[..., 1:-1, 1:-1])
    down = downsample2d(x, f.double())
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8
    xp = F.pad(x, [1, 1, 1, 1])
    expect = torch.zeros(2, 3, 3, 3, dtype=torch.float64)
    for i in range(3):
        for j in range(3):
            expect[..., i, j] = torch.einsum("a,b,ncab->nc", taps, taps, xp[..., 2 * i:2 * i + 4, 2 * j:2 * j + 4])
    torch.testing.assert_close(down, expect)


def test_demodulation_gives_unit_output_variance_for_unit_variance_input():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(8, 16, 3, 3, generator=g)
    styles = torch.rand(32, 16, generator=g) * 3 + 0.1
    x = torch.randn(32, 16, 34, 34, generator=g)
    f = lowpass_filter()
    y = modulated_conv2d(x, weight, styles, f)[..., 1:-1, 1:-1]  # interior: no zero padding in the window
    ws = weight[None] * styles[:, None, :, None, None]  # (N, O, I, 3, 3)
    energy = ws.square().sum(dim=[2, 3, 4])  # closed form: Var(y_no) = sum of squared effective weights
    expected = energy / (energy + 1e-8)  # demodulated: 1 up to the epsilon
    var = y.square().mean(dim=[2, 3])  # mean-zero input: E[y^2] = Var(y)
    assert torch.allclose(var.mean(0), expected.mean(0), rtol=0.05)
    raw = modulated_conv2d(x, weight, styles, f, demodulate=False)[..., 1:-1, 1:-1]
    raw_var = raw.square().mean(dim=[2, 3])
    assert torch.allclose(raw_var.mean(0) / energy.mean(0), torch.ones(8), rtol=0.05)
    assert raw_var.mean() > 10  # without demodulation the variance is the (large) weight energy


def test_r1_penalty_equals_the_closed_form_gradient_of_a_quadratic_discriminator():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 2, 4, 4, generator=g), torch.randn(1, 2, 4, 4, generator=g)

    def D(x):  # D(x) = <a, x> + <b, x^2> / 2, so grad_x D = a + b x
        return (a * x).sum(dim=[1, 2, 3]) + 0.5 * (b * x * x).sum(dim=[1, 2, 3])

    x = torch.randn(5, 2, 4, 4, generator=g)
    penalty, logits = r1_penalty(D, x)
    torch.testing.assert_close(penalty, (a + b * x).square().sum(dim=[1, 2, 3]))
    torch.testing.assert_close(logits, D(x))


def test_r1_penalty_matches_finite_differences_on_a_small_network():
    torch.manual_seed(2)
    D = StyleGAN2Discriminator(_micro(resolution=8, channels=1, mbstd_group=1)).double()
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    penalty, _ = r1_penalty(D, x, create_graph=False)
    h, grad = 1e-6, torch.zeros(64, dtype=torch.float64)
    for i in range(64):
        e = torch.zeros(64, dtype=torch.float64)
        e[i] = h
        grad[i] = (D(x + e.view(1, 1, 8, 8)) - D(x - e.view(1, 1, 8, 8))).item() / (2 * h)
    assert penalty.item() == pytest.approx(grad.square().sum().item(), rel=1e-6)


def test_path_length_of_a_linear_synthesis_is_its_closed_form():
    g = torch.Generator().manual_seed(3)
    M = torch.randn(4, 6, 2 * 5 * 5, generator=g)  # img[n] = sum_l ws[n, l] @ M[l]
    ws = torch.randn(3, 4, 6, generator=g, requires_grad=True)
    img = torch.einsum("nld,ldp->np", ws, M).reshape(3, 2, 5, 5)
    noise = torch.randn(3, 2, 5, 5, generator=g)
    lengths = path_lengths(img, ws, noise)
    jt_y = torch.einsum("ldp,np->nld", M, noise.reshape(3, -1))  # J^T y per style
    torch.testing.assert_close(lengths, jt_y.square().sum(2).mean(1).sqrt())


def test_style_mixing_takes_later_styles_from_a_second_latent():
    torch.manual_seed(4)
    G = StyleGAN2Generator(_micro()).eval()
    z = torch.randn(3, 16)
    never = mixed_styles(G, z, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(never, G.mapping(z))
    gen = torch.Generator().manual_seed(5)
    always = mixed_styles(G, z, 1.0, gen)
    replay = torch.Generator().manual_seed(5)
    cutoff = int(torch.randint(1, G.num_ws, (), generator=replay))
    torch.rand((), generator=replay)
    second = G.mapping(torch.randn(z.shape, generator=replay))
    torch.testing.assert_close(always[:, :cutoff], G.mapping(z)[:, :cutoff])
    torch.testing.assert_close(always[:, cutoff:], second[:, cutoff:])
    assert not torch.allclose(always[:, -1], G.mapping(z)[:, -1])


def test_minibatch_std_appends_the_group_standard_deviation_and_rejects_ragged_batches():
    x = torch.randn(8, 4, 2, 2)
    y = MinibatchStdLayer(group_size=4)(x)
    # sample n belongs to group n % 2 (the reference's reshape(G, -1, ...)); its feature is that group's mean std
    for n in range(8):
        members = x[n % 2::2]
        expected = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert y[n, 4].allclose(expected.expand(2, 2))
    with pytest.raises(ValueError, match="multiple of the group size"):
        MinibatchStdLayer(group_size=4)(torch.randn(6, 4, 2, 2))


def test_bad_configs_name_the_field():
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Config(resolution=24)
    with pytest.raises(ValueError, match="d_architecture"):
        StyleGAN2Config(d_architecture="skip")
    with pytest.raises(ValueError, match=r"latents must have shape \(N, 16\)"):
        StyleGAN2Generator(_micro())(torch.randn(2, 8))


def test_saved_generator_reloads_and_samples_identical_images(tmp_path):
    torch.manual_seed(5)
    cfg = STYLEGAN2.make_config("tiny")
    net = StyleGAN2Generator(cfg)
    with torch.no_grad():  # non-zero noise strengths, so the constant-noise buffers change the images
        for name, p in net.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    gen = Generator(STYLEGAN2, cfg, net)
    sha = gen.save(tmp_path / "g.safetensors")
    loaded = load_generator(tmp_path / "g.safetensors")
    assert loaded.weights_sha256 == sha and loaded.entry.name == "stylegan2"
    a = gen.sample(40, seed=3)
    assert a.dtype == torch.uint8 and a.shape == (40, 1, 32, 32)
    assert torch.equal(a, loaded.sample(40, seed=3))
    assert torch.equal(a, loaded.sample(40, seed=3, batch_size=7))
    assert not torch.equal(a, loaded.sample(40, seed=4))
    torch.manual_seed(6)  # planted defect: the same architecture with other weights draws other images
    assert not torch.equal(a, Generator(STYLEGAN2, cfg, StyleGAN2Generator(cfg)).sample(40, seed=3))


def test_a_step_applies_lazy_regularisation_hyperparameters_and_keeps_path_length_mean_in_a_buffer(step_context):
    torch.manual_seed(7)
    cfg = _micro(pl_interval=4, r1_interval=16)
    G, D = StyleGAN2Generator(cfg), StyleGAN2Discriminator(cfg)
    opt_g = torch.optim.Adam(G.parameters(), lr=STYLEGAN2.lr_g, betas=STYLEGAN2.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=STYLEGAN2.lr_d, betas=STYLEGAN2.betas)
    real = torch.rand(8, 1, 16, 16) * 2 - 1
    assert STYLEGAN2.step_function() is stylegan2_step
    row = STYLEGAN2.train_step(step_context(G, D, opt_g, opt_d, real, None, 0, torch.Generator().manual_seed(0), cfg))
    assert {"loss_g", "loss_d", "loss_pl", "r1_penalty"} <= set(row)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.0025 * 4 / 5)
    assert opt_g.param_groups[0]["betas"][1] == pytest.approx(0.99 ** (4 / 5))
    assert opt_d.param_groups[0]["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert "pl_mean" in dict(G.named_buffers()) and float(G.pl_mean) == row["pl_mean"] > 0
    row = STYLEGAN2.train_step(step_context(G, D, opt_g, opt_d, real, None, 1, torch.Generator().manual_seed(1), cfg))
    assert "loss_pl" not in row and "r1_penalty" not in row  # lazy: only every 4th / 16th step


def _resume_matches_uninterrupted(tmp_path, split, config: dict, steps: int, stop: int, batch: int):
    entry = get_model("stylegan2")
    tc = dict(batch_size=batch, ema_decay=0.9, checkpoint_every=stop)
    whole = train(entry, split, tmp_path / "whole", TrainConfig(steps=steps, **tc), config, progress=False)
    train(entry, split, tmp_path / "parts", TrainConfig(steps=stop, **tc), config, progress=False)
    parts = train(entry, split, tmp_path / "parts", TrainConfig(steps=steps, **tc), config, resume=True,
                  progress=False)
    assert parts.resumed_from == stop
    for name in ("generator.safetensors", "checkpoint.safetensors"):
        a, b = load_file(str(tmp_path / "whole" / name)), load_file(str(tmp_path / "parts" / name))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: {k} differs after resume"
    assert (tmp_path / "whole" / "losses.csv").read_text() == (tmp_path / "parts" / "losses.csv").read_text()
    assert float(load_file(str(tmp_path / "whole" / "checkpoint.safetensors"))["G.pl_mean"]) > 0
    return whole


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    split = load("mnist", "train", 16)
    # R1 at steps 0 and 4, path length at 0, 2, 4 and 6: the resume at step 5 falls between regularisation steps
    config = dataclasses.asdict(_micro(r1_interval=4, pl_interval=2))
    _resume_matches_uninterrupted(tmp_path, split, config, steps=8, stop=5, batch=8)


@pytest.mark.slow
def test_tiny_preset_resumes_exactly_after_60_steps_on_mnist(tmp_path):
    split = load("mnist", "train", 32)
    _resume_matches_uninterrupted(tmp_path, split, STYLEGAN2.presets["tiny"], steps=60, stop=30, batch=32)


def test_untrained_images_are_finite_and_batch_size_independent():
    torch.manual_seed(8)
    gen = Generator(STYLEGAN2, _micro(), StyleGAN2Generator(_micro()))
    x = gen.sample(10, seed=0)
    assert x.shape == (10, 1, 16, 16) and torch.equal(x, gen.sample(10, seed=0, batch_size=3))
    assert math.isfinite(float(StyleGAN2Discriminator(_micro())(x[:8].float() / 127.5 - 1).detach().sum()))
