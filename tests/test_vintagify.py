"""``cyclegan.vintage256``: the vintagify package's CycleGAN generator loaded into ganbench's ``CycleGANGenerator``
gives the package's own outputs.

The oracle is the package itself: its ``ResnetGenerator`` with its checkpoint and its ``preprocess`` (resize to
size + 30, centre crop, normalise to [-1, 1]), i.e. its ``inference_image`` without the plotting and PNG writing.
Only those two modules are executed (the package's ``__init__`` imports matplotlib for plotting, which a
``pip install --no-deps vintagify`` does not bring). Skipped only when the package is not installed
(``pip install vintagify``; CI installs it).
"""

import importlib.metadata
import importlib.util

import pytest
import torch

from ganbench.results.store import file_sha256
from ganbench.zoo.cyclegan import (PRESETS, CycleGANConfig, CycleGANGenerator, from_vintagify,
                                   load_vintagify_generator, vintage256_translator, vintagify_weights_path)

try:
    VINTAGIFY = importlib.metadata.distribution("vintagify")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("vintagify is not installed (pip install vintagify)", allow_module_level=True)


def package_module(path: str):
    """One module of the installed package, executed on its own."""
    spec = importlib.util.spec_from_file_location(f"_vintagify_{path.replace('/', '_')}",
                                                  str(VINTAGIFY.locate_file(path)))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ResnetGenerator = package_module("vintagify/generator.py").ResnetGenerator
preprocess = package_module("vintagify/preprocess.py").preprocess

# vintagify 0.1.2, vintagify/resources/G_A2B_epoch33.pth (45,588,424 bytes)
VINTAGIFY_SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"


@pytest.fixture(scope="module")
def theirs():
    net = ResnetGenerator()
    net.load_state_dict(torch.load(vintagify_weights_path(), map_location="cpu", weights_only=True))
    return net.eval()


@pytest.fixture(scope="module")
def ours():
    return load_vintagify_generator()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from PIL import Image
    from sklearn.datasets import load_sample_image

    path = tmp_path_factory.mktemp("vintagify") / "china.png"
    Image.fromarray(load_sample_image("china.jpg")).save(path)  # a 427x640 RGB photo shipped with scikit-learn
    return path


def test_the_installed_checkpoint_is_the_one_the_model_card_names():
    path = vintagify_weights_path()
    assert path.name == "G_A2B_epoch33.pth" and path.stat().st_size == 45_588_424
    assert file_sha256(path) == VINTAGIFY_SHA256


def test_it_loads_strictly_only_through_the_key_map_and_with_affine_instance_norm():
    state = torch.load(vintagify_weights_path(), map_location="cpu", weights_only=True)
    with pytest.raises(RuntimeError, match="block"):  # vintagify's own names do not fit
        CycleGANGenerator(CycleGANConfig(**PRESETS["vintage256"])).load_state_dict(state, strict=True)
    with pytest.raises(RuntimeError, match="Unexpected key"):  # the paper's affine-free instance norm does not fit
        CycleGANGenerator(CycleGANConfig(**PRESETS["paper"])).load_state_dict(from_vintagify(state), strict=True)


@torch.no_grad()
def test_outputs_equal_the_package_inference_on_a_photo(theirs, ours, photo):
    x = preprocess(str(photo), image_size=128)  # the package's own preprocessing, at 128 px to stay fast
    assert x.shape == (1, 3, 128, 128)
    want, got = theirs(x), ours(x)
    assert (want - got).abs().max().item() < 1e-5
    assert want.std() > 0.05  # a real image, not a constant


@torch.no_grad()
def test_the_zoo_translator_gives_the_package_output_in_uint8(theirs, photo):
    tr = vintage256_translator()
    assert tr.name == "cyclegan.vintage256" and tr.weights_sha256 == VINTAGIFY_SHA256
    x = preprocess(str(photo), image_size=64)
    images = ((x + 1) * 127.5).round().to(torch.uint8)
    want = ((theirs(images.float() / 127.5 - 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    got = tr.translate(images)
    assert (got.int() - want.int()).abs().max().item() <= 1  # equal but for rounding at .5 boundaries


@pytest.mark.slow
@torch.no_grad()
def test_outputs_equal_the_package_inference_at_its_default_512_px(theirs, ours, photo):
    x = preprocess(str(photo), image_size=512)
    assert (theirs(x) - ours(x)).abs().max().item() < 1e-5
