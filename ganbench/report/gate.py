"""The regression gate behind ``ganbench check``: a candidate's scores against a baseline's, metric by metric,
with a verdict that does not flip on noise.

Rule (per gated metric m, candidate c, baseline b, both estimates independent):

    d = (c - b)           if higher is better, else (b - c)        (d > 0: the candidate is better)
    s = k_m * sqrt(std_c^2 + std_b^2)                              (combined spread; k_m = spread_scale, default 1)
    z = Phi^-1(1 - alpha / M)                                      (M = number of gated metrics)
    regressed  if d < -(z * s + abs_m + rel_m * |b|)
    improved   if d > z * s
    pass       otherwise

i.e. a one-sided z-test of "the candidate is worse" per metric, Bonferroni-corrected so that the chance that a
candidate equal to the baseline fails on any metric is at most ``alpha`` (default 0.05), widened by the
metric's tolerance (``abs_m`` in the metric's units plus ``rel_m`` of the baseline value). A metric without
a spread on either side is gated by its tolerance alone when one is configured, and otherwise reported but
not gated. Regressions fail the gate (exit 1); improvements are reported. A score that is not a finite
number on either side, a score the baseline has and the candidate lacks, and a baseline holding two results of one
run are errors (exit 2): the gate passes (exit 0) only when every gated metric was computed, finite, and inside its
band.

The spreads come from the results (bootstrap, subset, binomial, ...). Where a metric's reported spread is known
to understate how much the score moves between sampling seeds, ``spread_scale`` in the tolerances file
calibrates it; the defaults (``ganbench/report/tolerances.toml``) record such measurements.

Comparisons are refused, never made, when candidate and baseline differ in dataset, reference split (its
content hash), resolution or resize, extractor (or its weights hash), or sample count: those numbers are not
comparable (FID's bias alone changes with the sample count).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

from ganbench.report.leaderboard import LEADERBOARD_FORMAT, Row, _assign_ranks, _sorted_rows, format_score
from ganbench.results.schema import DatasetInfo, ExtractorInfo, Result, Score
from ganbench.results.store import read_result, read_results

DEFAULT_TOLERANCES = Path(__file__).with_name("tolerances.toml")
PASS, REGRESSED, IMPROVED, NOT_GATED, MISSING, INVALID = "pass", "regressed", "improved", "not gated", "missing", \
    "not finite"


class GateError(ValueError):
    """The comparison cannot be made (missing or unreadable input, incomparable data); exit code 2."""


# ------------------------------------------------------------------------------------------------ tolerances

@dataclass(frozen=True)
class MetricRule:
    abs: float = 0.0  # allowed degradation beyond the noise band, in the metric's units
    rel: float = 0.0  # ... plus this fraction of |baseline value|
    spread_scale: float = 1.0  # multiplies the combined spread: calibrates a spread known to be too small
    skip: bool = False  # reported, never gated
    note: str = ""  # why the rule exists (shown nowhere; for the file's reader)


@dataclass(frozen=True)
class GateConfig:
    alpha: float = 0.05  # family-wise false-alarm rate of the gate over its gated metrics
    rules: dict[str, MetricRule] = field(default_factory=dict)  # metric name -> rule
    source: str = "built-in"  # where the configuration came from

    def rule(self, metric: str) -> MetricRule:
        return self.rules.get(metric, MetricRule())


def _parse_config(doc: dict[str, Any], source: str) -> tuple[float | None, dict[str, MetricRule]]:
    unknown = set(doc) - {"alpha", "metrics"}
    if unknown:
        raise GateError(f"tolerances {source}: unknown top-level keys {sorted(unknown)}; expected alpha and [metrics.NAME]")
    alpha = doc.get("alpha")
    if alpha is not None and not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise GateError(f"tolerances {source}: alpha must be a number in (0, 1), got {alpha!r}")
    rules = {}
    keys = {f.name for f in dataclasses.fields(MetricRule)}
    for name, table in (doc.get("metrics") or {}).items():
        if not isinstance(table, dict):
            raise GateError(f"tolerances {source}: [metrics.{name}] must be a table")
        bad = set(table) - keys
        if bad:
            raise GateError(f"tolerances {source}: [metrics.{name}] has unknown keys {sorted(bad)}; valid: {sorted(keys)}")
        for k in ("abs", "rel", "spread_scale"):
            if k in table and not (isinstance(table[k], (int, float)) and table[k] >= 0):
                raise GateError(f"tolerances {source}: metrics.{name}.{k} must be a number >= 0, got {table[k]!r}")
        rules[name] = MetricRule(**table)
    return alpha, rules


def load_config(path: str | Path | None = None, defaults: bool = True) -> GateConfig:
    """The packaged defaults, with the tables of ``path`` (TOML) replacing them metric by metric.

    Raises:
        GateError: If the file is missing, not TOML, or has unknown keys or bad values.
    """
    alpha, rules, sources = 0.05, {}, []
    files = ([DEFAULT_TOLERANCES] if defaults else []) + ([Path(path)] if path else [])
    for f in files:
        if not f.is_file():
            raise GateError(f"tolerances file {str(f)!r} does not exist")
        try:
            doc = tomllib.loads(f.read_text())
        except tomllib.TOMLDecodeError as e:
            raise GateError(f"tolerances file {str(f)!r} is not valid TOML: {e}") from e
        a, r = _parse_config(doc, repr(str(f)))
        alpha = a if a is not None else alpha
        rules.update(r)
        sources.append(str(f))
    return GateConfig(alpha, rules, " + ".join(sources) or "built-in")


# ------------------------------------------------------------------------------------------------ baselines

@dataclass
class Scored:
    """One side of a comparison: the scores of a result or of a leaderboard row, with what they depend on."""

    name: str  # model name
    where: str  # the file (and table) it came from
    kind: str  # "model" or "reference"
    dataset: DatasetInfo
    extractor: ExtractorInfo | None
    n: int  # generated samples the scores come from
    scores: dict[str, Score]
    table: list[Row] = field(default_factory=list)  # the leaderboard table it belongs to (for the rank)
    sort: str | None = None  # that table's sort metric
    protocol: str = "custom"  # the named protocol the scores follow

    @property
    def label(self) -> str:
        return f"{self.name} ({self.where})"


def scored_from_result(r: Result, where: str) -> Scored:
    if r.dataset is None:
        raise GateError(f"{where}: a throughput-only result (kind {r.kind!r}) has no quality scores to gate")
    return Scored(r.model.name, where, r.kind, r.dataset, r.extractor, int(r.samples.n), dict(r.scores),
                  protocol=r.protocol)


def _score(doc: dict[str, Any], where: str) -> Score:
    try:
        return Score(**doc)
    except TypeError as e:
        raise GateError(f"{where}: not a score: {e}") from e


def _scored_from_leaderboard(doc: dict[str, Any], where: str) -> list[Scored]:
    entries = []
    for t in doc.get("tables", []):
        if t.get("dataset") is None:
            continue  # throughput-only table
        try:
            dataset = DatasetInfo(**t["dataset"])
            extractor = ExtractorInfo(**t["extractor"]) if t.get("extractor") else None
        except TypeError as e:
            raise GateError(f"{where}: table of {t.get('dataset')} is malformed: {e}") from e
        rows = []
        for row in t["rows"]:
            scores = {k: _score(v, f"{where}: {row['model']}.{k}") for k, v in row["scores"].items()}
            rows.append(Row(row["model"], row["kind"], row["task"], scores, row["n"], row.get("seeds", 1),
                            (row.get("weights_sha256") or "–")[:12], row.get("run_ids", []), row.get("weights_sha256"),
                            row.get("rank"), row.get("tied", False)))
        for r in rows:
            entries.append(Scored(r.name, f"{where}, {dataset.name}", r.kind, dataset, extractor, r.n, r.scores,
                                 rows, t.get("sort"), str(t.get("protocol", "custom"))))
    return entries


def load_baseline(path: str | Path) -> list[Scored]:
    """Every comparable entry of a baseline: a leaderboard JSON (``ganbench leaderboard --format json``), a
    result JSON, or a directory of results.

    Raises:
        GateError: If the baseline does not exist or is neither.
    """
    p = Path(path)
    if not p.exists():
        raise GateError(f"baseline {str(p)!r} does not exist")
    if p.is_dir():
        try:
            results = read_results(p)
        except ValueError as e:
            raise GateError(str(e)) from e
        seen: dict[str, int] = {}
        for r in results:
            seen[r.run_id] = seen.get(r.run_id, 0) + 1
        copies = sorted(k for k, v in seen.items() if v > 1)
        if copies:
            raise GateError(f"baseline {str(p)!r} holds several results of one run ({', '.join(copies)}); a copy is not "
                            f"a second measurement: remove the copies")
        return [scored_from_result(r, str(p)) for r in results if r.kind != "bench"]
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GateError(f"baseline {str(p)!r} is not valid JSON: {e}") from e
    if isinstance(doc, dict) and doc.get("format") == LEADERBOARD_FORMAT:
        entries = _scored_from_leaderboard(doc, str(p))
        if not entries:
            raise GateError(f"baseline leaderboard {str(p)!r} has no rows with quality scores")
        return entries
    try:
        return [scored_from_result(Result.from_dict(doc, source=str(p)), str(p))]
    except ValueError as e:
        raise GateError(f"baseline {str(p)!r} is neither a leaderboard JSON ({LEADERBOARD_FORMAT}) nor a result: {e}") from e


def load_candidate(path: str | Path) -> Scored:
    """A results file as the candidate."""
    try:
        return scored_from_result(read_result(path), str(path))
    except ValueError as e:
        raise GateError(str(e)) from e


def select_baseline(entries: list[Scored], row: str | None = None, dataset: str | None = None,
                    candidate_name: str | None = None) -> Scored:
    """The baseline row to compare with: ``row`` (model name) if given, else the only model row, else the row of
    the candidate's model name; restricted to ``dataset`` when given.

    Raises:
        GateError: If no row or several rows fit, listing the rows there are.
    """
    pool = [e for e in entries if dataset is None or e.dataset.name == dataset]
    if not pool:
        have = sorted({e.dataset.name for e in entries})
        raise GateError(f"the baseline is of another dataset: it has rows of {', '.join(have)}, not of {dataset!r}; "
                        f"scores of different data are never compared")
    listing = "; ".join(f"{e.name} [{e.dataset.name}, {e.kind}]" for e in pool)
    if row is not None:
        chosen = [e for e in pool if e.name == row]
        if not chosen:
            raise GateError(f"the baseline has no row {row!r}; its rows: {listing}")
    else:
        models = [e for e in pool if e.kind == "model"]
        chosen = models if len(models) == 1 else [e for e in models if candidate_name and e.name == candidate_name]
        if not chosen:
            raise GateError(f"the baseline has {len(models)} model rows; pick one with --row NAME (and --dataset): {listing}")
    if len(chosen) > 1:
        raise GateError(f"{len(chosen)} baseline rows are named {chosen[0].name!r} (datasets "
                        f"{', '.join(e.dataset.name for e in chosen)}); pick one with --dataset")
    return chosen[0]


def check_comparable(candidate: Scored, baseline: Scored) -> None:
    """Refuse (GateError) unless both were scored under the same protocol, on the same data, extractor and sample
    count."""
    if candidate.protocol != baseline.protocol:
        raise GateError(f"the baseline follows protocol {baseline.protocol!r}, the candidate {candidate.protocol!r}; "
                        f"scores of different protocols are never compared (evaluate the candidate with --protocol "
                        f"{baseline.protocol})" if baseline.protocol != "custom" else
                        f"the baseline follows no named protocol, the candidate {candidate.protocol!r}; scores of "
                        f"different protocols are never compared")
    c, b = candidate.dataset, baseline.dataset
    for key, what in (("name", "dataset"), ("reference_split", "reference split"),
                      ("reference_sha256", "reference split content (sha256)"), ("resolution", "resolution"),
                      ("resize", "resize mode")):
        if getattr(c, key) != getattr(b, key):
            raise GateError(f"the baseline was scored on another {what}: {getattr(b, key)!r}, the candidate on "
                            f"{getattr(c, key)!r}; scores of different data are never compared")
    ce, be = candidate.extractor, baseline.extractor
    c_ext = (ce.name, ce.weights_sha256) if ce else (None, None)
    b_ext = (be.name, be.weights_sha256) if be else (None, None)
    if c_ext != b_ext:
        raise GateError(f"the baseline was scored with another extractor: {b_ext[0]!r} (weights {str(b_ext[1])[:12]}), "
                        f"the candidate with {c_ext[0]!r} (weights {str(c_ext[1])[:12]}); features of different "
                        f"extractors are never compared")
    if candidate.n != baseline.n:
        raise GateError(f"the baseline scores come from {baseline.n} samples, the candidate's from {candidate.n}; FID, "
                        f"KID and precision/recall depend on the sample count: evaluate the candidate with -n {baseline.n}")


# ------------------------------------------------------------------------------------------------ decision

@dataclass
class MetricVerdict:
    metric: str
    higher_is_better: bool | None
    candidate: Score | None
    baseline: Score | None
    verdict: str  # pass, regressed, improved, not gated, missing
    z: float | None  # improvement over the combined (scaled) spread; None without spreads
    threshold: float | None  # z * s + tolerance: how far worse the candidate may be and still pass
    reason: str


@dataclass
class GateReport:
    candidate: Scored
    baseline: Scored
    config: GateConfig
    z_crit: float  # per-metric one-sided critical value after the Bonferroni correction
    verdicts: list[MetricVerdict]
    rank: str | None = None  # where the candidate would rank in the baseline's leaderboard table

    @property
    def regressed(self) -> list[str]:
        return [v.metric for v in self.verdicts if v.verdict == REGRESSED]

    @property
    def errors(self) -> list[str]:
        """Metrics that could not be compared: missing from the candidate, or not finite on either side."""
        return [v.metric for v in self.verdicts if v.verdict in (MISSING, INVALID)]

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 1 if self.regressed else 0


def _gated(metric: str, c: Score, b: Score, config: GateConfig) -> bool:
    rule = config.rule(metric)
    has_spread = c.std is not None and b.std is not None
    return not rule.skip and (has_spread or rule.abs > 0 or rule.rel > 0)


def decide(metric: str, c: Score, b: Score, rule: MetricRule, z_crit: float) -> MetricVerdict:
    """The verdict of one metric under the rule in the module docstring."""
    hib = b.higher_is_better
    sign = 1.0 if hib else -1.0
    allowance = rule.abs + rule.rel * abs(b.value) if math.isfinite(b.value) else rule.abs
    has_spread = c.std is not None and b.std is not None
    if rule.skip:
        return MetricVerdict(metric, hib, c, b, NOT_GATED, None, None, "skipped by the tolerances")
    for side, score in (("candidate", c), ("baseline", b)):
        bad = [f"{k}={getattr(score, k)!r}" for k in ("value", "std") if getattr(score, k) is not None
               and (not isinstance(getattr(score, k), (int, float)) or not math.isfinite(getattr(score, k)))]
        if bad:
            return MetricVerdict(metric, hib, c, b, INVALID, None, None, f"the {side}'s score is not a finite "
                                                                       f"number ({', '.join(bad)})")
    if not has_spread and allowance == 0:
        return MetricVerdict(metric, hib, c, b, NOT_GATED, None, None, "no spread on one side and no tolerance")
    spread = rule.spread_scale * math.hypot(c.std, b.std) if has_spread else 0.0
    band = z_crit * spread
    if c.value == b.value:
        return MetricVerdict(metric, hib, c, b, PASS, 0.0, band + allowance, "equal")
    d = sign * (c.value - b.value)  # +-inf when one side is infinite
    z = (d / spread) if spread > 0 else math.copysign(math.inf, d)
    if d < -(band + allowance):
        verdict, reason = REGRESSED, "worse by more than the noise band and tolerance"
    elif d > band:
        verdict, reason = IMPROVED, "better by more than the noise band"
    else:
        verdict, reason = PASS, "difference inside the noise band" if abs(d) <= band else "inside the tolerance"
    return MetricVerdict(metric, hib, c, b, verdict, z, band + allowance, reason)


def _candidate_rank(candidate: Scored, baseline: Scored) -> str | None:
    if not baseline.table or not baseline.sort or baseline.sort not in candidate.scores:
        return None
    me = Row("(candidate)", "model", "", candidate.scores, candidate.n, 1, "")
    rows = _sorted_rows([dataclasses.replace(r) for r in baseline.table] + [me], baseline.sort)
    _assign_ranks(rows, baseline.sort)
    models = sum(r.kind != "reference" for r in rows)
    mine = next(r for r in rows if r is me)
    mates = [r.name for r in rows if r is not me and r.rank == mine.rank and r.kind != "reference"]
    tie = f", tied with {', '.join(mates)}" if mates else ""
    return f"{mine.rank} of {models} by {baseline.sort}{tie}"


def compare(candidate: Scored, baseline: Scored, config: GateConfig | None = None,
            metrics: list[str] | None = None) -> GateReport:
    """Every metric's verdict; refuses (GateError) incomparable inputs or a comparison with nothing to gate.

    Args:
        metrics: Gate only these (each must be in both); default: every score both carry.
    """
    config = config or load_config()
    check_comparable(candidate, baseline)
    if metrics:
        for m in metrics:
            for side, e in (("candidate", candidate), ("baseline", baseline)):
                if m not in e.scores:
                    raise GateError(f"metric {m!r} is not a score of the {side} ({', '.join(sorted(e.scores))})")
        names = list(metrics)
    else:
        names = [m for m in baseline.scores if m in candidate.scores]
    gated = [m for m in names if _gated(m, candidate.scores[m], baseline.scores[m], config)]
    if not gated:
        raise GateError(f"no metric to gate: candidate and baseline share {names or 'no scores'}, none with spreads or "
                        f"tolerances")
    z_crit = NormalDist().inv_cdf(1 - config.alpha / len(gated))
    verdicts = [decide(m, candidate.scores[m], baseline.scores[m], config.rule(m), z_crit) for m in names]
    if not metrics:
        verdicts += [MetricVerdict(m, s.higher_is_better, None, s, MISSING, None, None, "not in the candidate")
                     for m, s in baseline.scores.items() if m not in candidate.scores]
    return GateReport(candidate, baseline, config, z_crit, verdicts, _candidate_rank(candidate, baseline))


# ------------------------------------------------------------------------------------------------ summary

_MARK = {PASS: "pass", REGRESSED: "**REGRESSED**", IMPROVED: "improved", NOT_GATED: "not gated",
         MISSING: "**ERROR: missing**", INVALID: "**ERROR: not finite**"}


def render_summary(report: GateReport) -> str:
    """Markdown for CI logs: the verdict, what was compared, and one line per metric."""
    c, b = report.candidate, report.baseline
    n_gated = sum(v.verdict in (PASS, REGRESSED, IMPROVED) for v in report.verdicts)
    if report.errors:
        verdict = f"ERROR ({', '.join(report.errors)}: not compared)"
    elif report.regressed:
        verdict = f"REGRESSED ({', '.join(report.regressed)})"
    else:
        verdict = "PASS"
    head = f"## ganbench check: {verdict}"
    e = c.extractor
    lines = [head, "",
             f"- candidate: {c.label}",
             f"- baseline: {b.label}",
             f"- data: `{c.dataset.name}/{c.dataset.reference_split}` (sha256 {c.dataset.reference_sha256[:12]}…), "
             f"extractor `{e.name if e else 'none'}`" + (f" (weights {e.weights_sha256[:12]}…)" if e and e.weights_sha256 else "")
             + f", n = {c.n}",
             f"- rule: regressed when worse by more than z·√(σc² + σb²)·scale + tolerance, z = {report.z_crit:.3f} "
             f"(one-sided, alpha {report.config.alpha} Bonferroni-corrected over {n_gated} gated metrics); "
             f"tolerances: {report.config.source}"]
    if report.rank:
        lines.append(f"- rank among the baseline's rows: {report.rank}")
    lines.append("")
    table = ["| metric | baseline | candidate | z | allowed worse by | verdict |", "|---|---:|---:|---:|---:|---|"]
    for v in report.verdicts:
        arrow = "" if v.higher_is_better is None else (" ↑" if v.higher_is_better else " ↓")
        bs = format_score(v.metric, v.baseline) if v.baseline else "–"
        cs = format_score(v.metric, v.candidate) if v.candidate else "–"
        z = "–" if v.z is None else ("∞" if math.isinf(v.z) and v.z > 0 else "-∞" if math.isinf(v.z) else f"{v.z:+.2f}")
        thr = "–" if v.threshold is None else f"{v.threshold:.4g}"
        table.append(f"| {v.metric}{arrow} | {bs} | {cs} | {z} | {thr} | {_MARK[v.verdict]} |")
    return "\n".join(lines + table) + "\n"


def report_document(report: GateReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (``ganbench check --json``)."""
    verdict = "error" if report.errors else REGRESSED if report.regressed else PASS
    return {"verdict": verdict, "exit_code": report.exit_code,
            "candidate": report.candidate.label, "baseline": report.baseline.label, "alpha": report.config.alpha,
            "z_crit": report.z_crit, "rank": report.rank,
            "metrics": [{"metric": v.metric, "verdict": v.verdict, "z": v.z, "threshold": v.threshold,
                         "candidate": dataclasses.asdict(v.candidate) if v.candidate else None,
                         "baseline": dataclasses.asdict(v.baseline) if v.baseline else None, "reason": v.reason}
                        for v in report.verdicts]}


# ------------------------------------------------------------------------------------------------ evaluation

def expand_scores(names: list[str]) -> list[str]:
    """Score names for ``names``, where a metric's registry name stands for its scores (``prc`` -> precision,
    recall); other names are kept as they are (a result may carry scores no registered metric computes)."""
    from ganbench.registry import METRICS

    out: list[str] = []
    for name in names:
        scores = METRICS.meta(name).get("higher_is_better", {}) if name in METRICS else {}
        for s in ([name] if name in scores or not scores else list(scores)):
            if s not in out:
                out.append(s)
    return out


def metrics_for_scores(scores: list[str]) -> list[str]:
    """The registered metrics that compute ``scores`` (``precision`` comes from ``prc``), in registry order.

    Raises:
        GateError: Naming a score that no registered metric computes.
    """
    from ganbench.registry import METRICS

    producers = {score: m for m in METRICS.list() for score in METRICS.meta(m).get("higher_is_better", {})}
    unknown = [s for s in scores if s not in producers]
    if unknown:
        raise GateError(f"no registered metric computes {unknown}; scores: {', '.join(sorted(producers))}")
    return sorted({producers[s] for s in scores})


def baseline_protocol(baseline: Scored, n: int, seed: int, heldout_split: str | None, metrics: tuple[str, ...],
                      extractor: str, reference: str | None = None):
    """The protocol a candidate model is scored under to compare with ``baseline``: the baseline's named protocol,
    or one rebuilt from what it records (dataset and split, resolution, resize mode, extractor). A folder or
    statistics-file reference is found where the baseline read it, unless ``reference`` names it; either way its
    content hash must match the baseline's (``check_comparable``)."""
    import dataclasses

    from ganbench.data.resize import RESIZE_MODES
    from ganbench.protocols import Protocol, get_protocol
    from ganbench.registry import PROTOCOLS

    ds = baseline.dataset
    if reference is None and ds.name.startswith(("folder:", "stats:")):
        reference = ds.source
    mode = ds.resize.split("+")[-1]
    resize = mode if mode in RESIZE_MODES and mode != "none" else "bilinear"
    if baseline.protocol in PROTOCOLS:
        named = get_protocol(baseline.protocol).protocol(ds.name, seed, ds.resolution, reference, heldout_split)
        return dataclasses.replace(named, n=n)
    dataset = ds.name if reference is None else ds.name.split(":")[0]
    return Protocol(dataset, extractor, n, seed, ds.resolution, ds.reference_split, heldout_split, metrics, reference,
                    resize)


def evaluate_generator(source: str, baseline: Scored, n: int | None = None, seed: int = 12345,
                       heldout_split: str = "test", metrics: list[str] | None = None, progress: bool = False,
                       timeout: float | None = None, reference: str | None = None) -> Result:
    """Score a generator (weights file, ``FILE.py:NAME`` or registered user model) on the baseline's data:
    same dataset, reference split, resolution and extractor, ``n`` samples (default: the baseline's), with
    the metrics behind ``metrics`` (score names; default: the baseline's scores).

    Raises:
        GateError: If the generator cannot be loaded or the data cannot be rebuilt as the baseline had it.
    """
    from ganbench.evaluate import Row, evaluate
    from ganbench.registry import EXTRACTORS, METRICS
    from ganbench.zoo.user import resolve_generator

    ds, ext = baseline.dataset, baseline.extractor
    n = n or baseline.n
    ext_name = ext.name if ext else "points2d"
    if ext_name not in EXTRACTORS:
        raise GateError(EXTRACTORS._unknown_message(ext_name))
    if metrics:
        metric_names = metrics_for_scores(metrics)
    else:  # compute what will be compared: the metrics behind the baseline's scores
        known = {s for m in METRICS.list() for s in METRICS.meta(m).get("higher_is_better", {})}
        metric_names = metrics_for_scores([s for s in baseline.scores if s in known])
    try:
        gen = resolve_generator(source, timeout=timeout)
        protocol = baseline_protocol(baseline, n, seed, None if heldout_split == "none" else heldout_split,
                                     tuple(metric_names), ext_name, reference)
        return evaluate(protocol, model=gen, row=Row(name=gen.entry.name), progress=progress)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as e:
        raise GateError(str(e)) from e
