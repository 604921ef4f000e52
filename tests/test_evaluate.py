"""One feature pass per sample set; the reference split's features come from the cache after the first time."""

import pytest

from ganbench.data import load
from ganbench.evaluate import REAL, Protocol, Row, evaluate
from ganbench.features.mnist_cnn import MnistCNNFeatureExtractor
from ganbench.results.schema import SampleInfo
from ganbench.tasks import SampleSet


def test_all_metrics_come_from_one_extractor_pass(monkeypatch, tmp_path):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))  # an empty cache: the reference is extracted once here
    monkeypatch.setenv("GANBENCH_METRIC_THREADS", "1")  # equal thread counts: the two scores agree to round-off
    calls = []
    original = MnistCNNFeatureExtractor.forward

    def counting(self, x):
        calls.append(len(x))
        return original(self, x)

    monkeypatch.setattr(MnistCNNFeatureExtractor, "forward", counting)
    reference = load("mnist", "train", 32)
    test = load("mnist", "test", 32)
    samples = SampleSet(test.data[:300], SampleInfo(300, "split", dataset="mnist", split="test",
                                                    split_sha256=test.sha256))
    protocol = Protocol("mnist", "mnist_cnn", 300, resolution=32, heldout_split=None,
                        metrics=("fid", "kid", "is", "prc"))
    row = Row(reference=REAL, name="real data (test split)")
    result = evaluate(protocol, task="unconditional", samples=samples, row=row, progress=False)
    assert set(result.scores) == {"fid", "kid", "is", "precision", "recall"}
    assert sum(calls) == 300 + len(reference)  # every image once: samples and reference
    assert result.kind == "reference" and result.reference_row == "real" and result.samples.n == 300
    assert result.dataset.reference_sha256 == reference.sha256

    calls.clear()
    again = evaluate(protocol, task="unconditional", samples=samples, row=row, progress=False)
    assert sum(calls) == 300  # reference features came from the cache
    assert again.scores["fid"].value == pytest.approx(result.scores["fid"].value, rel=1e-12)
