"""Leaderboards from result documents: tables per dataset, extractor and task kind, ranked with ties.

Tables follow lm-eval's ``utils.make_table``: an arrow in each column header says which way is better, each
cell is "value ± std", and the header names what every number depends on (reference split and its hash,
extractor and its weights hash, sample count). Every score a result carries becomes a column: a throughput
score written by a bench step is rendered like FID, in its own direction.

Ranking: rows are sorted by one metric (FID by default). Reference rows (held-out real data, an untrained
generator) keep their sorted position but take no rank. A model row ties with the leader of the tie group
above it when the difference of their values lies inside the 95% interval of the difference,
``|a - b| <= 1.96 * sqrt(std_a^2 + std_b^2)`` (two independent normal estimates); tied rows share the
leader's rank and are marked "=". A row without a spread ties only on an equal value.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ganbench.results.schema import DatasetInfo, ExtractorInfo, Result, Score

LEADERBOARD_FORMAT = "ganbench.leaderboard/1"
TIE_Z = 1.96  # half-width of the two-sided 95% interval of a difference, in combined standard deviations
DEFAULT_SORT = ("fid", "modes", "stacked_modes")  # the first one a table has sorts it unless told otherwise

def md_text(text: object) -> str:
    """Text from a result (a model or dataset name, a path) safe inside a markdown table: HTML special characters
    escaped (a name cannot inject markup), pipes and backticks escaped (it cannot break the table)."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("`", "\\`")


def csv_text(text: object) -> str:
    """Text from a result safe in a CSV cell: HTML escaped, and a leading formula character neutralised (a
    spreadsheet would evaluate ``=...``)."""
    text = html.escape(str(text), quote=False)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _fmt(x: float | None, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.{digits}f}"


def _display(name: str):
    from ganbench.metrics import score_info

    return score_info(name)


def score_group(name: str) -> str:
    """The table a score is shown in: "fidelity", "diversity" or "hidden" (the metric registry says; a score no
    registered metric computes, such as throughput, is shown with the fidelity scores)."""
    info = _display(name)
    return info.group if info is not None else "fidelity"


def _digits(name: str, value: float | None) -> int:
    info = _display(name)
    if info is not None and info.digits is not None:
        d = info.digits
        if info.min_significant and value is not None and math.isfinite(value) and value != 0:
            d = max(d, min(5, info.min_significant - int(math.floor(math.log10(abs(value)))) - 1))
        return d
    # no fixed decimals: three significant digits, at most 4 decimals
    if value is None or not math.isfinite(value) or value == 0:
        return 2
    return int(min(4, max(0, 2 - math.floor(math.log10(abs(value))))))


def format_score(name: str, s: Score) -> str:
    """``value ± std`` with the decimals the metric registry gives the score; "≥" marks a lower bound."""
    info = _display(name)
    if info is not None and info.significant and s.value is not None and math.isfinite(s.value):
        text = f"{s.value:.{info.significant}g}"
        return f"≥ {text}" if s.method.startswith("lower bound") else text
    d = _digits(name, s.value)
    return _fmt(s.value, d) if s.std is None else f"{_fmt(s.value, d)} ± {_fmt(s.std, d)}"


def ordered_scores(present: set[str]) -> list[str]:
    """Scores in the order of the metric registry, then scores no registered metric computes, by name."""
    from ganbench.metrics import score_order

    known = [m for m in score_order() if m in present]
    return known + sorted(present - set(known))


def dedupe_runs(results: list[Result]) -> tuple[list[Result], list[str]]:
    """One result per run id (the newest), and the run ids that had copies: two files of one run are one run, never
    two training seeds."""
    newest: dict[str, Result] = {}
    dropped: list[str] = []
    for r in results:
        old = newest.get(r.run_id)
        if old is not None:
            dropped.append(r.run_id)
            if r.provenance.created_utc <= old.provenance.created_utc:
                continue
        newest[r.run_id] = r
    return [r for r in results if newest.get(r.run_id) is r], sorted(set(dropped))


@dataclass
class Row:
    """One leaderboard line: a result, or the mean of results that differ only in their training seed."""

    name: str
    kind: str  # "model" or "reference"
    task: str
    scores: dict[str, Score]
    n: int  # generated samples each score was computed from
    seeds: int  # training seeds aggregated into this row
    weights: str  # weights sha256 prefix, or the number of weight sets
    run_ids: list[str] = field(default_factory=list)  # results aggregated into this row
    weights_sha256: str | None = None  # full hash when the row is one weight set
    rank: int | None = None  # None for reference rows
    tied: bool = False  # shares its rank with another row (difference inside the interval)
    budget: str = "–"  # training budget of a trained model: steps x batch (images seen), seconds, device


def training_budget(r: Result) -> str:
    """What a trained model's row cost: "steps x batch (images seen), seconds of training, device"; "–" for rows
    ganbench did not train (references, users' models, weight sets fetched from a card)."""
    train = r.model.train or {}
    steps, batch = train.get("steps"), train.get("batch_size")
    if not isinstance(steps, int) or not isinstance(batch, int):
        return "–"
    seen = steps * batch
    images = f"{seen / 1e6:.2f}M" if seen >= 1e6 else f"{seen / 1e3:.0f}k" if seen >= 1e3 else str(seen)
    seconds = r.timings.get("train")
    spent = f", {seconds:.0f} s" if isinstance(seconds, (int, float)) and seconds > 0 else ""
    return f"{steps}×{batch} ({images} img){spent}, {r.provenance.device.split(' ')[0]}"


def _seed_group_key(r: Result) -> str:
    train = dict(r.model.train or {})
    train.pop("seed", None)
    train.pop("resumed_from", None)
    return json.dumps([r.dataset.name if r.dataset else None, r.kind, r.reference_row, r.model.name, r.model.config,
                       train, r.samples.n], sort_keys=True, default=str)


def aggregate_seeds(results: list[Result]) -> list[Row]:
    """Rows for a leaderboard: results of the same model, config and data that differ only in training seed
    become one row whose scores are the mean and standard deviation over seeds."""
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(_seed_group_key(r), []).append(r)
    rows = []
    for members in groups.values():
        first = members[0]
        if len(members) == 1:
            rows.append(Row(first.model.name, first.kind, first.task, first.scores, first.samples.n, 1,
                            (first.model.weights_sha256 or "–")[:12], [first.run_id], first.model.weights_sha256,
                            budget=training_budget(first)))
            continue
        scores = {}
        for name in first.scores:
            vals = np.array([m.scores[name].value for m in members if name in m.scores], dtype=float)
            mean, std = float(vals.mean()), float(vals.std(ddof=1))
            half = 1.96 * std / math.sqrt(len(vals))
            scores[name] = Score(mean, std, mean - half, mean + half, first.scores[name].n,
                                 first.scores[name].higher_is_better, f"mean and std over {len(vals)} training seeds")
        rows.append(Row(first.model.name, first.kind, first.task, scores, first.samples.n, len(members),
                        f"{len(members)} sets", [m.run_id for m in members], None,
                        budget=f"{training_budget(first)} each"))
    return rows


def difference_z(a: Score, b: Score) -> float | None:
    """(a - b) over the combined spread sqrt(std_a^2 + std_b^2); None when either has no spread.

    Equal values give 0 even with zero spreads; unequal values with zero combined spread give +-inf.
    """
    if a.value == b.value or (a.value is not None and b.value is not None
                              and math.isnan(a.value) and math.isnan(b.value)):
        return 0.0
    if a.std is None or b.std is None or not (math.isfinite(a.value) and math.isfinite(b.value)):
        return None if (a.std is None or b.std is None) else math.copysign(math.inf, a.value - b.value)
    sigma = math.hypot(a.std, b.std)
    if sigma == 0:
        return math.copysign(math.inf, a.value - b.value)
    return (a.value - b.value) / sigma


def tied(a: Score, b: Score, z: float = TIE_Z) -> bool:
    """Whether two scores are indistinguishable: their difference lies inside its two-sided interval."""
    d = difference_z(a, b)
    return d is not None and abs(d) <= z


@dataclass
class Table:
    """One leaderboard table: rows of one dataset (and reference split), one extractor and one task kind."""

    dataset: DatasetInfo | None  # None for throughput runs that match no quality result
    extractor: ExtractorInfo | None
    task: str  # task kind of the model rows ("unconditional", ...); reference rows join every task's table
    sort: str | None  # metric the rows are sorted and ranked by
    rows: list[Row]  # sorted, best first
    results: list[Result]  # the documents the rows come from

    @property
    def metrics(self) -> list[str]:
        """Every score any row carries: the known ones in their usual order, then the others by name."""
        return ordered_scores({s for r in self.rows for s in r.scores})

    def higher_is_better(self, metric: str) -> bool:
        return next(r.scores[metric].higher_is_better for r in self.rows if metric in r.scores)

    def frame(self) -> pd.DataFrame:
        """One line per row: rank, identity, then ``<metric>``, ``<metric>_std``, ``_ci_low``, ``_ci_high``."""
        lines = []
        for r in self.rows:
            line: dict[str, Any] = {
                "rank": r.rank, "tied": r.tied, "dataset": self.dataset.name if self.dataset else None, "task": self.task,
                "extractor": self.extractor.name if self.extractor else None, "model": r.name, "kind": r.kind,
                "n": r.n, "seeds": r.seeds, "weights_sha256": r.weights_sha256, "run_ids": ";".join(r.run_ids),
                "training_budget": r.budget}
            for m in self.metrics:
                s = r.scores.get(m)
                line.update({m: s.value if s else None, f"{m}_std": s.std if s else None,
                             f"{m}_ci_low": s.ci_low if s else None, f"{m}_ci_high": s.ci_high if s else None})
            lines.append(line)
        frame = pd.DataFrame(lines)
        frame["rank"] = frame["rank"].astype("Int64")  # reference rows have no rank; keep the others integers
        return frame


def _table_key(r: Result) -> tuple:
    d, e = r.dataset, r.extractor
    return (d.name, d.reference_split, d.reference_sha256, d.resolution, d.resize,
            e.name if e else None, e.weights_sha256 if e else None)


def check_one_protocol(results: list[Result]) -> None:
    """Refuse to rank together quality results of one reference that follow different protocols."""
    by_key: dict[tuple, dict[str, str]] = {}
    for r in results:
        if r.kind != "bench" and r.dataset is not None:
            by_key.setdefault(_table_key(r), {}).setdefault(r.protocol, r.run_id)
    for key, protocols in by_key.items():
        if len(protocols) > 1:
            listing = ", ".join(f"{p} (e.g. {run})" for p, run in sorted(protocols.items()))
            raise ValueError(f"results on {key[0]}/{key[1]} follow different protocols ({listing}); scores of different "
                             f"protocols are never ranked together: render each protocol's results separately")


def _bench_matches(bench: Result, r: Result) -> bool:
    """Whether a throughput run timed the network ``r`` scored: same zoo entry and architecture config (speed
    depends on the architecture, not on the weights or the training seed)."""
    b, m = bench.model, r.model
    return (r.kind == "model" and b.entry is not None and b.entry == m.entry
            and json.dumps(b.config, sort_keys=True, default=str) == json.dumps(m.config, sort_keys=True, default=str))


def _is_variant(bench: Result) -> bool:
    """True for a throughput run of a faster variant (bf16/fp16, compiled, channels_last) than fp32 eager."""
    settings = (bench.bench or {}).get("settings", {})
    return (settings.get("precision", "fp32") != "fp32" or bool(settings.get("compile"))
            or bool(settings.get("channels_last")))


def join_throughput(results: list[Result]) -> tuple[list[Result], list[Result]]:
    """Quality results with the scores of their matching throughput run (``kind == "bench"``) added, and the
    throughput runs that match no quality result.

    A score is a score: the joined ones (images/s, ms/img, memory, utilisation, whatever a bench step writes)
    become columns like any other. Where several throughput runs match, the fp32 eager one, then the newest,
    is joined.
    """
    import dataclasses

    benches = [r for r in results if r.kind == "bench"]
    quality = [r for r in results if r.kind != "bench"]
    used: set[int] = set()
    joined = []
    for r in quality:
        # quality was scored on fp32 eager samples, so that computation's timing is joined; newest first among equals
        matches = sorted((b for b in benches if _bench_matches(b, r)), key=lambda b: b.provenance.created_utc,
                         reverse=True)
        matches.sort(key=_is_variant)
        if matches:
            used.update(id(b) for b in matches)
            extra = {k: v for k, v in matches[0].scores.items() if k not in r.scores}
            r = dataclasses.replace(r, scores={**r.scores, **extra})
        joined.append(r)
    return joined, [b for b in benches if id(b) not in used]


def throughput_scores(r: Result | Row, results: list[Result]) -> set[str]:
    """Names of the scores of ``r`` that a throughput run contributed."""
    return {k for b in results if b.kind == "bench" for k in b.scores} & set(r.scores)


def _sort_metric(rows: list[Row], requested: str | None) -> str | None:
    present = {s for r in rows for s in r.scores}
    for m in ([requested] if requested else []) + list(DEFAULT_SORT):
        if m in present:
            return m
    return sorted(present)[0] if present else None


def _sorted_rows(rows: list[Row], metric: str | None) -> list[Row]:
    if metric is None:
        return rows
    frame = pd.DataFrame({"i": range(len(rows)), "name": [r.name for r in rows]})
    hib = next(r.scores[metric].higher_is_better for r in rows if metric in r.scores)
    values = [r.scores[metric].value if metric in r.scores else np.nan for r in rows]
    frame["key"] = [(-v if hib else v) for v in values]
    frame = frame.sort_values(["key", "name"], na_position="last", kind="stable")  # missing scores last
    return [rows[i] for i in frame["i"]]


def _assign_ranks(rows: list[Row], metric: str | None) -> None:
    leader: Row | None = None
    position = 0
    for r in rows:
        r.rank, r.tied = None, False
    for r in rows:
        if r.kind == "reference":
            continue
        position += 1
        s = r.scores.get(metric) if metric else None
        lead = leader.scores.get(metric) if (leader is not None and metric) else None
        if s is not None and lead is not None and tied(s, lead):
            r.rank = leader.rank
            r.tied = leader.tied = True
        else:
            r.rank, leader = position, r


def build_tables(results: list[Result], sort: str | None = None) -> list[Table]:
    """Leaderboard tables for ``results``: one per (dataset, reference split, extractor) and task kind.

    Args:
        results: Result documents; references (``kind == "reference"``) join every task's table of their data.
        sort: Metric to sort and rank by; a table without it falls back to fid, modes, stacked_modes.

    Raises:
        ValueError: If there are no results, or ``sort`` names a score that no result carries.
    """
    if not results:
        raise ValueError("no results to render")
    results, _ = dedupe_runs(results)
    check_one_protocol(results)
    if sort is not None and not any(sort in r.scores for r in results):
        have = sorted({s for r in results for s in r.scores})
        raise ValueError(f"sort metric {sort!r} is not a score of any result; scores present: {', '.join(have)}")
    quality, unmatched = join_throughput(results)
    groups: dict[tuple, list[Result]] = {}
    for r in quality:
        groups.setdefault(_table_key(r), []).append(r)
    for r in unmatched:  # one throughput table, whatever data the run names
        groups.setdefault((None,) * 7, []).append(r)
    tables = []
    for key in sorted(groups, key=lambda k: tuple("\uffff" if v is None else str(v) for v in k)):
        members = groups[key]
        dataset = None if key[0] is None else members[0].dataset
        refs = [r for r in members if r.kind == "reference"]
        tasks = sorted({r.task for r in members if r.kind != "reference"}) or sorted({r.task for r in refs})
        for task in tasks:
            chosen = [r for r in members if r.kind != "reference" and r.task == task] + refs
            rows = aggregate_seeds(chosen)
            metric = _sort_metric(rows, sort)
            rows = _sorted_rows(rows, metric)
            _assign_ranks(rows, metric)
            tables.append(Table(dataset, members[0].extractor if dataset else None, task, metric, rows, chosen))
    return tables


# --------------------------------------------------------------------------------------------------- markdown

def _rank_label(r: Row) -> str:
    if r.rank is None:
        return "ref"
    return f"{r.rank}=" if r.tied else str(r.rank)


def describe_reference(t: Table) -> str:
    """The sentence that says what every number of a table depends on."""
    d, e = t.dataset, t.extractor
    if d is None:
        return "Throughput runs (`ganbench bench`) without a quality result of the same model and config."
    res = f", {d.resolution}x{d.resolution} ({d.resize})" if d.resolution else ""
    ext = f"extractor `{e.name}` (weights sha256 {e.weights_sha256[:12]}…)" if e and e.weights_sha256 else \
        f"extractor `{e.name}`" if e else "raw points"
    return (f"Reference: `{md_text(d.name)}/{md_text(d.reference_split)}` ({d.reference_n} samples{md_text(res)}, "
            f"sha256 {d.reference_sha256[:12]}…, source: {md_text(d.source)}); {ext}.")


def _arrow(t: Table, metric: str) -> str:
    return "↑" if t.higher_is_better(metric) else "↓"


SPREADS = (  # (keyword in a score's method, mark, what the ± shows): the first keyword found names the spread
    ("training seeds", "σ", "standard deviation over training seeds"),
    ("p10..p90", "t", "timing spread from the 10th-90th percentile latencies"),
    ("achieved flop/s", "t", "timing spread from the 10th-90th percentile latencies"),
    ("bootstrap", "b", "bootstrap standard deviation"),
    ("reference subsets", "r", "standard deviation over reference subsamples"),
    ("subsets", "s", "standard deviation over subsets"),
    ("splits", "p", "standard deviation over splits"),
    ("wilson", "w", "binomial standard error"),
    ("binomial", "w", "binomial standard error"),
    ("jackknife", "j", "jackknife standard error"),
    ("normal", "e", "standard error of a mean"),
    ("standard error", "e", "standard error (of a fit or a mean)"),
    ("k-means bins", "n", "standard error of a proportion of bins"),
)


def spread_mark(score: Score) -> tuple[str, str] | None:
    """(mark, meaning) of the spread a score shows, read from its ``method``; None when it shows none."""
    if score.std is None:
        return None
    method = score.method.lower()
    # a method that says what its std is ("subsets(100x500); std: standard error over ...") is read from there
    parts = [method.split("std:", 1)[1], method] if "std:" in method else [method]
    for part in parts:
        for keyword, mark, meaning in SPREADS:
            if keyword in part:
                return mark, meaning
    return "?", "spread of another kind (see the score's method in the result JSON)"


def _cell(metric: str, score: Score, marks: dict[str, str]) -> str:
    text = format_score(metric, score)
    mark = spread_mark(score)
    if mark is None:
        return text
    marks[mark[0]] = mark[1]
    return f"{text} {mark[0]}"


def _markdown_table(t: Table, columns: list[str], marks: dict[str, str] | None = None, budget: bool = False) -> str:
    marks = {} if marks is None else marks
    lines = []
    for r in t.rows:
        label = f"*{md_text(r.name)}*" if r.kind == "reference" else f"**{md_text(r.name)}**"
        line = {"#": _rank_label(r), "model": label, "task": "reference" if r.kind == "reference" else md_text(r.task)}
        for c in columns:
            line[f"{c} {_arrow(t, c)}"] = _cell(c, r.scores[c], marks) if c in r.scores else "–"
        line.update({"n": r.n, "seeds": r.seeds, "weights": r.weights})
        if budget:
            line["training budget"] = r.budget
        lines.append(line)
    align = ["right", "left", "left"] + ["right"] * (len(lines[0]) - 3 - bool(budget)) + (["left"] if budget else [])
    return pd.DataFrame(lines).to_markdown(index=False, colalign=align)


def _spread_legend(marks: dict[str, str]) -> str:
    return "Spread shown after ±: " + "; ".join(f"`{m}` {meaning}" for m, meaning in sorted(marks.items())) + "."


def _table_title(t: Table) -> str:
    ext = f" · {md_text(t.extractor.name)}" if t.extractor else ""
    return f"## {md_text(t.dataset.name) if t.dataset else 'throughput'} · {md_text(t.task)}{ext}"


def render_markdown(results: list[Result], title: str = "Leaderboard", sort: str | None = None) -> str:
    """Markdown leaderboard: one section per dataset, extractor and task kind, sorted and ranked by ``sort``.

    Each section has a fidelity table (with every score this module does not classify, e.g. throughput)
    and, where such scores exist, a table of diversity, mode-collapse and memorisation scores in the same
    row order.
    """
    tables = build_tables(results, sort)
    _, copies = dedupe_runs(results)
    out = [f"# {title}", "",
           "Generated by `ganbench`; do not edit by hand. Each cell is value ± spread, followed by a mark saying "
           "which spread (explained under each table; the result JSON holds the method and the 95% interval). ↓ lower is better, "
           "↑ higher is better; n is the number of generated samples each score was computed from. *Italic* rows "
           "are references (`ref`): held-out real data (the floor a generator can reach) and an untrained generator "
           "(the ceiling). Model rows are ranked by the sort metric; `2=` marks rows whose difference from the "
           "row ranked above lies inside the 95% interval of the difference (|a - b| ≤ 1.96·√(σa² + σb²)): ties.",
           ""]
    if copies:
        out += [f"Note: {len(copies)} run(s) had more than one result file; each is shown once (the newest), never "
                f"as several seeds (duplicates ignored: {', '.join(md_text(c) for c in copies)}).", ""]
    for t in tables:
        fidelity = [m for m in t.metrics if score_group(m) == "fidelity"]
        diversity = [m for m in t.metrics if score_group(m) == "diversity"]
        sort_note = f" Sorted by `{t.sort}` {_arrow(t, t.sort)}." if t.sort else ""
        out += [_table_title(t), "", describe_reference(t) + sort_note, ""]
        marks: dict[str, str] = {}
        if fidelity:
            out += [_markdown_table(t, fidelity, marks, budget=any(r.budget != "–" for r in t.rows)), ""]
        if diversity:
            out += ["Diversity, mode collapse and memorisation:", "", _markdown_table(t, diversity, marks), ""]
        if marks:
            out += [_spread_legend(marks), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------- CSV, JSON

def render_csv(results: list[Result], sort: str | None = None) -> str:
    """Every table stacked: rank, tie flag, identity, then value, std and 95% interval of every score."""
    frame = pd.concat([t.frame() for t in build_tables(results, sort)], ignore_index=True)
    for column in ("dataset", "task", "extractor", "model", "kind", "run_ids"):
        frame[column] = frame[column].map(lambda v: v if v is None else csv_text(v))
    return frame.to_csv(index=False)


def leaderboard_document(results: list[Result], title: str = "Leaderboard", sort: str | None = None) -> dict[str, Any]:
    """The leaderboard as a JSON-ready dict; ``ganbench check`` reads it back as a baseline."""
    import dataclasses

    tables = []
    for t in build_tables(results, sort):
        tables.append({
            "protocol": next((r.protocol for r in t.results if r.kind != "bench"), "custom"),
            "dataset": dataclasses.asdict(t.dataset) if t.dataset else None,
            "extractor": dataclasses.asdict(t.extractor) if t.extractor else None,
            "task": t.task,
            "sort": t.sort,
            "metrics": {m: {"higher_is_better": t.higher_is_better(m)} for m in t.metrics},
            "rows": [{"rank": r.rank, "tied": r.tied, "model": r.name, "kind": r.kind, "task": r.task, "n": r.n,
                      "seeds": r.seeds, "weights_sha256": r.weights_sha256, "run_ids": r.run_ids,
                      "scores": {k: dataclasses.asdict(s) for k, s in r.scores.items()}} for r in t.rows],
        })
    return {"format": LEADERBOARD_FORMAT, "title": title, "tie_rule": f"|a - b| <= {TIE_Z} * sqrt(std_a^2 + std_b^2)",
            "tables": tables}


def render_json(results: list[Result], title: str = "Leaderboard", sort: str | None = None) -> str:
    return json.dumps(leaderboard_document(results, title, sort), indent=2, allow_nan=True) + "\n"


def render(results: list[Result], fmt: str, title: str = "Leaderboard", sort: str | None = None) -> str:
    """The leaderboard in ``fmt``: "md", "csv" or "json"."""
    if fmt == "md":
        return render_markdown(results, title, sort)
    if fmt == "csv":
        return render_csv(results, sort)
    if fmt == "json":
        return render_json(results, title, sort)
    raise ValueError(f"leaderboard format {fmt!r} is not one of md, csv, json")
