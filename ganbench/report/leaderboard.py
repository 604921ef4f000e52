"""Leaderboards from result documents: one table per dataset, value ± spread, arrows for direction.

Tables follow lm-eval's ``make_table``: an arrow in each column header says which way is better, each cell
is "value ± std", and the header names what every number depends on (reference split and its hash,
extractor and its weights hash, sample count).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ganbench.results.schema import Result, Score



def _fmt(x: float, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return f"{x:.{digits}f}"


def _digits(name: str) -> int:
    return {"kid": 4, "precision": 3, "recall": 3, "hq_fraction": 3, "reverse_kl": 3, "modes": 1, "density": 3,
            "coverage": 3, "ndb": 2, "ms_ssim": 3, "copy_fraction": 3, "nn_ratio": 2, "stacked_modes": 0,
            "stacked_kl": 3}.get(name, 2)


def format_score(name: str, s: Score) -> str:
    if name == "birthday_support":  # spans orders of magnitude; the method says whether it is a lower bound
        return f"≥ {s.value:.3g}" if s.method.startswith("lower bound") else f"{s.value:.3g}"
    d = _digits(name)
    if s.value is not None and math.isfinite(s.value) and 0 < abs(s.value) < 0.1 and name in ("fid", "fid_inf"):
        d = min(5, d - int(math.floor(math.log10(abs(s.value)))) - 1)  # keep 2-3 significant digits
    return _fmt(s.value, d) if s.std is None else f"{_fmt(s.value, d)} ± {_fmt(s.std, d)}"


def results_frame(results: list[Result]) -> pd.DataFrame:
    """One row per result, one column per score value (and "<score>_std")."""
    rows = []
    for r in results:
        row = {"dataset": r.dataset.name, "model": r.model.name, "kind": r.kind, "task": r.task, "n": r.samples["n"],
               "run_id": r.run_id, "extractor": r.extractor.name if r.extractor else None,
               "weights_sha256": r.model.weights_sha256}
        for name, s in r.scores.items():
            row[name] = s.value
            row[f"{name}_std"] = s.std
        rows.append(row)
    return pd.DataFrame(rows)


def _dataset_header(results: list[Result]) -> str:
    r = results[0]
    d, e = r.dataset, r.extractor
    res = f", {d.resolution}x{d.resolution} ({d.resize})" if d.resolution else ""
    ext = f"extractor `{e.name}` (weights sha256 {e.weights_sha256[:12]}…)" if e and e.weights_sha256 else \
        f"extractor `{e.name}`" if e else "raw points"
    return (f"## {d.name}\n\nReference: `{d.name}/{d.reference_split}` ({d.reference_n} samples{res}, "
            f"sha256 {d.reference_sha256[:12]}…, source: {d.source}); {ext}.")


FIDELITY = ["fid", "fid_inf", "kid", "is", "precision", "recall", "density", "coverage"]
DIVERSITY = ["modes", "hq_fraction", "reverse_kl", "stacked_modes", "stacked_kl", "ndb", "ndb_jsd", "ms_ssim",
             "copy_fraction", "nn_ratio", "birthday_support"]


@dataclass
class Row:
    """One leaderboard line: a result, or the mean of results that differ only in their training seed."""

    name: str
    kind: str
    task: str
    scores: dict[str, Score]
    n: int
    seeds: int  # training seeds aggregated into this row
    weights: str  # weights sha256 prefix, or the number of weight sets


def _seed_group_key(r: Result) -> str:
    train = dict(r.model.train or {})
    train.pop("seed", None)
    train.pop("resumed_from", None)
    return json.dumps([r.dataset.name, r.kind, r.model.name, r.model.config, train, r.samples["n"]], sort_keys=True,
                      default=str)


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
            rows.append(Row(first.model.name, first.kind, first.task, first.scores, first.samples["n"], 1,
                            (first.model.weights_sha256 or "–")[:12]))
            continue
        scores = {}
        for name in first.scores:
            vals = np.array([m.scores[name].value for m in members if name in m.scores], dtype=float)
            mean, std = float(vals.mean()), float(vals.std(ddof=1))
            half = 1.96 * std / math.sqrt(len(vals))
            scores[name] = Score(mean, std, mean - half, mean + half, first.scores[name].n,
                                 first.scores[name].higher_is_better, f"mean and std over {len(vals)} training seeds")
        rows.append(Row(first.model.name, first.kind, first.task, scores, first.samples["n"], len(members),
                        f"{len(members)} sets"))
    return rows


def _table(rows: list[Row], columns: list[str]) -> str:
    lines = []
    for rank, r in enumerate(rows, 1):
        label = f"*{r.name}*" if r.kind == "reference" else f"**{r.name}**"
        line = {"#": rank, "model": label, "task": r.task}
        for c in columns:
            hib = next((x.scores[c].higher_is_better for x in rows if c in x.scores), True)
            line[f"{c} {'↑' if hib else '↓'}"] = format_score(c, r.scores[c]) if c in r.scores else "–"
        line["n"] = r.n
        line["seeds"] = r.seeds
        line["weights"] = r.weights
        lines.append(line)
    return pd.DataFrame(lines).to_markdown(index=False, colalign=["right", "left", "left"] + ["right"] * (len(lines[0]) - 3))


def render_markdown(results: list[Result], title: str = "Leaderboard") -> str:
    """Markdown leaderboard grouped by dataset, sorted by FID (ascending); reference rows in italics.

    Each dataset gets a fidelity table and, where such scores exist, a table of diversity, mode-collapse
    and memorisation scores in the same row order.
    """
    if not results:
        raise ValueError("no results to render")
    out = [f"# {title}", "",
           "Generated by `ganbench`; do not edit by hand. Each cell is value ± spread (bootstrap, subset, split or "
           "seed standard deviation; the result JSON holds the method and 95% interval). ↓ lower is better, "
           "↑ higher is better. *Italic* rows are references: held-out real data (the floor a generator can reach) "
           "and an untrained generator (the ceiling).", ""]
    by_dataset: dict[str, list[Result]] = {}
    for r in results:
        by_dataset.setdefault(r.dataset.name, []).append(r)
    for name in sorted(by_dataset):
        group = by_dataset[name]
        rows = aggregate_seeds(group)
        present = {s for r in rows for s in r.scores}
        fidelity = [s for s in FIDELITY if s in present]
        diversity = [s for s in DIVERSITY if s in present]
        others = sorted(present - set(fidelity) - set(diversity) - {"ndb_jsd", "duplicate_pairs"})
        sort_key = "fid" if "fid" in present else sorted(present)[0]
        hib = next(r.scores[sort_key].higher_is_better for r in rows if sort_key in r.scores)
        rows.sort(key=lambda r: (r.scores[sort_key].value if sort_key in r.scores else math.inf) * (-1 if hib else 1))
        out += [_dataset_header(group), "", _table(rows, fidelity + others), ""]
        if diversity:
            out += ["Diversity, mode collapse and memorisation:", "", _table(rows, diversity), ""]
    return "\n".join(out)


def render_csv(results: list[Result]) -> str:
    return results_frame(results).to_csv(index=False)
