"""One feature pass per sample set; the reference split's features come from the cache after the first time."""

import pytest

from ganbench.data import load
from ganbench.evaluate import EvalRequest, SampleSet, evaluate, model_info_for
from ganbench.features import get_extractor
from ganbench.features.mnist_cnn import MnistCNNFeatureExtractor


def test_all_metrics_come_from_one_extractor_pass(monkeypatch, tmp_path):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))  # an empty cache: the reference is extracted once here
    calls = []
    original = MnistCNNFeatureExtractor.forward

    def counting(self, x):
        calls.append(len(x))
        return original(self, x)

    monkeypatch.setattr(MnistCNNFeatureExtractor, "forward", counting)
    reference = load("mnist", "train", 32)
    samples = SampleSet(load("mnist", "test", 32).data[:300], "split mnist/test", None)
    request = EvalRequest("t", "reference", "reference", model_info_for("real", None, {}, None), reference,
                          get_extractor("mnist_cnn"), ["fid", "kid", "is", "prc"])
    result = evaluate(request, samples, progress=False)
    assert set(result.scores) == {"fid", "kid", "is", "precision", "recall"}
    assert sum(calls) == 300 + len(reference)  # every image once: samples and reference

    calls.clear()
    again = evaluate(request, samples, progress=False)
    assert sum(calls) == 300  # reference features came from the cache
    assert again.scores["fid"].value == pytest.approx(result.scores["fid"].value, rel=1e-12)
