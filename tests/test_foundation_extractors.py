"""CLIP, DINOv2 and LPIPS (``ganbench.features.foundation``, ``ganbench.metrics.lpips``) without downloads.

No test touches the network or the real weights (none exist on the test machines): every test sets
``TORCH_HOME``, ``GANBENCH_CACHE`` and ``HOME`` to empty temporary folders, clears the weights variables and
makes ``torch.hub.download_url_to_file`` fail the test if called. Where a test needs weights it writes random
ones at test time, in the format the real file has:

- CLIP: a TorchScript archive (``torch.jit.trace`` + ``torch.jit.save``) whose ``state_dict()`` has the keys of
  OpenAI's release (``visual.*`` built by torch-fidelity's own ``CLIPVisual``, fp16 like the release, plus
  text-side tensors that torch-fidelity discards). A tiny ViT (width 64, 2 layers, 64x64 input) by default;
  the real ViT-B/32 shapes in a ``slow`` test.
- DINOv2: a ``torch.save``d state dict with the official ``dinov2_vits14_pretrain.pth`` keys and shapes.
  Comparing with torch-fidelity's own ``FeatureExtractorDinoV2`` needs the facebookresearch/dinov2 code that
  ``torch.hub.load`` runs; that test runs only where a checkout exists (``GANBENCH_TEST_DINOV2_REPO`` or the
  torch hub cache of the user running the tests) and is skipped otherwise.
- LPIPS: random linear heads (``weights-vgg16-lpips.pth``) and random VGG16 ``features.*`` tensors; the
  default test hands torch-fidelity's ``SampleSimilarityLPIPS`` the same VGG16 through its torchvision hook,
  the ``slow`` test writes a full torchvision ``vgg16-397923af.pth`` and leaves torch-fidelity unpatched.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import shutil
import socket
import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch_fidelity
from torch import nn
from torch_fidelity.feature_extractor_clip import MODEL_METADATA as CLIP_METADATA
from torch_fidelity.feature_extractor_clip import (CLIPVisual, FeatureExtractorCLIP, LayerNorm, Transformer,
                                                   convert_weights)
from torch_fidelity.helpers import text_to_dtype
from torch_fidelity.sample_similarity_lpips import SampleSimilarityLPIPS
from torchvision.models.vgg import cfgs, make_layers

from ganbench import weights
from ganbench.features import extract
from ganbench.features import foundation
from ganbench.features.foundation import (CLIP_SPECS, CLIP_VIT_B_32, DINOV2_SPECS, DINOV2_VIT_S_14,
                                          CLIPFeatureExtractor, DINOv2FeatureExtractor, DinoVisionTransformer,
                                          clip_weights, dinov2_weights, load_state_dict,
                                          register_foundation_extractors)
from ganbench.metrics.lpips import (LPIPS_WEIGHTS, VGG16_WEIGHTS, LPIPSVGG16, lpips_diversity, lpips_to_target,
                                    lpips_weights_available, random_pairs, vgg16_features)
from ganbench.registry import Registry
from ganbench.weights import WeightsMismatch

WEIGHT_ENVS = ("GANBENCH_CLIP_WEIGHTS", "GANBENCH_CLIP_VIT_B_32_WEIGHTS", "GANBENCH_DINOV2_WEIGHTS",
               "GANBENCH_DINOV2_VIT_S_14_WEIGHTS", "GANBENCH_LPIPS_WEIGHTS", "GANBENCH_VGG16_WEIGHTS")
FAIL_FAST_S = 1.0
# A local facebookresearch/dinov2 checkout for the torch.hub reference test, looked up before any test
# changes TORCH_HOME: an explicit path, else the hub cache that torch.hub.load("facebookresearch/dinov2") fills.
_DINOV2_REPO_CANDIDATES = [Path(p) for p in (os.environ.get("GANBENCH_TEST_DINOV2_REPO", ""),) if p] + [
    Path(torch.hub.get_dir()) / f"facebookresearch_dinov2_{ref}" for ref in ("main", "master")]
DINOV2_REPO = next((p for p in _DINOV2_REPO_CANDIDATES if (p / "hubconf.py").is_file()), None)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty ganbench cache, torch hub and home; no weights variables; downloads fail the test."""
    for env in WEIGHT_ENVS:
        monkeypatch.delenv(env, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.cache/clip
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_download(url, *args, **kwargs):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(weights, "download_url", no_download)  # ganbench's one downloader
    return tmp_path


@pytest.fixture
def offline(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    return isolated


def hub_checkpoints() -> Path:
    path = Path(torch.hub.get_dir()) / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def images(n: int = 4, size: int = 40, channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


# ------------------------------------------------------------------------------------------------ fail fast


def _assert_fails_fast(fn, *needles: str) -> None:
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as info:
        fn()
    elapsed = time.perf_counter() - start
    assert elapsed < FAIL_FAST_S, f"took {elapsed:.2f} s to fail"
    for needle in needles:
        assert needle in str(info.value), f"{needle!r} not in {str(info.value)!r}"


@pytest.mark.parametrize("spec", [CLIP_VIT_B_32, DINOV2_VIT_S_14], ids=lambda s: s.name)
def test_offline_extractors_fail_fast_naming_the_file(offline: Path, spec) -> None:
    wf = spec.weights_file()
    needles = (wf.filename, wf.url, wf.envs[0], str(wf.cache_path()), str(wf.hub_path()))
    _assert_fails_fast(spec.weights, *needles)
    _assert_fails_fast(spec.create, *needles)
    _assert_fails_fast(lambda: spec.extractor_class(spec.model, spec.layers()), wf.filename)


def test_offline_extractor_file_names_are_torch_fidelitys(offline: Path) -> None:
    sha = CLIP_METADATA["clip-vit-b-32"]["hash"]
    assert clip_weights().filename == f"clip-vit-b-32-{sha}.pt"  # torch-fidelity's load_state_dict_from_url file_name
    assert clip_weights().url == f"https://openaipublic.azureedge.net/clip/models/{sha}/ViT-B-32.pt"
    assert dinov2_weights().filename == "dinov2_vits14_pretrain.pth"
    assert dinov2_weights().url == "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth"
    assert LPIPS_WEIGHTS.filename == "weights-vgg16-lpips.pth"
    assert VGG16_WEIGHTS.filename == "vgg16-397923af.pth"


def test_offline_lpips_fails_fast_naming_the_file(offline: Path) -> None:
    assert not lpips_weights_available()
    needles = (LPIPS_WEIGHTS.filename, LPIPS_WEIGHTS.url, "GANBENCH_LPIPS_WEIGHTS")
    _assert_fails_fast(lambda: lpips_diversity(images()), *needles)
    _assert_fails_fast(lambda: lpips_to_target(images(), images(seed=1)), *needles)
    _assert_fails_fast(lambda: LPIPSVGG16(), *needles)


def test_lpips_never_downloads_even_online(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LPIPS reads local files only: no probe, no download, whatever the offline switches say."""
    monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _assert_fails_fast(lambda: lpips_diversity(images()), LPIPS_WEIGHTS.filename, "not allowed")


@pytest.mark.parametrize("env,fn", [("GANBENCH_CLIP_WEIGHTS", lambda: CLIP_VIT_B_32.weights()),
                                    ("GANBENCH_DINOV2_WEIGHTS", lambda: DINOV2_VIT_S_14.weights()),
                                    ("GANBENCH_LPIPS_WEIGHTS", lambda: lpips_diversity(images()))])
def test_named_missing_file_fails_fast(isolated: Path, monkeypatch: pytest.MonkeyPatch, env: str, fn) -> None:
    """A variable naming a file that does not exist is an error even when online (no probe, no download)."""
    monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    empty = isolated / "empty"
    empty.mkdir()
    monkeypatch.setenv(env, str(empty / "missing.pt"))
    _assert_fails_fast(fn, env, "missing.pt")


def test_unreachable_host_fails_fast(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No offline switch, but the download host hangs: the 0.5 s probe gives up and the error comes in < 1 s."""
    monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def hang(*args, **kwargs):
        time.sleep(3)
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", hang)
    _assert_fails_fast(CLIP_VIT_B_32.weights, clip_weights().filename, "did not answer")
    _assert_fails_fast(DINOV2_VIT_S_14.weights, dinov2_weights().filename, "did not answer")


@pytest.mark.parametrize("wf", [clip_weights(), dinov2_weights(), LPIPS_WEIGHTS, VGG16_WEIGHTS],
                         ids=lambda w: w.filename.split("-")[0].split("_")[0])
def test_resolution_order(offline: Path, monkeypatch: pytest.MonkeyPatch, wf) -> None:
    """Explicit variable, then $GANBENCH_CACHE/weights/<file>, then torch.hub's checkpoints/<file> (the files here
    are placeholders, so the published hash is taken away; the hash check has its own tests below)."""
    wf = replace(wf, sha256=None, hash_prefix=None)
    hub = hub_checkpoints() / wf.filename
    hub.write_bytes(b"hub")
    assert wf.resolve() == hub
    cached = Path(os.environ["GANBENCH_CACHE"]) / "weights" / wf.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"cache")
    assert wf.resolve() == cached
    named = offline / "named.bin"
    named.write_bytes(b"named")
    monkeypatch.setenv(wf.envs[-1], str(named))
    assert wf.resolve() == named


@pytest.mark.parametrize("wf", [clip_weights(), VGG16_WEIGHTS], ids=["clip", "vgg16"])
@pytest.mark.parametrize("where", ["cache", "hub"])
def test_a_found_file_without_the_published_hash_is_refused_and_left_alone(offline: Path, wf, where) -> None:
    """A file ganbench finds on its own must have the published sha256 (CLIP: the whole hash in OpenAI's URL;
    torchvision's VGG16: the 8 hex digits in its name) before it is read."""
    path = (Path(os.environ["GANBENCH_CACHE"]) / "weights" if where == "cache" else hub_checkpoints()) / wf.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not the published file")
    with pytest.raises(WeightsMismatch) as info:
        wf.resolve()
    msg = str(info.value)
    assert hashlib.sha256(b"not the published file").hexdigest() in msg and (wf.sha256 or wf.hash_prefix) in msg
    assert "left in place" in msg and path.read_bytes() == b"not the published file"


def test_a_named_file_without_the_published_hash_warns_and_is_used(offline: Path, monkeypatch) -> None:
    """A file the user names (variable or argument) is the user's choice: its hash is still checked, and a
    mismatch warns (results record its own sha256) instead of refusing it."""
    named = offline / "vgg16.pth"
    named.write_bytes(b"a re-saved VGG16")
    monkeypatch.setenv("GANBENCH_VGG16_WEIGHTS", str(named))
    with pytest.warns(UserWarning, match="gives a sha256 starting with 397923af"):
        assert VGG16_WEIGHTS.resolve() == named
    monkeypatch.delenv("GANBENCH_VGG16_WEIGHTS")
    with pytest.warns(UserWarning, match="vgg16_weights_path"):
        assert VGG16_WEIGHTS.resolve(named=named, named_by="vgg16_weights_path") == named


# ------------------------------------------------------------------------------------------------ registry


def test_register_foundation_extractors() -> None:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    registry = Registry("extractor")
    added = register_foundation_extractors(registry)
    assert {"clip_vit_b_32", "dinov2_vit_s_14"} <= set(added)
    assert set(added) == {s.name for s in [*CLIP_SPECS.values(), *DINOV2_SPECS.values()]}
    for name in added:
        assert re.fullmatch(r"[a-z0-9_]+", name)
        meta = registry.meta(name)
        assert meta["input_kind"] == "images" and meta["description"]
        spec = registry.get(name)
        assert spec.input_kind == "images" and spec.logits_layer is None
        assert FEATURE_EXTRACTORS_REGISTRY[spec.fidelity_name] is spec.extractor_class
    assert registry.get("clip_vit_b_32").model == "clip-vit-b-32"
    assert registry.get("dinov2_vit_s_14").layers() == ["dinov2"]
    assert register_foundation_extractors(registry) == []  # idempotent


# ------------------------------------------------------------------------------------------------ unsafe pickles

_EXECUTED: list[str] = []


def _mark(tag: str) -> str:
    _EXECUTED.append(tag)
    return tag


class _Payload:
    def __reduce__(self):
        return (_mark, ("payload ran",))


def test_checkpoints_are_not_unpickled_unsafely(tmp_path: Path) -> None:
    """A .pth that pickles a callable is refused by every loader here, and the callable never runs."""
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": _Payload()}, evil)
    for load in (load_state_dict, vgg16_features,
                 lambda p: DINOv2FeatureExtractor("dinov2-vit-s-14", ["dinov2"], str(p)),
                 lambda p: LPIPSVGG16(weights_path=p, vgg16_weights_path=p)):
        with pytest.raises(pickle.UnpicklingError):
            load(evil)
    assert _EXECUTED == []


# ------------------------------------------------------------------------------------------------ CLIP


def write_clip_archive(path: Path, *, embed_dim: int = 32, resolution: int = 64, layers: int = 2, width: int = 64,
                       patch: int = 16, seed: int = 0) -> Path:
    """A random CLIP TorchScript archive whose state_dict has the keys of OpenAI's release (vision tower
    built by torch-fidelity's ``CLIPVisual``; a small text tower that torch-fidelity discards; fp16 weights)."""

    class CLIPArchive(nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = CLIPVisual(embed_dim, resolution, layers, width, patch).visual
            text = 32
            self.transformer = Transformer(text, 1, 1)
            self.token_embedding = nn.Embedding(16, text)
            self.positional_embedding = nn.Parameter(torch.randn(8, text) * 0.01)
            self.ln_final = LayerNorm(text)
            self.text_projection = nn.Parameter(torch.randn(text, embed_dim) * text ** -0.5)
            self.logit_scale = nn.Parameter(torch.tensor(4.6052))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        model = CLIPArchive().eval()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.normal_(1.0, 0.1)
                    m.bias.normal_(0.0, 0.1)
        convert_weights(model)  # fp16 linear/conv/attention weights, as in OpenAI's archives
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(torch.jit.trace(model, torch.zeros(1)), str(path))
    return path


@pytest.fixture(scope="module")
def clip_archives(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("clip")
    return write_clip_archive(d / "a.pt", seed=0), write_clip_archive(d / "b.pt", seed=1)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_clip_equals_torch_fidelity(offline: Path, clip_archives: tuple[Path, Path],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The archive in torch-fidelity's own cache location: ganbench finds it, and ganbench's features equal those
    of torch-fidelity's FeatureExtractorCLIP built with no path (its load_state_dict_from_url finds the cached
    file) and with the path; grayscale is the same image repeated to RGB; the variable overrides the cache."""
    a, b = clip_archives
    # pretend archive a is OpenAI's file: found in a cache, a file must have the published hash (the file name that
    # torch-fidelity and ganbench look for carries it)
    monkeypatch.setitem(CLIP_METADATA["clip-vit-b-32"], "hash", foundation.weights_sha256(a))
    cached = hub_checkpoints() / clip_weights().filename
    shutil.copy(a, cached)
    x = images(5, size=40)
    path, sha = CLIP_VIT_B_32.weights()
    assert path == cached and sha == foundation.weights_sha256(a)
    ours = extract(CLIP_VIT_B_32, x, progress=False)["clip"]
    theirs_default = _quiet(FeatureExtractorCLIP, "clip-vit-b-32", ["clip"])(x)[0]  # torch-fidelity's download path
    theirs_path = _quiet(torch_fidelity.utils.create_feature_extractor, "clip-vit-b-32", ["clip"], cuda=False,
                         feature_extractor_weights_path=str(a), verbose=False)(x)[0]
    assert ours.shape == (5, 32) and ours.dtype == torch.float32 and ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs_default, rtol=0, atol=0)
    torch.testing.assert_close(ours, theirs_path, rtol=0, atol=0)
    # through ganbench's alias in torch-fidelity's registry (what calculate_metrics would build)
    register_foundation_extractors(Registry("extractor"))
    alias = _quiet(torch_fidelity.utils.create_feature_extractor, "ganbench-clip-vit-b-32", ["clip"], cuda=False,
                   verbose=False)
    torch.testing.assert_close(alias(x)[0], ours, rtol=0, atol=0)

    gray = images(3, size=40, channels=1, seed=2)
    net = _quiet(CLIP_VIT_B_32.create)
    assert isinstance(net, CLIPFeatureExtractor)
    torch.testing.assert_close(net(gray)[0], net(gray.repeat(1, 3, 1, 1))[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        net(images(1, channels=2))

    monkeypatch.setenv("GANBENCH_CLIP_WEIGHTS", str(b))
    with pytest.warns(UserWarning, match="published"):  # named by the variable: used, with a warning
        assert CLIP_VIT_B_32.weights()[0] == b
    other = _quiet(extract, CLIP_VIT_B_32, x, progress=False)["clip"]
    assert not torch.allclose(other, ours)
    torch.testing.assert_close(other, _quiet(FeatureExtractorCLIP, "clip-vit-b-32", ["clip"], str(b))(x)[0],
                               rtol=0, atol=0)


def test_clip_published_hash_does_not_warn(offline: Path, clip_archives: tuple[Path, Path],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = clip_archives[0]
    monkeypatch.setenv("GANBENCH_CLIP_WEIGHTS", str(path))
    sha = foundation.weights_sha256(path)
    monkeypatch.setitem(CLIP_METADATA["clip-vit-b-32"], "hash", sha)  # pretend this is OpenAI's file
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert CLIP_VIT_B_32.weights() == (path, sha)


@pytest.mark.slow
def test_clip_vit_b_32_real_shapes_equal_torch_fidelity(offline: Path) -> None:
    """The ViT-B/32 vision tower at its real size (512-d, 224x224, 12 layers of width 768, fp16 ~180 MB)."""
    path = write_clip_archive(hub_checkpoints() / clip_weights().filename, embed_dim=512, resolution=224, layers=12,
                              width=768, patch=32)
    x = images(2, size=32)
    ours = _quiet(extract, CLIP_VIT_B_32, x, progress=False)["clip"]
    theirs = _quiet(FeatureExtractorCLIP, "clip-vit-b-32", ["clip"], str(path))(x)[0]
    assert ours.shape == (2, 512)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------ DINOv2


def random_dinov2_state(model: str = "dinov2-vit-s-14", seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the official checkpoint's keys and shapes, scaled so activations stay O(1)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    with torch.device("meta"):
        layout = DinoVisionTransformer.for_model(model).state_dict()
    for key, t in layout.items():
        r = torch.randn(t.shape, generator=g)
        if key.endswith("gamma"):
            r = 0.5 + 0.1 * r  # LayerScale
        elif re.search(r"norm\d?\.weight$", key):
            r = 1.0 + 0.1 * r
        elif key.endswith("bias") or key in ("cls_token", "pos_embed", "mask_token"):
            r = 0.1 * r
        else:
            r = r * (t[0].numel() ** -0.5)  # weights: unit fan-in variance
        state[key] = r.contiguous()
    return state


@pytest.fixture(scope="module")
def dinov2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dinov2") / "dinov2_vits14_pretrain.pth"
    torch.save(random_dinov2_state(), path)
    return path


def test_dinov2_official_layout_loads_safely(offline: Path, dinov2_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file loads strictly with weights_only=True; keys/shapes are those of dinov2_vits14_pretrain.pth
    (175 tensors, 37x37+1 position embeddings); features are torch-fidelity's 384-d "dinov2"."""
    state = load_state_dict(dinov2_file)
    assert len(state) == 175
    assert state["pos_embed"].shape == (1, 1370, 384) and state["patch_embed.proj.weight"].shape == (384, 3, 14, 14)
    assert state["blocks.11.ls2.gamma"].shape == (384,) and state["blocks.0.attn.qkv.weight"].shape == (1152, 384)
    monkeypatch.setenv("GANBENCH_DINOV2_WEIGHTS", str(dinov2_file))
    path, sha = DINOV2_VIT_S_14.weights()
    assert path == dinov2_file and len(sha) == 64
    net = DINOV2_VIT_S_14.create()
    assert isinstance(net, DINOv2FeatureExtractor) and net.features_list == ["dinov2"]
    gray = images(1, size=32, channels=1, seed=3)
    x = torch.cat([images(1, size=32), gray.repeat(1, 3, 1, 1)])
    feats = extract(DINOV2_VIT_S_14, x, progress=False, net=net)["dinov2"]
    assert feats.shape == (2, 384) and torch.isfinite(feats).all() and feats.std() > 0
    torch.testing.assert_close(net(gray)[0], feats[1:], rtol=1e-6, atol=1e-6)  # 1 channel = repeated to RGB
    f64 = DINOv2FeatureExtractor("dinov2-vit-s-14", ["dinov2"], str(dinov2_file), "float64")
    # torch-fidelity's internal-dtype option, resolved as torch-fidelity resolves it (0.4.0 maps "float64" to float32)
    assert f64.model.pos_embed.dtype == f64.feature_extractor_internal_dtype == text_to_dtype("float64", "float32")


@pytest.mark.skipif(DINOV2_REPO is None, reason="needs a local facebookresearch/dinov2 checkout "
                    "(GANBENCH_TEST_DINOV2_REPO, or the torch hub cache) to run torch-fidelity's own DINOv2")
def test_dinov2_equals_torch_fidelity_hub_model(offline: Path, dinov2_file: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """torch-fidelity's FeatureExtractorDinoV2, i.e. torch.hub.load of the dinov2 code (from the local checkout,
    the network switched off) with the same random weights in the hub cache, gives ganbench's features."""
    import sys
    import urllib.error

    hub_dir = Path(torch.hub.get_dir())
    hub_dir.mkdir(parents=True, exist_ok=True)
    (hub_dir / "facebookresearch_dinov2_main").symlink_to(DINOV2_REPO.resolve(), target_is_directory=True)
    shutil.copy(dinov2_file, hub_checkpoints() / dinov2_file.name)

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("network switched off in tests")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)  # torch.hub then falls back to the cached checkout
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")  # the hub code's torch.load, made safe
    monkeypatch.setenv("XFORMERS_DISABLED", "1")
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    try:
        theirs_net = _quiet(torch_fidelity.utils.create_feature_extractor, "dinov2-vit-s-14", ["dinov2"], cuda=False,
                            verbose=False)
        x = images(3, size=50)
        theirs = theirs_net(x)[0]
    finally:
        for name in set(sys.modules) - before:  # the hub's "dinov2" and "hubconf" modules
            if name == "hubconf" or name.startswith("dinov2"):
                del sys.modules[name]
    ours = DINOv2FeatureExtractor("dinov2-vit-s-14", ["dinov2"], str(dinov2_file))(x)[0]
    assert ours.shape == theirs.shape == (3, 384)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ LPIPS


def _random_vgg_features(seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vgg = make_layers(cfgs["D"])
        for m in vgg.modules():
            if isinstance(m, nn.Conv2d):  # torchvision's VGG initialisation, biases jittered
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.normal_(m.bias, 0.0, 0.01)
    return vgg.eval()


def _random_lpips_heads(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) * 0.1
            for i, c in enumerate([64, 128, 256, 512, 512])}


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("lpips")
    heads, vgg = d / "weights-vgg16-lpips.pth", d / "vgg16-features.pth"
    torch.save(_random_lpips_heads(), heads)
    torch.save({f"features.{k}": v for k, v in _random_vgg_features().state_dict().items()}, vgg)
    return heads, vgg


def test_lpips_equals_torch_fidelity(offline: Path, lpips_files: tuple[Path, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """torch-fidelity's SampleSimilarityLPIPS, its heads from its own hub cache file and its VGG16 handed in
    through its torchvision hook, gives ganbench's distances; diversity and to-target scores are their means."""
    heads, vgg_file = lpips_files
    shutil.copy(heads, hub_checkpoints() / LPIPS_WEIGHTS.filename)  # where torch-fidelity caches it
    monkeypatch.setenv("GANBENCH_VGG16_WEIGHTS", str(vgg_file))
    assert lpips_weights_available()
    vgg = make_layers(cfgs["D"])
    vgg.load_state_dict({k[len("features."):]: v for k, v in torch.load(vgg_file, weights_only=True).items()})
    monkeypatch.setattr("torch_fidelity.sample_similarity_lpips.torchvision_load_pretrained_vgg16",
                        lambda **kwargs: SimpleNamespace(features=vgg))
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")  # torch-fidelity's own torch.load, made safe
    theirs = _quiet(torch_fidelity.utils.create_sample_similarity, "lpips-vgg16", cuda=False,
                    sample_similarity_dtype="uint8", verbose=False)
    ours = LPIPSVGG16()
    assert ours.weights_paths == (hub_checkpoints() / LPIPS_WEIGHTS.filename, vgg_file)

    gray = images(1, size=16, channels=1, seed=6)
    x = torch.cat([gray.repeat(1, 3, 1, 1), images(4, size=16, seed=4)])  # x[0]: a grayscale image as RGB
    y = images(5, size=16, seed=5)
    with torch.no_grad():
        d_ours, d_theirs = ours(x, y), theirs(x, y)
    assert d_ours.shape == (5,) and (d_ours > 0).all()
    torch.testing.assert_close(d_ours, d_theirs, rtol=0, atol=0)

    scores = lpips_diversity(x, pairs=6, seed=3, batch_size=4)  # two batches
    s = scores["lpips_diversity"]
    a, b = random_pairs(len(x), 6, 3)
    assert (a != b).all()
    with torch.no_grad():
        ref = theirs(x[a], x[b]).double()
    assert s.value == pytest.approx(ref.mean().item(), rel=1e-6)
    assert s.std == pytest.approx((ref.std() / 6 ** 0.5).item(), rel=1e-5)
    assert s.ci_low < s.value < s.ci_high and s.n == 5 and s.higher_is_better is True and "6 random pairs" in s.method
    collapsed = lpips_diversity(x[:1].repeat(2, 1, 1, 1), pairs=2, net=ours)["lpips_diversity"]
    assert collapsed.value == 0.0 and collapsed.std == 0.0  # a collapsed generator scores 0

    t = lpips_to_target(x, y, net=ours)["lpips_to_target"]
    assert t.value == pytest.approx(d_theirs.double().mean().item(), rel=1e-6)
    assert t.n == 5 and t.higher_is_better is False
    with torch.no_grad():  # 1 channel = the same image repeated to RGB
        torch.testing.assert_close(ours(gray, y[:1]), d_ours[:1], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="paired"):
        lpips_to_target(x, y[:3], net=ours)


@pytest.mark.slow
def test_lpips_equals_unpatched_torch_fidelity(offline: Path, lpips_files: tuple[Path, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A full torchvision vgg16-397923af.pth (~530 MB, random) in the hub cache: torch-fidelity builds LPIPS
    entirely its own way (torchvision's vgg16(weights=IMAGENET1K_V1) from the cache), and ganbench's explicit
    paths give the same distances."""
    import torchvision

    heads, _ = lpips_files
    shutil.copy(heads, hub_checkpoints() / LPIPS_WEIGHTS.filename)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        full = torchvision.models.vgg16()
    vgg_file = hub_checkpoints() / VGG16_WEIGHTS.filename
    torch.save(full.state_dict(), vgg_file)
    del full
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    theirs = _quiet(SampleSimilarityLPIPS, "lpips-vgg16", sample_similarity_resize=64)
    ours = LPIPSVGG16(sample_similarity_resize=64, weights_path=heads, vgg16_weights_path=vgg_file)
    x, y = images(4, size=48, seed=7), images(4, size=48, seed=8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, y), theirs(x, y), rtol=0, atol=0)
