"""Pix2Pix, CycleGAN and DiscoGAN networks against their reference implementations.

The reference numbers below were obtained by instantiating the references' own modules (outside this repository):
- junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` (commit 78913853ab4a4f5eba717af8433809300c99f0bb),
  ``define_G`` / ``define_D`` with the arguments quoted at each number;
- SKTBrain/DiscoGAN ``discogan/model.py`` (commit f044178), ``Generator()``, ``Generator(extra_layers=True)``,
  ``Discriminator()``.
The state-dict signatures are sha256 of the sorted "key:shape" lines of the reference module's state dict
(instance-norm running buffers left out: the reference's current ``get_norm_layer`` no longer has them), so a
match means the reference's checkpoints load into ours key for key.
"""

import hashlib
import importlib.metadata

import pytest
import torch
from safetensors import safe_open
from torch import nn

from ganbench.zoo import cyclegan, discogan, get_model, load_generator, pix2pix
from ganbench.zoo.cyclegan import CycleGANConfig, CycleGANDiscriminator, CycleGANGenerator
from ganbench.zoo.discogan import DiscoGANConfig, DiscoGANDiscriminator, DiscoGANGenerator
from ganbench.zoo.pix2pix import Pix2PixConfig, Pix2PixDiscriminator, UNetGenerator
from ganbench.zoo.translator import TranslationPair, Translator


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def signature(m: nn.Module) -> tuple[int, str]:
    items = sorted(f"{k}:{tuple(v.shape)}" for k, v in m.state_dict().items())
    return len(items), hashlib.sha256("\n".join(items).encode()).hexdigest()


# (our module, reference parameter count, reference state-dict signature, where the numbers come from)
PAPER_NETWORKS = [
    pytest.param(lambda: UNetGenerator(Pix2PixConfig(**pix2pix.PRESETS["paper"])), 54_413_955,
                 (82, "dd9cbd7aafbe23fedb3c21435422513a9a77296e61162a83e8e74704c8173094"),
                 id="unet_256: define_G(3, 3, 64, 'unet_256', 'batch', use_dropout=True)"),
    pytest.param(lambda: UNetGenerator(Pix2PixConfig(resolution=128)), 41_828_995,
                 (70, "e304928a3853d77b81ee416591eef04afb179de7bdcd58e28f8225685e744b8e"),
                 id="unet_128: define_G(3, 3, 64, 'unet_128', 'batch', use_dropout=True)"),
    pytest.param(lambda: Pix2PixDiscriminator(Pix2PixConfig(**pix2pix.PRESETS["paper"])), 2_768_705,
                 (22, "ac7cd8cc928bd624cbd1f9aa05ffd2016e9297691daa5601c1a768034cce72c4"),
                 id="pix2pix PatchGAN: define_D(6, 64, 'basic', norm='batch')"),
    pytest.param(lambda: CycleGANGenerator(CycleGANConfig(**cyclegan.PRESETS["paper"])), 11_378_179,
                 (48, "8824ba663c332cead7ae449b6c8dcb463c7a7590f753d7db6d034584537a0d64"),
                 id="resnet_9blocks: define_G(3, 3, 64, 'resnet_9blocks', 'instance')"),
    pytest.param(lambda: CycleGANGenerator(CycleGANConfig(resolution=128)), 7_837_699,
                 (36, "89e29b5cf979a4ae8c8ab4d783afadc9603f5887b1b2fcd18751d937506ed85e"),
                 id="resnet_6blocks (128 px): define_G(3, 3, 64, 'resnet_6blocks', 'instance')"),
    pytest.param(lambda: CycleGANDiscriminator(CycleGANConfig(**cyclegan.PRESETS["paper"])), 2_764_737,
                 (10, "b92cdd33654c48d284e477251f4daedf9a418a2d459ee80d90d14cc0e5da9cb2"),
                 id="cyclegan PatchGAN: define_D(3, 64, 'basic', norm='instance')"),
    pytest.param(lambda: DiscoGANGenerator(DiscoGANConfig(**discogan.PRESETS["paper"])), 5_513_856,
                 (38, "26bc76b5c29f687c5046a6dfb72a4189ad4a42834c7f627c8aa4cdcc2ffeaaf1"),
                 id="discogan G: model.Generator()"),
    pytest.param(lambda: DiscoGANGenerator(DiscoGANConfig(bottleneck=100)), 7_153_480,
                 (50, "b6c80f79537277b5e8b27a1bdf2b6558c758bbe86d3c09c2f0dfe4bdff9daa19"),
                 id="discogan G extra_layers: model.Generator(extra_layers=True)"),
    # Also the DCGAN tutorial's 64x64 D count (tests/test_dcgan.py): DiscoGAN's D is DCGAN's.
    pytest.param(lambda: DiscoGANDiscriminator(DiscoGANConfig(**discogan.PRESETS["paper"])), 2_765_568,
                 (20, "48cf3e35f387db543c6c7dc07517d2ae10baa9dbd5922fbd677ea865237edd81"),
                 id="discogan D: model.Discriminator()"),
]


@pytest.mark.parametrize("build,params,sig", PAPER_NETWORKS)
def test_paper_networks_match_the_reference_parameter_count_and_state_dict_layout(build, params, sig):
    with torch.device("meta"):  # shapes only: no memory, no initialisation work
        net = build()
    assert n_params(net) == params
    assert signature(net) == sig


def test_vintagify_generator_layout_adds_only_affine_instance_norm_parameters():
    # vintagify's ResnetGenerator() has 11,388,675 parameters: resnet_9blocks' 11,378,179 plus a scale and a shift
    # for each of the 5,248 instance-normalised channels (64+128+256 + 9*2*256 + 128+64).
    with torch.device("meta"):
        net = CycleGANGenerator(CycleGANConfig(**cyclegan.PRESETS["vintage256"]))
    assert n_params(net) == 11_388_675 == 11_378_179 + 2 * 5_248


def test_patchgan_sees_70x70_patches_and_returns_30x30_logits_at_256():
    # The width does not change the receptive field; eval mode makes batch norm act per pixel.
    D = Pix2PixDiscriminator(Pix2PixConfig(**{**pix2pix.PRESETS["paper"], "ndf": 4})).eval()
    a = torch.randn(1, 3, 256, 256, requires_grad=True)
    out = D(a, torch.randn(1, 3, 256, 256))
    assert out.shape == (1, 1, 30, 30)
    out[0, 0, 15, 15].backward()
    rows = a.grad.abs().sum((0, 1, 3)).nonzero().flatten()
    cols = a.grad.abs().sum((0, 1, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70  # the paper's 70x70 PatchGAN


def test_unet_has_skips_decoder_dropout_and_keeps_the_size():
    with torch.device("meta"):
        G = UNetGenerator(Pix2PixConfig(**pix2pix.PRESETS["paper"]))
    assert sum(isinstance(m, nn.Dropout) for m in G.modules()) == 3  # the 3 innermost-but-one decoder blocks
    narrow = UNetGenerator(Pix2PixConfig(**{**pix2pix.PRESETS["paper"], "ngf": 4}))
    assert narrow(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)
    tiny = UNetGenerator(Pix2PixConfig(**pix2pix.PRESETS["tiny"]))
    assert not any(isinstance(m, nn.Dropout) for m in tiny.modules())  # 5 levels: no dropout block, as in the reference
    x = torch.randn(2, 1, 32, 32)
    assert tiny(x).shape == (2, 1, 32, 32)
    # A skip connection: the outermost decoder sees the first encoder level's features directly, so the output
    # depends on the input even with every inner level's weights zeroed.
    inner = tiny.model.model[1]
    with torch.no_grad():
        for p in inner.model[3].parameters():  # the levels below the first
            p.zero_()
    tiny.eval()
    assert not torch.allclose(tiny(x), tiny(torch.zeros_like(x)))


def test_unet_skip_carries_the_activated_encoder_features():
    # The reference's in-place LeakyReLU makes each skip carry LeakyReLU(x); check the concat's first half.
    block = UNetGenerator(Pix2PixConfig(**pix2pix.PRESETS["tiny"])).model.model[1].eval()
    x = torch.randn(2, 16, 16, 16)
    assert torch.equal(block(x)[:, :16], nn.functional.leaky_relu(x, 0.2))


def test_resnet_generator_uses_reflection_padding_instance_norm_and_the_paper_block_rule():
    for res, blocks in ((128, 6), (256, 9)):
        with torch.device("meta"):
            G = CycleGANGenerator(CycleGANConfig(resolution=res))
        assert sum(isinstance(m, cyclegan.ResnetBlock) for m in G.modules()) == blocks
    G = CycleGANGenerator(CycleGANConfig(resolution=64, ngf=8))
    assert isinstance(G.model[0], nn.ReflectionPad2d) and G.model[0].padding == (3, 3, 3, 3)
    norms = [m for m in G.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and all(not m.affine and not m.track_running_stats for m in norms)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ZeroPad2d)) for m in G.modules())
    assert G(torch.randn(2, 3, 64, 96)).shape == (2, 3, 64, 96)  # fully convolutional, any multiple of 4
    D = CycleGANDiscriminator(CycleGANConfig(resolution=64, ndf=8))
    assert D(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)


def test_discogan_is_an_encoder_decoder_without_skips_in_the_reference_pixel_range():
    cfg = DiscoGANConfig(**{**discogan.PRESETS["paper"], "ngf": 8, "ndf": 8})  # the paper's layers, narrower
    G, D = DiscoGANGenerator(cfg), DiscoGANDiscriminator(cfg)
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    y = G(x)
    assert y.shape == (3, 3, 64, 64) and y.min() >= -1 and y.max() <= 1
    # No skips: zeroing the 4x4 bottleneck activations (the last encoder LeakyReLU's output) fixes the output.
    hook = G.main[10].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    G.eval()
    assert torch.equal(G(x), G(torch.zeros_like(x)))
    hook.remove()
    logits, feats = D(x)
    assert logits.shape == (3,) and [f.shape[1:] for f in feats] == [(16, 16, 16), (32, 8, 8), (64, 4, 4)]
    # The network works on the reference's [0, 1] pixels: ganbench's -1 enters as 0 and a Sigmoid output of 1
    # leaves as 1.
    seen = []
    hook = G.main[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    G(-torch.ones(1, 3, 64, 64))
    hook.remove()
    assert torch.equal(seen[0], torch.zeros(1, 3, 64, 64))
    hook = G.main[-1].register_forward_hook(lambda m, i, o: torch.ones_like(o))
    assert torch.equal(G(x), torch.ones_like(x))
    hook.remove()
    tiny = DiscoGANConfig(**discogan.PRESETS["tiny"])
    assert DiscoGANGenerator(tiny)(torch.zeros(2, 1, 32, 32)).shape == (2, 1, 32, 32)
    assert DiscoGANDiscriminator(tiny)(torch.zeros(2, 1, 32, 32))[0].shape == (2,)
    with pytest.raises(ValueError, match="32x32"):
        DiscoGANDiscriminator(tiny)(torch.zeros(2, 1, 64, 64))


def test_reversed_configs_swap_the_domains():
    cfg = CycleGANConfig(resolution=32, in_channels=1, out_channels=3, ngf=4, ndf=4, lambda_identity=0)
    assert CycleGANGenerator(cfg.reversed())(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    assert CycleGANDiscriminator(cfg.reversed())(torch.zeros(1, 1, 32, 32)).shape[1] == 1
    p = Pix2PixConfig(resolution=32, in_channels=1, out_channels=3, ngf=4, ndf=4)
    assert Pix2PixDiscriminator(p)(torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 32, 32)).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("make,match", [
    (lambda: Pix2PixConfig(resolution=48), "power of two >= 32"),
    (lambda: Pix2PixConfig(norm="layer"), "norm must be one of"),
    (lambda: CycleGANConfig(resolution=30), "multiple of 4"),
    (lambda: CycleGANConfig(in_channels=1, out_channels=3), "identity loss"),
    (lambda: DiscoGANConfig(resolution=8), "power of two >= 16"),
    (lambda: DiscoGANConfig(update_interval=1), "update_interval"),
])
def test_bad_configs_are_rejected_with_the_field_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def _oracle(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The network on [-1, 1] floats, rounded to uint8."""
    with torch.no_grad():
        return ((net.eval()(images.float() / 127.5 - 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def test_translator_round_trips_through_its_file_and_checks_its_input(tmp_path):
    torch.manual_seed(0)
    entry = get_model("cyclegan")
    cfg = CycleGANConfig(**cyclegan.PRESETS["tiny"])
    net = entry.build_generator(cfg)
    assert isinstance(net, TranslationPair)  # a two-way method's generator file holds both directions
    tr = Translator(entry, cfg, net)
    images = torch.randint(0, 256, (5, 1, 32, 32), dtype=torch.uint8)
    out = tr.translate(images, batch_size=2)
    assert out.dtype == torch.uint8 and out.shape == (5, 1, 32, 32)
    assert torch.equal(out, _oracle(net.ab, images))
    back_b = tr.reverse().translate(out)  # B -> A through the other generator
    assert torch.equal(back_b, _oracle(net.ba, out)) and not torch.equal(back_b, _oracle(net.ab, out))
    sha = tr.save(tmp_path / "g.safetensors")
    with safe_open(str(tmp_path / "g.safetensors"), "pt") as f:
        names = set(f.keys())
    assert names == {f"ab.{k}" for k in net.ab.state_dict()} | {f"ba.{k}" for k in net.ba.state_dict()}
    back = load_generator(tmp_path / "g.safetensors")
    assert isinstance(back, Translator) and back.entry is entry
    assert back.weights_sha256 == sha and back.config == cfg
    assert torch.equal(back.translate(images), out) and torch.equal(back.reverse().translate(out), back_b)
    assert tr.save(tmp_path / "h.safetensors") == sha  # identical weights, identical bytes
    with pytest.raises(ValueError, match="1-channel"):
        tr.translate(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        tr.translate(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="multiples of 4"):
        tr.translate(torch.zeros(1, 1, 30, 30, dtype=torch.uint8))
    with pytest.raises(TypeError, match="translates images"):
        tr.sample(2, seed=0)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_generator(tmp_path / "nope.safetensors")


def test_a_one_way_translator_has_no_reverse_and_round_trips_too(tmp_path):
    torch.manual_seed(1)
    entry = get_model("pix2pix")
    cfg = Pix2PixConfig(**pix2pix.PRESETS["tiny"])
    tr = entry.wrap(cfg, entry.build_generator(cfg))
    assert isinstance(tr, Translator) and tr.reverse() is None
    images = torch.randint(0, 256, (3, cfg.in_channels, 32, 32), dtype=torch.uint8)
    sha = tr.save(tmp_path / "p.safetensors")
    back = load_generator(tmp_path / "p.safetensors")
    assert back.weights_sha256 == sha and torch.equal(back.translate(images), tr.translate(images))
    assert torch.equal(tr.translate(images), _oracle(tr.net, images))


def test_vintagify_key_map_renames_only_the_residual_blocks():
    ours = CycleGANGenerator(CycleGANConfig(**cyclegan.PRESETS["vintage256"])).state_dict()
    theirs = {k.replace(".conv_block.", ".block."): v for k, v in ours.items()}  # vintagify's naming
    mapped = cyclegan.from_vintagify(theirs)
    assert list(mapped) == list(ours)
    with pytest.raises(TypeError, match="model.1.weight"):
        cyclegan.from_vintagify({"model.1.weight": [1.0]})


def test_missing_vintagify_package_names_the_install_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install vintagify"):
        cyclegan.vintagify_weights_path()
