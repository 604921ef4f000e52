import json

import pytest

from ganbench.results.schema import SCHEMA_VERSION, Result, SampleInfo
from ganbench.results.store import read_result, read_results, write_result


def test_result_round_trips_through_json(tmp_path, make_result):
    r = make_result()
    assert r.schema_version == SCHEMA_VERSION and isinstance(r.samples, SampleInfo)
    path = write_result(r, tmp_path)
    assert path.name.startswith(r.run_id + "__fp32-cpu-torch")
    back = read_result(path)
    assert back == r
    assert read_results(tmp_path) == [r]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


def test_unknown_or_missing_keys_are_named(tmp_path, make_result):
    doc = make_result().to_dict()
    doc["scores"]["fid"]["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        Result.from_dict(doc)
    doc = make_result().to_dict()
    del doc["dataset"]["reference_sha256"]
    with pytest.raises(ValueError, match="reference_sha256"):
        Result.from_dict(doc)
    doc = make_result().to_dict()
    doc["samples"]["n"] = "1000"  # a mistyped field is named too
    with pytest.raises(ValueError, match="SampleInfo.n"):
        Result.from_dict(doc)


def test_other_major_schema_version_is_refused(tmp_path, make_result):
    doc = make_result().to_dict()
    doc["schema_version"] = "3.0"
    (tmp_path / "x.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="schema_version"):
        read_result(tmp_path / "x.json")


def test_reference_results_name_their_row_and_only_they_do(make_result):
    assert make_result(kind="reference").reference_row == "real"
    assert make_result().reference_row is None
    with pytest.raises(ValueError, match="reference_row"):
        make_result(kind="reference", reference_row="bogus")
    with pytest.raises(ValueError, match="reference_row"):
        make_result(kind="model", reference_row="real")


def test_a_1x_document_is_upgraded_on_read(tmp_path, make_result):
    """The layout of schema 1.x (prose sample source, hyphenated task names, no reference_row) still reads."""
    doc = make_result(kind="reference", name="real data (test split)").to_dict()
    doc["schema_version"] = "1.3"
    doc["task"] = "class-conditional"
    del doc["reference_row"]
    doc["model"]["entry"] = None
    doc["samples"] = {"n": 1000, "seed": 0, "source": "split mnist/test sha256 " + "12" * 32}
    (tmp_path / "old.json").write_text(json.dumps(doc))
    r = read_result(tmp_path / "old.json")
    assert r.schema_version == SCHEMA_VERSION and r.task == "class_conditional" and r.reference_row == "real"
    assert r.samples == SampleInfo(1000, "split", seed=0, dataset="mnist", split="test", split_sha256="12" * 32)
