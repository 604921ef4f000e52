"""Real third-party GAN checkpoints from PyPI wheels load strictly into ganbench's modules and give the same images
as each package's own generator class for the same latent (and label). The packages' classes are the oracles.

CI installs the wheels without their dependencies (.ci/run); a test skips only when its package is absent.
"""

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest
import torch

from ganbench.zoo import to_uint8
from ganbench.zoo.cards import load_card
from ganbench.zoo.fetch import convert_state, fetch, load_weights, resolve_source, weights_status
from ganbench.zoo.safe_load import load_checkpoint

TOL = 1e-5


def _installed_file(package: str, path: str) -> Path:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{package} is not installed (pip install --no-deps {package})")
    return Path(str(dist.locate_file(path)))


def _module_from_file(package: str, path: str, name: str):
    """One module of an installed package, executed on its own: the packages' __init__ files are not run (one of
    them unpickles its checkpoint at import time)."""
    spec = importlib.util.spec_from_file_location(name, _installed_file(package, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_dcgan_faces64_matches_gan_face_generate(cache):
    ref_module = _module_from_file("gan-face-generate", "gan_face_generate/models.py", "_gfg_models")
    card = load_card("dcgan.faces64")
    assert weights_status(card).state == "local"
    ref = ref_module.Generator(ngpu=0, nc=3, nz=100, ngf=64)
    # loaded as the package's inference.py does (checkpoint["netG_state_dict"]), but without executing code
    ckpt = torch.load(_installed_file("gan-face-generate", "gan_face_generate/weights.tar"), map_location="cpu",
                      weights_only=True)
    ref.load_state_dict(ckpt["netG_state_dict"])
    ref.eval()

    ours = load_weights(card)  # sha256-checked, converted, written to the cache, read back from safetensors
    assert fetch(card).source == "cache"
    z = torch.randn(16, 100, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = ref(z.view(16, 100, 1, 1))
        got = ours.net(z)
    assert got.shape == (16, 3, 64, 64)
    assert (got - expected).abs().max().item() <= TOL
    assert expected.std() > 0.1  # real images, not a constant

    samples = ours.sample(16, seed=7)  # the sampling contract draws the same latents
    assert torch.equal(samples, to_uint8(expected))


def test_cdcgan_eyes128_matches_omniart_eye_generator(cache):
    ref_module = _module_from_file("omniart-eye-generator", "omniart_eye_generator/generator.py", "_omniart_gen")
    card = load_card("cdcgan.eyes128")
    ref = ref_module.Generator()
    ref.load_state_dict(torch.load(_installed_file("omniart-eye-generator",
                                                   "omniart_eye_generator/generator_model_state.pth"),
                                   map_location="cpu", weights_only=True))
    ref.eval()
    assert ref_module.label_count == len(card.classes) == 8

    ours = load_weights(card)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 5, 2])
    z = torch.randn(len(labels), 100, generator=torch.Generator().manual_seed(3))
    onehot = torch.zeros(len(labels), 8).scatter_(1, labels[:, None], 1.0)  # the package's __make_label
    with torch.no_grad():
        expected = ref(z.view(len(z), 100, 1, 1), onehot)
        got = ours.net(z, labels)
    assert got.shape == (10, 3, 128, 128)
    assert (got - expected).abs().max().item() <= TOL
    with torch.no_grad():  # the label matters: the same latent with another colour is another image
        other = ref(z[:1].view(1, 100, 1, 1), torch.eye(8)[4:5])
    assert (ours.net(z[:1], torch.tensor([4])) - other).abs().max().item() <= TOL
    assert (other - expected[:1]).abs().mean() > 0.01

    samples = ours.sample(10, seed=3, labels=labels)
    assert torch.equal(samples, to_uint8(expected))
    balanced = ours.sample(16, seed=3)  # without labels: every class twice, in order
    with torch.no_grad():
        z16 = torch.randn(16, 100, generator=torch.Generator().manual_seed(3))
        assert torch.equal(balanced, to_uint8(ref(z16.view(16, 100, 1, 1), torch.eye(8).repeat(2, 1))))


def test_cyclegan_vintage256_card_matches_vintagify(cache):
    cyclegan = pytest.importorskip("ganbench.zoo.cyclegan")
    ref_module = _module_from_file("vintagify", "vintagify/generator.py", "_vintagify_gen")
    card = load_card("cyclegan.vintage256")
    path = resolve_source(card).path  # the card's sha256 and size are the installed file's
    assert path == cyclegan.vintagify_weights_path()
    state = convert_state(card, load_checkpoint(path))  # the card's converter
    ours = cyclegan.CycleGANGenerator(cyclegan.CycleGANConfig(**card.config))
    ours.load_state_dict(state, strict=True)
    ours.eval()
    ref = ref_module.ResnetGenerator()
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    ref.eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= TOL
