"""The regression gate (ganbench.report.gate, `ganbench check`): the decision rule against hand-computed
numbers, tolerance files, refusals of incomparable or missing baselines (exit 2), and the end-to-end
oracle: the same model at two sampling seeds passes (exit 0), a planted blurred model regresses (exit 1).
"""

import json
import math
from statistics import NormalDist

import pytest
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.report import gate
from ganbench.report.leaderboard import render_json
from ganbench.results.schema import Score
from ganbench.results.store import write_result

PLANTED = "tests/planted_models.py:BlurredLinearGenerator"
EXAMPLE = "examples/my_gan/my_gan.py:LinearGenerator"
FAST = "fid,kid,prc,is"  # the metrics the end-to-end test scores (the slower ndb, ms_ssim, dc are left out)


def _s(value, std, hib=False):
    return Score(value, std, None, None, 1000, hib, "test")


def test_decision_rule_matches_hand_computation():
    z = NormalDist().inv_cdf(1 - 0.05 / 4)  # four gated metrics: 2.2414
    assert z == pytest.approx(2.2414, abs=1e-4)
    rule = gate.MetricRule()
    # fid (lower is better): candidate 10.9 vs 10.0, spreads 0.3 and 0.4 -> d = -0.9, s = 0.5, band 1.12: pass
    v = gate.decide("fid", _s(10.9, 0.3), _s(10.0, 0.4), rule, z)
    assert v.verdict == gate.PASS and v.z == pytest.approx(-1.8) and v.threshold == pytest.approx(z * 0.5)
    # 11.2 vs 10.0: d = -1.2 < -1.12: regressed; with abs = 0.1 allowed: -1.2 < -1.22 is false: pass
    assert gate.decide("fid", _s(11.2, 0.3), _s(10.0, 0.4), rule, z).verdict == gate.REGRESSED
    assert gate.decide("fid", _s(11.2, 0.3), _s(10.0, 0.4), gate.MetricRule(abs=0.1), z).verdict == gate.PASS
    # rel = 5% of the baseline value 10 -> 0.5 more allowed
    assert gate.decide("fid", _s(11.6, 0.3), _s(10.0, 0.4), gate.MetricRule(rel=0.05), z).verdict == gate.PASS
    # spread_scale 2 doubles the band: 2.24
    assert gate.decide("fid", _s(12.2, 0.3), _s(10.0, 0.4), gate.MetricRule(spread_scale=2), z).verdict == gate.PASS
    # better beyond the band, in each direction
    assert gate.decide("fid", _s(8.0, 0.3), _s(10.0, 0.4), rule, z).verdict == gate.IMPROVED
    assert gate.decide("is", _s(9.0, 0.1, True), _s(8.0, 0.1, True), rule, z).verdict == gate.IMPROVED
    assert gate.decide("is", _s(7.0, 0.1, True), _s(8.0, 0.1, True), rule, z).verdict == gate.REGRESSED
    # no spread: not gated unless a tolerance exists; then the tolerance alone decides
    assert gate.decide("nn_ratio", _s(1.0, None, True), _s(2.0, None, True), rule, z).verdict == gate.NOT_GATED
    assert gate.decide("nn_ratio", _s(1.0, None, True), _s(2.0, None, True), gate.MetricRule(abs=0.5), z).verdict \
        == gate.REGRESSED
    assert gate.decide("fid", _s(11.0, 0.3), _s(10.0, 0.4), gate.MetricRule(skip=True), z).verdict == gate.NOT_GATED
    # zero spreads: any worse value regresses, an equal one passes; an infinite KL is no comparison at all (an error,
    # exit 2), never a pass
    assert gate.decide("modes", _s(7.0, 0.0, True), _s(8.0, 0.0, True), rule, z).verdict == gate.REGRESSED
    assert gate.decide("modes", _s(8.0, 0.0, True), _s(8.0, 0.0, True), rule, z).verdict == gate.PASS
    assert gate.decide("reverse_kl", _s(math.inf, 0.0), _s(0.04, 0.007), rule, z).verdict == gate.INVALID


def test_bonferroni_counts_only_gated_metrics(make_result):
    base = make_result("b")
    cand = make_result("c")
    base.scores["nn_ratio"] = cand.scores["nn_ratio"] = _s(2.0, None, True)  # no spread: not gated
    report = gate.compare(gate.scored_from_result(cand, "c"), gate.scored_from_result(base, "b"),
                          gate.GateConfig(alpha=0.05))
    assert report.z_crit == pytest.approx(NormalDist().inv_cdf(1 - 0.05 / 2))  # fid and is
    assert {v.metric: v.verdict for v in report.verdicts} == {"fid": "pass", "is": "pass", "nn_ratio": "not gated"}


def test_tolerance_files_merge_over_defaults_and_bad_ones_are_named(tmp_path):
    defaults = gate.load_config()
    assert defaults.rule("recall").spread_scale > 1 and defaults.alpha == 0.05
    f = tmp_path / "tol.toml"
    f.write_text('alpha = 0.01\n[metrics.recall]\nabs = 0.02\n[metrics.kid]\nskip = true\n')
    cfg = gate.load_config(f)
    assert cfg.alpha == 0.01 and cfg.rule("recall") == gate.MetricRule(abs=0.02) and cfg.rule("kid").skip
    assert cfg.rule("fid_inf").spread_scale == defaults.rule("fid_inf").spread_scale
    for text, message in (("[metrics.fid]\nabsolute = 1\n", "unknown keys \\['absolute'\\]"),
                          ("alpha = 2\n", "alpha must be a number in \\(0, 1\\)"),
                          ("[metrics.fid]\nabs = -1\n", "metrics.fid.abs must be a number >= 0"),
                          ("beta = 1\n", "unknown top-level keys"), ("[metrics\n", "not valid TOML")):
        f.write_text(text)
        with pytest.raises(gate.GateError, match=message):
            gate.load_config(f)
    with pytest.raises(gate.GateError, match="does not exist"):
        gate.load_config(tmp_path / "missing.toml")


@pytest.fixture
def files(make_result):
    """Baseline and candidate result files (fid 10 and ``cand_fid``), the candidate changed by ``change``."""

    def _files(tmp_path, cand_fid=12.0, change=None):
        base, cand = make_result("base", fid=10.0), make_result("cand", fid=cand_fid)
        if change:
            change(cand)
        return write_result(base, tmp_path / "b"), write_result(cand, tmp_path / "c")

    return _files


def _check(args):
    return CliRunner().invoke(main, ["check", *args])


def test_cli_exit_codes_pass_regressed_and_markdown_summary(tmp_path, files):
    b, c = files(tmp_path, cand_fid=10.5)  # d = 0.5 against s = 0.707 * 1.5 (default fid scale): pass
    res = _check([str(c), "--against", str(b)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("## ganbench check: PASS") and "| fid ↓ | 10.00 ± 0.50 | 10.50 ± 0.50 |" in res.output
    b, c = files(tmp_path, cand_fid=14.0)
    res = _check([str(c), "--against", str(b)])
    assert res.exit_code == 1 and "REGRESSED (fid)" in res.output and "**REGRESSED**" in res.output
    res = _check([str(c), "--against", str(b), "--json"])
    doc = json.loads(res.output)
    assert res.exit_code == 1 and doc["verdict"] == "regressed" and doc["metrics"][0]["metric"] == "fid"


def test_cli_refuses_missing_or_incomparable_baselines_with_exit_2(tmp_path, files):
    b, c = files(tmp_path)
    res = _check([str(c), "--against", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "baseline" in res.output and "does not exist" in res.output
    (tmp_path / "junk.json").write_text("{not json")
    res = _check([str(c), "--against", str(tmp_path / "junk.json")])
    assert res.exit_code == 2 and "not valid JSON" in res.output
    cases = {"dataset": ("another dataset", lambda r: setattr(r.dataset, "name", "digits8")),
             "split": ("reference split content", lambda r: setattr(r.dataset, "reference_sha256", "00" * 32)),
             "extractor": ("another extractor", lambda r: setattr(r.extractor, "name", "inception_v3_fid")),
             "weights": ("another extractor", lambda r: setattr(r.extractor, "weights_sha256", "11" * 32)),
             "n": ("evaluate the candidate with -n 1000", lambda r: setattr(r.samples, "n", 500))}
    for what, (message, change) in cases.items():
        b, c = files(tmp_path / what, change=change)
        res = _check([str(c), "--against", str(b)])
        assert res.exit_code == 2, (what, res.output)
        assert message in res.output and "regressed" not in res.output.lower(), what
    b, c = files(tmp_path / "tol")
    (tmp_path / "bad.toml").write_text("[metrics.fid]\nbogus = 1\n")
    res = _check([str(c), "--against", str(b), "--tolerances", str(tmp_path / "bad.toml")])
    assert res.exit_code == 2 and "bogus" in res.output
    res = _check([str(c), "--against", str(b), "--metrics", "lpips_diversity"])
    assert res.exit_code == 2 and "not a score of the candidate" in res.output
    res = _check(["no/such/model.py:G", "--against", str(b)])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_leaderboard_baseline_rows_are_selected_and_the_candidate_ranked(tmp_path, make_result):
    rows = [make_result("r1", fid=10.0, name="dcgan"), make_result("r2", fid=20.0, name="lsgan"),
            make_result("r3", fid=0.5, kind="reference", name="real data (test split)"),
            make_result("r4", fid=10.0, name="dcgan", dataset="digits8")]
    board = tmp_path / "board.json"
    board.write_text(render_json(rows))
    cand = write_result(make_result("c", fid=10.4, name="mine"), tmp_path / "c")
    res = _check([str(cand), "--against", str(board)])
    assert res.exit_code == 2 and "pick one with --row" in res.output and "lsgan [mnist, model]" in res.output
    res = _check([str(cand), "--against", str(board), "--row", "dcgan"])
    assert res.exit_code == 0, res.output
    assert "rank among the baseline's rows: 1 of 3 by fid, tied with dcgan" in res.output
    res = _check([str(cand), "--against", str(board), "--row", "lsgan"])
    assert res.exit_code == 0 and "improved" in res.output
    res = _check([str(cand), "--against", str(board), "--row", "dcgan", "--dataset", "digits8"])
    assert res.exit_code == 2 and "another dataset" in res.output
    res = _check([str(cand), "--against", str(board), "--row", "stylegan"])
    assert res.exit_code == 2 and "no row 'stylegan'" in res.output


@pytest.fixture(scope="module")
def linear_baseline(tmp_path_factory):
    """The example model scored at seed 1 on 300 samples through the CLI, against the 1000 test digits (a short
    feature pass; `check` takes the reference split from the baseline)."""
    out = tmp_path_factory.mktemp("baseline")
    res = CliRunner().invoke(main, ["eval", EXAMPLE, "--dataset", "mnist", "--split", "test", "--resolution", "32",
                                    "-n", "300", "--metrics", FAST, "--seed", "1", "--heldout-split", "none",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    (path,) = out.glob("*.json")
    return path


def test_same_model_at_another_seed_passes_and_blurred_samples_regress(linear_baseline, tmp_path):
    res = _check([EXAMPLE, "--against", str(linear_baseline), "--seed", "2", "--heldout-split", "none",
                  "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output and "REGRESSED" not in res.output
    (again,) = tmp_path.glob("*.json")
    assert json.loads(again.read_text())["samples"]["seed"] == 2  # a new draw, not the baseline's samples
    res = _check([PLANTED, "--against", str(linear_baseline), "--seed", "2", "--heldout-split", "none"])
    assert res.exit_code == 1, res.output
    verdicts = {line.split("|")[1].strip().split(" ")[0]: line.split("|")[-2].strip()
                for line in res.output.splitlines() if line.startswith("| ") and "metric" not in line}
    assert verdicts["fid"] == "**REGRESSED**" and verdicts["kid"] == "**REGRESSED**"
