"""ProGAN: equalised learning rate, pixel norm, fade-in, the growth schedule, the WGAN-GP penalty, parameter counts
of the paper preset against the reference's networks, sampling at the reached stage and exact resume."""

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ganbench.data import load
from ganbench.train import TrainConfig, train
from ganbench.zoo import Generator, get_model, load_generator
from ganbench.zoo.progan import (PROGAN, EqualizedConv2d, EqualizedLinear, ProGANConfig, ProGANDiscriminator,
                                 ProGANGenerator, gradient_penalty, minibatch_stddev, pixel_norm, progan_stage,
                                 progan_step, reals_at_stage)

# tkarras/progressive_growing_of_gans (commit 2504c3f3cb98ca58751610ad61fa1097313152bd) networks.py, G_paper and
# D_paper with their defaults (fmap_base 8192, fmap_decay 1, fmap_max 512, latent_size nf(0) = 512, mbstd group 4)
# for config.py's -cifar10 dataset (resolution 32, num_channels 3, label_size 0). Counted by running those two
# functions against a stand-in for the `tf` module that records each tf.get_variable(name, shape) (TensorFlow 1 is
# not installable here) and summing the trainable shapes; by hand, with c = 512:
#   G: Dense 512 x 16c + c (one bias per channel after the reshape), 4x4 Conv 9c^2 + c, three resolutions of two
#      3x3 convs 6 (9c^2 + c), four ToRGB 4 (3c + 3)                                             = 20,719,628
#   D: four FromRGB 4 (3c + c), three resolutions of two 3x3 convs 6 (9c^2 + c), 4x4 Conv 9c(c + 1) + c,
#      Dense0 16c^2 + c, Dense1 c + 1                                                              = 20,726,785
REF_G, REF_D = 20_719_628, 20_726_785


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _micro(**overrides) -> ProGANConfig:
    base = dict(resolution=16, channels=1, nz=8, fmap_base=32, fmap_max=8, mbstd_group=2, stable_steps=3,
                fade_steps=3)
    return ProGANConfig(**{**base, **overrides})


def test_paper_preset_parameter_counts_equal_the_reference():
    cfg = PROGAN.make_config("paper")
    assert [cfg.nf(s) for s in range(5)] == [512] * 5
    assert _count(ProGANGenerator(cfg)) == REF_G
    assert _count(ProGANDiscriminator(cfg)) == REF_D


def test_equalised_layers_equal_plain_layers_with_he_scaled_weights():
    torch.manual_seed(0)
    conv = EqualizedConv2d(5, 7, 3)
    with torch.no_grad():
        conv.bias.normal_()
    plain = torch.nn.Conv2d(5, 7, 3, padding=1)
    with torch.no_grad():
        plain.weight.copy_(conv.weight * math.sqrt(2) / math.sqrt(5 * 3 * 3))  # He's constant sqrt(2 / fan_in)
        plain.bias.copy_(conv.bias)
    x = torch.randn(2, 5, 6, 6)
    torch.testing.assert_close(conv(x), plain(x))
    # the fused resampling convolutions equal their unfused definitions
    torch.testing.assert_close(conv(x, down=True), F.avg_pool2d(plain(x) - plain.bias.view(1, -1, 1, 1), 2)
                               + plain.bias.view(1, -1, 1, 1))
    torch.testing.assert_close(conv(x, up=True), plain(F.interpolate(x, scale_factor=2, mode="nearest")))
    lin = EqualizedLinear(6, 4, gain=1.0)
    ref = torch.nn.Linear(6, 4)
    with torch.no_grad():
        ref.weight.copy_(lin.weight / math.sqrt(6))
        ref.bias.copy_(lin.bias)
    v = torch.randn(3, 6)
    torch.testing.assert_close(lin(v), ref(v))
    # the stored weights are N(0, 1): the scale is applied at run time, not at initialisation
    assert abs(float(EqualizedConv2d(64, 64, 3).weight.detach().std()) - 1.0) < 0.02


def test_pixel_norm_divides_each_pixel_by_its_feature_rms():
    x = torch.zeros(1, 2, 1, 2)
    x[0, :, 0, 0] = torch.tensor([3.0, 4.0])
    x[0, :, 0, 1] = torch.tensor([1.0, -1.0])
    y = pixel_norm(x)
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([3.0, 4.0]) / math.sqrt(12.5))
    torch.testing.assert_close(y[0, :, 0, 1], torch.tensor([1.0, -1.0]))
    z = torch.randn(4, 9, 3, 3) * 7
    torch.testing.assert_close(pixel_norm(z).square().mean(dim=1), torch.ones(4, 3, 3), rtol=1e-5, atol=1e-5)


def test_minibatch_stddev_matches_the_group_statistic():
    x = torch.randn(6, 3, 2, 2)
    y = minibatch_stddev(x, 3)
    assert y.shape == (6, 4, 2, 2)
    for n in range(6):  # sample n is in group n % 2 (the reference's reshape(G, -1, ...))
        members = x[n % 2::2]
        assert torch.allclose(y[n, 3], ((members.var(0, unbiased=False) + 1e-8).sqrt().mean()).expand(2, 2))
    with pytest.raises(ValueError, match="multiple of the group size"):
        minibatch_stddev(torch.randn(5, 3, 2, 2), 4)


def test_schedule_is_the_reference_training_schedule_in_steps():
    cfg = _micro(resolution=32, stable_steps=100, fade_steps=50)
    expect = {0: (0, 1.0), 99: (0, 1.0), 100: (1, 0.0), 125: (1, 0.5), 149: (1, 49 / 50), 150: (1, 1.0),
              249: (1, 1.0), 275: (2, 0.5), 300: (2, 1.0), 425: (3, 0.5), 450: (3, 1.0), 10_000: (3, 1.0)}
    for step, stage in expect.items():
        assert progan_stage(cfg, step) == pytest.approx(stage), step
    # the reference's lod at cur_nimg = step (train.py TrainingSchedule), as (depth, alpha) = (L - floor(lod), ...)
    for step in range(0, 500, 7):
        phase, t = divmod(step, 150)
        lod = max(3 - phase - max(t - 100, 0) / 50, 0.0)
        depth, alpha = progan_stage(cfg, step)
        assert depth - (1 - alpha) == pytest.approx(3 - lod), step  # same blend of resolutions
    assert progan_stage(_micro(resolution=32, start_resolution=8, stable_steps=10, fade_steps=10), 0) == (1, 1.0)


def test_generator_fade_in_ends_are_the_upsampled_lower_resolution_and_the_new_block():
    torch.manual_seed(1)
    cfg = _micro()
    G = ProGANGenerator(cfg)
    z = torch.randn(4, cfg.nz)
    for depth in (1, 2):
        low = G(z, depth - 1, 1.0, full_size=False)
        new = G(z, depth, 1.0, full_size=False)
        torch.testing.assert_close(G(z, depth, 0.0, full_size=False), F.interpolate(low, scale_factor=2))
        blend = 0.7 * F.interpolate(low, scale_factor=2) + 0.3 * new
        torch.testing.assert_close(G(z, depth, 0.3, full_size=False), blend)
    # alpha = 1 is the new block alone: the blocks by hand
    x = G.blocks[0](z)
    for d in (1, 2):
        x = G.blocks[d](x)
    torch.testing.assert_close(G(z, 2, 1.0, full_size=False), G.torgb[2](x))


def test_discriminator_fade_in_ends_are_the_pooled_lower_resolution_and_the_new_block():
    torch.manual_seed(2)
    cfg = _micro()
    D = ProGANDiscriminator(cfg)
    x = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(D(x, 2, 0.0), D(F.avg_pool2d(x, 2), 1, 1.0))
    torch.testing.assert_close(D(x, 2, 1.0), D(x))  # by default: the stable network of the input's resolution
    with pytest.raises(ValueError, match=r"expects images \(N, 1, 8, 8\)"):
        D(x, 1, 1.0)


def test_reals_are_pooled_to_the_stage_and_faded_like_the_reference():
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(reals_at_stage(x, 1, 1.0), F.avg_pool2d(x, 2))
    eight = F.avg_pool2d(x, 2)
    blur = F.interpolate(F.avg_pool2d(eight, 2), scale_factor=2)
    torch.testing.assert_close(reals_at_stage(x, 1, 0.25), 0.75 * blur + 0.25 * eight)
    torch.testing.assert_close(reals_at_stage(x, 2, 1.0), x)


def test_gradient_penalty_equals_the_closed_form_of_a_quadratic_critic():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(1, 2, 3, 3, generator=g), torch.randn(1, 2, 3, 3, generator=g)

    def critic(x):  # grad_x = a + b x
        return (a * x).sum(dim=[1, 2, 3]) + 0.5 * (b * x * x).sum(dim=[1, 2, 3])

    real, fake = torch.randn(4, 2, 3, 3, generator=g), torch.randn(4, 2, 3, 3, generator=g)
    mix = torch.tensor([0.0, 0.25, 0.5, 1.0])
    x_hat = real + (fake - real) * mix.view(-1, 1, 1, 1)
    norms = (a + b * x_hat).flatten(1).norm(dim=1)
    torch.testing.assert_close(gradient_penalty(critic, real, fake, mix), (norms - 1).square())
    torch.testing.assert_close(gradient_penalty(critic, real, fake, mix, target=2.0), (norms - 2).square())
    with pytest.raises(ValueError, match="mixing factors"):
        gradient_penalty(critic, real, fake, mix[:3])


def test_a_step_trains_the_stage_of_its_step_and_records_it(step_context):
    torch.manual_seed(4)
    cfg = _micro()
    G, D = ProGANGenerator(cfg), ProGANDiscriminator(cfg)
    opt_g = torch.optim.Adam(G.parameters(), lr=PROGAN.lr_g, betas=PROGAN.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=PROGAN.lr_d, betas=PROGAN.betas)
    real = torch.rand(4, 1, 16, 16) * 2 - 1
    before = {k: v.clone() for k, v in G.state_dict().items()}
    assert PROGAN.step_function() is progan_step
    row = PROGAN.train_step(step_context(G, D, opt_g, opt_d, real, None, 4, torch.Generator().manual_seed(0), cfg))
    assert (row["resolution"], row["alpha"]) == (8, pytest.approx(1 / 3))
    assert int(G.schedule_step) == 5 and G.stage() == progan_stage(cfg, 5)
    after = G.state_dict()
    assert not torch.equal(before["blocks.1.conv0.weight"], after["blocks.1.conv0.weight"])  # 8x8 block trains
    assert torch.equal(before["blocks.2.conv0.weight"], after["blocks.2.conv0.weight"])  # 16x16 not yet


def test_sampling_uses_the_reached_stage_upsampled_to_the_configured_resolution(tmp_path):
    torch.manual_seed(5)
    cfg = _micro()
    net = ProGANGenerator(cfg)
    full = Generator(PROGAN, cfg, net).sample(6, seed=1)
    assert full.shape == (6, 1, 16, 16)
    with torch.no_grad():
        net.schedule_step.fill_(1)  # still at 4x4
    gen = Generator(PROGAN, cfg, net)
    early = gen.sample(6, seed=1)
    assert early.shape == (6, 1, 16, 16)
    assert torch.equal(early, early[..., ::4, ::4].repeat_interleave(4, -1).repeat_interleave(4, -2))
    gen.save(tmp_path / "g.safetensors")
    loaded = load_generator(tmp_path / "g.safetensors")
    assert int(loaded.net.schedule_step) == 1 and torch.equal(loaded.sample(6, seed=1), early)


def test_resumed_training_equals_uninterrupted_training_across_growth(tmp_path):
    # 3 + 3 steps per phase at 16x16: 4x4, fade to 8, 8x8, fade to 16, then 16x16 from step 12; the resume at
    # step 10 is in the middle of a fade, and Adam's state is reset at steps 3, 6, 9 and 12
    split = load("mnist", "train", 16)
    import dataclasses

    config = dataclasses.asdict(_micro(fmap_base=64, fmap_max=16, nz=16))
    entry = get_model("progan")
    tc = dict(batch_size=8, ema_decay=0.9, checkpoint_every=10)
    train(entry, split, tmp_path / "whole", TrainConfig(steps=14, **tc), config, progress=False)
    train(entry, split, tmp_path / "parts", TrainConfig(steps=10, **tc), config, progress=False)
    out = train(entry, split, tmp_path / "parts", TrainConfig(steps=14, **tc), config, resume=True, progress=False)
    assert out.resumed_from == 10
    for name in ("generator.safetensors", "checkpoint.safetensors"):
        a, b = load_file(str(tmp_path / "whole" / name)), load_file(str(tmp_path / "parts" / name))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}: {k} differs after resume"
    assert int(load_file(str(tmp_path / "whole" / "generator.safetensors"))["schedule_step"]) == 14
    assert (tmp_path / "whole" / "losses.csv").read_text() == (tmp_path / "parts" / "losses.csv").read_text()


def test_bad_configs_name_the_field():
    with pytest.raises(ValueError, match="resolution must be a power of two"):
        ProGANConfig(resolution=48)
    with pytest.raises(ValueError, match="start_resolution"):
        ProGANConfig(resolution=16, start_resolution=32)
    with pytest.raises(ValueError, match="fade_steps"):
        ProGANConfig(fade_steps=0)
    with pytest.raises(ValueError, match=r"latents must have shape \(N, 8\)"):
        ProGANGenerator(_micro())(torch.randn(2, 3))
