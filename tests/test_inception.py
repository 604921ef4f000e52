"""The FID Inception-v3 extractor (``inception_v3_fid``) against torch-fidelity's own module and metrics.

Nothing is downloaded: the tests write random weights with the real file's keys and shapes
(``write_random_weights``, batch-norm statistics measured on random images so variances are positive)
and point ``GANBENCH_INCEPTION_WEIGHTS`` at them. torch-fidelity's own module loads that file with
``torch.load(weights_only=False)``; ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` makes that load safe as well.
"""

from __future__ import annotations

import ast
import dataclasses
import time
from pathlib import Path

import pytest
import torch
import torch_fidelity
from torch import nn

from ganbench.features import extract, get_extractor
from ganbench.features import inception
from ganbench.features.inception import (FIDELITY_NAME, REFERENCE_NAME, WEIGHTS_FILE, WEIGHTS_URL, InceptionSpec,
                                         InceptionV3FID, resolve_weights, write_random_weights)
from ganbench.metrics import fidelity
from ganbench.metrics.frechet import GaussianStats
from ganbench.paths import REPO_ROOT
from ganbench.registry import EXTRACTORS
from ganbench.results.store import file_sha256

LAYERS = ["2048", "logits_unbiased"]
FAST_TOLERANCE = 1e-4  # max |ours - theirs| / max |theirs|, per output


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_weights(tmp_path_factory.mktemp("inception") / WEIGHTS_FILE, seed=0, calibration_images=2)


@pytest.fixture
def weights(random_weights: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANBENCH_INCEPTION_WEIGHTS", str(random_weights))
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    return random_weights


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No explicit path, an empty ganbench cache and an empty torch hub."""
    monkeypatch.delenv("GANBENCH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def fidelity_module(path: Path) -> nn.Module:
    """torch-fidelity's own FeatureExtractorInceptionV3, through its registry."""
    return torch_fidelity.utils.create_feature_extractor(REFERENCE_NAME, LAYERS, cuda=False,
                                                         feature_extractor_weights_path=str(path), verbose=False)


def images(n: int, seed: int, size: int = 32, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


def max_rel_err(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


def test_offline_without_weights_fails_fast_and_says_what_to_do(no_weights, monkeypatch):
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        get_extractor("inception_v3_fid").create()
    assert time.perf_counter() - t0 < 1.0
    message = str(err.value)
    assert WEIGHTS_FILE in message and WEIGHTS_URL in message and "GANBENCH_INCEPTION_WEIGHTS" in message
    assert str(no_weights / "cache" / "weights" / WEIGHTS_FILE) in message


def test_unreachable_host_counts_as_offline(no_weights, monkeypatch):
    # no offline variable set: the socket probe decides, within its half second, and nothing is downloaded
    for name in inception.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(inception, "WEIGHTS_URL", f"https://192.0.2.1/{WEIGHTS_FILE}")  # RFC 5737: never routed
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILE):
        resolve_weights()
    assert time.perf_counter() - t0 < 1.0
    assert not (no_weights / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE).exists()


def test_weights_are_looked_for_in_order(no_weights, monkeypatch):
    monkeypatch.setenv("GANBENCH_OFFLINE", "1")
    hub = no_weights / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE
    cache = no_weights / "cache" / "weights" / WEIGHTS_FILE
    explicit = no_weights / "elsewhere.pth"
    for path in (hub, cache, explicit):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"placeholder")
    assert resolve_weights() == cache
    cache.unlink()
    assert resolve_weights() == hub
    monkeypatch.setenv("GANBENCH_INCEPTION_WEIGHTS", str(explicit))
    assert resolve_weights() == explicit
    explicit.unlink()  # an explicit path that is wrong is an error, not a fallback
    with pytest.raises(FileNotFoundError, match="elsewhere.pth"):
        resolve_weights()


def test_registered_in_both_registries(weights):
    spec = get_extractor("inception_v3_fid")
    assert isinstance(spec, InceptionSpec) and spec.fast and spec.fast_batch_size == 8
    assert (spec.input_kind, spec.feature_layer, spec.logits_layer) == ("images", "2048", "logits_unbiased")
    assert "299" in spec.input_resize and spec.layers() == LAYERS
    assert spec.weights() == (weights, file_sha256(weights))
    assert "inception_v3_fid" in EXTRACTORS
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    assert FEATURE_EXTRACTORS_REGISTRY[FIDELITY_NAME] is InceptionV3FID


def test_architecture_and_random_weights_match_torch_fidelity(weights):
    theirs = fidelity_module(weights).state_dict()
    ours = InceptionV3FID("arch", LAYERS, pretrained=False, fast=False).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    variances = [v for k, v in theirs.items() if k.endswith("running_var")]
    assert len(variances) == 94 and all(bool((v > 0).all()) for v in variances)


def test_fast_path_matches_torch_fidelity(weights):
    x = images(8, seed=1)
    theirs = fidelity_module(weights)
    with torch.no_grad():
        ref = theirs.convert_features_tuple_to_dict(theirs(x))
    fast = extract(get_extractor("inception_v3_fid"), x, progress=False)  # one chunk of 8
    # without folding the computation is torch-fidelity's, operation for operation (two images suffice)
    exact = extract(dataclasses.replace(get_extractor("inception_v3_fid"), fast=False, fast_batch_size=None), x[:2],
                    progress=False)
    for layer in LAYERS:
        assert fast[layer].shape == ref[layer].shape
        assert max_rel_err(fast[layer], ref[layer]) < FAST_TOLERANCE, layer
        assert max_rel_err(exact[layer], ref[layer][:2]) < 1e-6, layer
    assert ref["2048"].std() > 1e-3  # the random network does not collapse its features


def test_grayscale_is_repeated_to_rgb_and_chunks_give_the_same_features(weights):
    gray = images(2, seed=2, size=28, channels=1)
    net = InceptionV3FID(FIDELITY_NAME, LAYERS, str(weights), fast=True, fast_batch_size=1)
    with torch.no_grad():
        chunked = net(gray)  # two chunks of one grayscale image
        net.fast_batch_size = None
        whole = net(gray.repeat(1, 3, 1, 1))  # one batch of two RGB images
    for a, b in zip(chunked, whole):
        assert a.shape == b.shape and max_rel_err(a, b) < 1e-5
    with pytest.raises(ValueError, match="uint8 NCHW"):
        net(gray.float())


@pytest.mark.slow
def test_compiled_fast_path_matches_torch_fidelity(weights):
    # 10 images: a full chunk of 8 and a last chunk of 2, zero-padded to 8 so that one graph serves both
    x = images(10, seed=6)
    theirs = fidelity_module(weights)
    compiled = InceptionV3FID(FIDELITY_NAME, LAYERS, str(weights), fast=True, compiled=True)
    with torch.no_grad():
        ref = theirs(x)
        ours = compiled(x)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and max_rel_err(a, b) < FAST_TOLERANCE


def _dotted(node: ast.AST) -> str:
    return f"{_dotted(node.value)}.{node.attr}" if isinstance(node, ast.Attribute) else getattr(node, "id", "?")


def test_no_unsafe_torch_load_in_ganbench():
    # every call that unpickles a checkpoint passes weights_only=True (a syntax check, so comments and
    # docstrings that mention torch-fidelity's own torch.load do not count)
    unpicklers = {"torch.load", "torch.serialization.load", "torch.hub.load_state_dict_from_url"}
    loads = 0
    for path in sorted((REPO_ROOT / "ganbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization", "torch.hub"):
                assert not {a.name for a in node.names} & {"load", "load_state_dict_from_url"}, \
                    f"{path}:{node.lineno}: import the loader as torch.load so that this test sees its calls"
            if isinstance(node, ast.Call) and _dotted(node.func) in unpicklers:
                loads += 1
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                           for k in node.keywords)
                assert safe, f"{path}:{node.lineno}: {_dotted(node.func)} without weights_only=True"
    assert loads >= 1  # ganbench.features.inception.load_state_dict


class _Images(torch.utils.data.Dataset):
    """uint8 CHW images, as torch-fidelity's ``calculate_metrics`` takes them."""

    def __init__(self, data: torch.Tensor):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.data[i]


N_METRIC, SEED, KID_SUBSETS = 48, 2020, 100  # images per set; rng seed of KID subsets and IS shuffling


@pytest.fixture(scope="module")
def metric_images() -> tuple[torch.Tensor, torch.Tensor]:
    """(generated, reference) uint8 64x64 images.

    The reference is uniform noise, the distribution the random weights' batch norm was calibrated on; half
    of the generated set is more of that noise and half is noise blended with reference images (features
    far from the reference's), so every metric, precision and recall included, takes a non-trivial value.
    """
    ref = images(N_METRIC, seed=3, size=64)
    blend = (ref.float() * 0.7 + images(N_METRIC, seed=4, size=64).float() * 0.3).round().to(torch.uint8)
    gen = torch.cat([images(N_METRIC - N_METRIC // 2, seed=5, size=64), blend[:N_METRIC // 2]])
    return gen, ref


@pytest.fixture(scope="module")
def fidelity_metrics(random_weights, metric_images) -> dict[str, float]:
    """torch-fidelity's own calculate_metrics on the images, with its own Inception module."""
    gen, ref = metric_images
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
        out = torch_fidelity.calculate_metrics(
            input1=_Images(gen), input2=_Images(ref), cuda=False, batch_size=64, feature_extractor=REFERENCE_NAME,
            feature_extractor_weights_path=str(random_weights), fid=True, kid=True, isc=True, prc=True,
            kid_subsets=KID_SUBSETS, kid_subset_size=fidelity.kid_subset_size(len(gen), len(ref)), isc_splits=10,
            prc_neighborhood=3, samples_shuffle=True, rng_seed=SEED, cache=False, save_cpu_ram=False, verbose=False)
    return {"fid": out["frechet_inception_distance"], "kid": out["kernel_inception_distance_mean"],
            "is": out["inception_score_mean"], "precision": out["precision"], "recall": out["recall"]}


@pytest.mark.slow
@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_metrics_agree_with_torch_fidelity_calculate_metrics(weights, metric_images, fidelity_metrics, fast):
    gen_images, ref_images = metric_images
    spec = get_extractor("inception_v3_fid")
    if not fast:
        spec = dataclasses.replace(spec, fast=False, fast_batch_size=None)
    gen, ref = extract(spec, gen_images, progress=False), extract(spec, ref_images, progress=False)
    ours = {
        "fid": fidelity.fid(gen["2048"], GaussianStats.from_features(ref["2048"]), bootstrap=2).value,
        "kid": fidelity.kid(gen["2048"], ref["2048"], seed=SEED, subsets=KID_SUBSETS).value,
        "is": fidelity.inception_score(gen["logits_unbiased"], splits=10, seed=SEED).value,
        **{k: s.value for k, s in fidelity.precision_recall(gen["2048"], ref["2048"], k=3).items()},
    }
    theirs = fidelity_metrics
    rel = {k: abs(ours[k] - theirs[k]) / max(abs(theirs[k]), 1e-12) for k in theirs}
    print(f"\n{'fast' if fast else 'exact'}: ganbench {ours}\ntorch-fidelity {theirs}\nrelative differences {rel}")
    assert all(0 < theirs[k] < float("inf") for k in ("fid", "kid", "is"))
    assert all(0 < theirs[k] < 1 for k in ("precision", "recall"))
    # Tolerances. Measured on these inputs (random weights, 2 CPU threads), relative to torch-fidelity:
    #   exact features: FID 1.2e-7, KID 8.3e-8, IS 0;  fast features: FID 1.4e-7, KID 1.0e-7, IS 3.2e-9.
    # FID: ganbench's statistics and trace are float64; torch-fidelity's mean is float32 (np.mean of float32
    #      features) and its trace goes through scipy's sqrtm. The fast path adds its ~1e-6 feature error.
    # KID: torch-fidelity's polynomial-kernel sums run in float32, ganbench's in float64, and the unbiased MMD
    #      is a difference of nearly equal sums, so float32 round-off is amplified: 1e-5 leaves room for that.
    # IS: softmax in float32 (torch-fidelity) against float64 (ganbench).
    # precision/recall: both in float32 on features within 1e-6 of each other, so the counts are equal.
    assert rel["fid"] < 1e-6
    assert rel["kid"] < 1e-5
    assert rel["is"] < 1e-6
    assert ours["precision"] == theirs["precision"] and ours["recall"] == theirs["recall"]
