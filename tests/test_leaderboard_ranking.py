"""Leaderboard ranking, ties, grouping, formats and the throughput join (ganbench.report.leaderboard).

Oracles: ranks and ties worked out by hand from the tie rule |a - b| <= 1.96 sqrt(sa^2 + sb^2); a golden
markdown file (regenerate with GANBENCH_UPDATE_GOLDEN=1 and read the diff); CSV and JSON values read back
against the results they came from.
"""

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.report.leaderboard import build_tables, difference_z, render, render_markdown, tied
from ganbench.results.schema import SampleInfo, Score
from ganbench.results.store import write_result

GOLDEN = Path(__file__).parent / "golden" / "leaderboard_ties.md"


@pytest.fixture
def result(make_result):
    """A result with a chosen fid and spread, a fixed creation time, and weights named by its run id."""

    def _result(run_id, name, fid, fid_std=0.5, kind="model", task="unconditional", dataset="mnist", extra=None,
                reference_row=None):
        r = make_result(run_id, fid=fid, kind=kind, name=name, dataset=dataset, reference_row=reference_row)
        r.task = task
        r.scores["fid"] = Score(fid, fid_std, fid - 2 * fid_std, fid + 2 * fid_std, 1000, False, "bootstrap(100)")
        r.model.weights_sha256 = None if kind == "reference" else hashlib.sha256(run_id.encode()).hexdigest()
        r.provenance.created_utc = "2026-01-01T00:00:00+00:00"
        for k, v in (extra or {}).items():
            r.scores[k] = v
        return r

    return _result


@pytest.fixture
def board(result):
    # By hand, sorted by fid: real 0.5 (ref); A 10.0 +- 0.5; B 10.9 +- 0.5 (|d| = 0.9 <= 1.96*0.707 = 1.39: ties A);
    # C 11.6 +- 0.5 (vs leader A: 1.6 > 1.39: new rank 3 even though it would tie B); D 30 +- 0; untrained 900 (ref)
    return [result("a", "alpha", 10.0), result("b", "beta", 10.9), result("c", "gamma", 11.6),
            result("d", "delta", 30.0, fid_std=0.0), result("real", "real data (test split)", 0.5, kind="reference"),
            result("untr", "dcgan (untrained)", 900.0, kind="reference", reference_row="untrained")]


def test_difference_z_and_tie_rule_match_the_closed_form():
    a, b = Score(10.0, 0.3, None, None, 1, False, ""), Score(11.0, 0.4, None, None, 1, False, "")
    assert difference_z(a, b) == pytest.approx(-1.0 / 0.5)  # sqrt(0.09 + 0.16) = 0.5
    assert not tied(a, b)  # |z| = 2 > 1.96
    assert tied(a, dataclasses.replace(b, std=0.45))  # |z| = 1 / sqrt(0.09 + 0.2025) = 1.85
    assert not tied(a, dataclasses.replace(b, std=0.3))  # |z| = 1 / 0.424 = 2.36
    no_spread = Score(10.0, None, None, None, 1, False, "")
    assert difference_z(no_spread, b) is None and not tied(no_spread, b)
    assert tied(no_spread, dataclasses.replace(no_spread))  # equal values tie without spreads
    assert difference_z(Score(float("inf"), 0.0, None, None, 1, False, ""), a) == float("inf")


def test_ranks_ties_and_reference_rows(board):
    (table,) = build_tables(board)
    got = [(r.name, r.rank, r.tied) for r in table.rows]
    assert got == [("real data (test split)", None, False), ("alpha", 1, True), ("beta", 1, True),
                   ("gamma", 3, False), ("delta", 4, False), ("dcgan (untrained)", None, False)]


def test_sort_by_another_metric_follows_its_direction(board):
    results = board
    for r, p in zip(results, (0.50, 0.90, 0.70, 0.10, 0.95, 0.0)):
        r.scores["precision"] = Score(p, 0.01, None, None, 1000, True, "binomial")
    (table,) = build_tables(results, sort="precision")
    assert table.sort == "precision"
    assert [r.name for r in table.rows if r.kind == "model"] == ["beta", "gamma", "alpha", "delta"]
    assert [r.rank for r in table.rows if r.kind == "model"] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="sort metric 'bogus'.*scores present: fid, is, precision"):
        build_tables(results, sort="bogus")


def test_grouped_by_dataset_and_task_with_references_in_each(board, result):
    results = board + [result("p", "pix", 5.0, task="class_conditional"),
                       result("o", "other", 3.0, dataset="digits8")]
    tables = build_tables(results)
    keys = [(t.dataset.name, t.task) for t in tables]
    assert keys == [("digits8", "unconditional"), ("mnist", "class_conditional"), ("mnist", "unconditional")]
    cond = tables[1]
    assert [r.name for r in cond.rows] == ["real data (test split)", "pix", "dcgan (untrained)"]
    md = render_markdown(results, title="T")
    assert md.index("## digits8 · unconditional") < md.index("## mnist · class_conditional") \
        < md.index("## mnist · unconditional")


def test_markdown_matches_the_golden_file(board):
    md = render_markdown(board, title="Ties") + "\n"
    if os.environ.get("GANBENCH_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(md)
    assert md == GOLDEN.read_text()
    assert "1=" in md.split("**alpha**")[0].splitlines()[-1] and "1=" in md.split("**beta**")[0].splitlines()[-1]
    assert "extractor `mnist_cnn` (weights sha256 efefefefefef…)" in md and "fid ↓" in md and "is ↑" in md


def test_csv_and_json_carry_every_value_spread_and_rank(board):
    results = board
    frame = pd.read_csv(io.StringIO(render(results, "csv")))
    row = frame.set_index("model").loc["beta"]
    assert row["rank"] == 1 and bool(row["tied"]) and row["fid"] == 10.9 and row["fid_std"] == 0.5
    assert row["fid_ci_low"] == pytest.approx(9.9) and row["n"] == 1000 and row["extractor"] == "mnist_cnn"
    assert pd.isna(frame.set_index("model").loc["real data (test split)", "rank"])
    doc = json.loads(render(results, "json", title="T"))
    assert doc["format"] == "ganbench.leaderboard/1"
    (t,) = doc["tables"]
    assert t["dataset"]["reference_sha256"] == "cd" * 32 and t["extractor"]["weights_sha256"] == "ef" * 32
    assert t["metrics"]["fid"] == {"higher_is_better": False} and t["sort"] == "fid"
    gamma = next(r for r in t["rows"] if r["model"] == "gamma")
    assert gamma["rank"] == 3 and gamma["scores"]["fid"]["value"] == 11.6 and gamma["run_ids"] == ["c"]
    with pytest.raises(ValueError, match="format 'xml'"):
        render(results, "xml")


@pytest.fixture
def bench(make_result):
    """A throughput result of one zoo entry and config."""

    def _bench(run_id, entry, config, images_per_s, created="2026-01-02T00:00:00+00:00", precision="fp32"):
        r = make_result(run_id)
        r.kind, r.dataset, r.extractor = "bench", None, None
        r.model.name, r.model.entry, r.model.config, r.model.weights_sha256 = entry, entry, config, None
        r.samples = SampleInfo(10, "random", model=entry)
        r.scores = {"images_per_s": Score(images_per_s, images_per_s * 0.05, None, None, 10, True, "median"),
                    "peak_memory_mb": Score(100.0, None, None, None, 1, False, "one measurement")}
        r.provenance.created_utc = created
        r.bench = {"settings": {"precision": precision, "compile": False, "channels_last": False}}
        return r

    return _bench


def test_throughput_results_join_their_model_rows_as_plain_columns(board, bench):
    quality = board
    alpha = quality[0]
    alpha.model.entry, alpha.model.config = "dcgan", {"ngf": 32}
    benches = [bench("b1", "dcgan", {"ngf": 32}, 500.0, created="2026-01-01T00:00:00+00:00"),
               bench("b2", "dcgan", {"ngf": 32}, 800.0),  # newer fp32: joined
               bench("b3", "dcgan", {"ngf": 32}, 5000.0, created="2026-01-03T00:00:00+00:00", precision="bf16"),
               bench("b4", "stylegan", {"w": 1}, 42.0)]  # matches no quality row: own table
    tables = build_tables(quality + benches)
    main_table, throughput = tables
    row = next(r for r in main_table.rows if r.name == "alpha")
    assert row.scores["images_per_s"].value == 800.0 and "peak_memory_mb" in row.scores
    assert "images_per_s" in main_table.metrics
    assert throughput.dataset is None and [r.name for r in throughput.rows] == ["stylegan"]
    md = render_markdown(quality + benches)
    assert "images_per_s ↑" in md and "800 ± 40" in md and "## throughput · unconditional" in md


def test_cli_writes_every_format_and_sorts(tmp_path, board):
    for r in board:
        write_result(r, tmp_path / "res")
    runner = CliRunner()
    for out, fmt in (("b.md", None), ("b.csv", None), ("b.json", None), ("b.txt", "json")):
        args = ["leaderboard", str(tmp_path / "res"), "--out", str(tmp_path / out), "--sort", "fid"]
        res = runner.invoke(main, args + (["--format", fmt] if fmt else []))
        assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b.json").read_text())["tables"][0]["rows"][1]["model"] == "alpha"
    assert json.loads((tmp_path / "b.txt").read_text())["format"] == "ganbench.leaderboard/1"
    assert (tmp_path / "b.csv").read_text().startswith("rank,tied,dataset")
    assert (tmp_path / "b.md").read_text().startswith("# ganbench leaderboard")
    res = runner.invoke(main, ["leaderboard", str(tmp_path / "res"), "--out", str(tmp_path / "x.md"), "--sort", "kdi"])
    assert res.exit_code == 2 and "sort metric 'kdi'" in res.output
