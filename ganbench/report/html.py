"""The HTML report: a static site (one index.html, local PNG figures, no scripts, nothing fetched at view time).

Sections per leaderboard table (dataset x extractor x task kind): the ranked table, quality against
throughput with its Pareto front, the 2D sets' samples over their true modes (ring8, grid25, as PacGAN's
figures show them), Stacked MNIST's samples per digit-triple mode (VEEGAN/PacGAN's mode count, drawn), and a
sample grid per row; then every run's provenance. Figures are drawn with matplotlib's Agg backend, pages
rendered from jinja2 templates in ``ganbench/report/templates``.

Samples are redrawn, never stored beside results: a result records the weights sha256 and the sampling seed,
so the report finds a ``generator.safetensors`` with that sha256 under the checkpoint directories (``runs/``
by default), redraws exactly the scored samples (``sample(n, seed)``) and, where the table has a score that
the figure's data determine (modes, stacked_modes), recomputes it and shows the samples only if it matches.
Real-data rows are reloaded from their split (content sha256 checked); untrained reference rows are
re-initialised from their recorded config with the runner's initialisation seed (0). Anything else (no
checkpoint found, a user's model: the report runs no code that results name) shows "samples unavailable" and
why, in text.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from markupsafe import Markup, escape

from ganbench.report.leaderboard import (Row, Table, build_tables, describe_reference, format_score, render,
                                         score_group, spread_mark, throughput_scores)
from ganbench.results.schema import Result
from ganbench.results.store import atomic_path, file_sha256, read_results, write_text_atomic

TEMPLATES = Path(__file__).with_name("templates")
GRID = 64  # samples per grid (8 x 8)
UNTRAINED_INIT_SEED = 0  # ganbench.runner initialises the untrained reference rows with this seed


# ----------------------------------------------------------------------------------------------- samples

@dataclass
class Samples:
    """The scored samples of one result, redrawn, or the reason they are not available."""

    data: torch.Tensor | None  # uint8 NCHW images or float (N, 2) points
    origin: str  # how they were obtained, or why not


def checkpoint_index(roots: list[Path]) -> dict[str, Path]:
    """sha256 -> path of every ``generator.safetensors`` under ``roots``."""
    index: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for p in sorted(root.rglob("generator.safetensors")):
                index.setdefault(file_sha256(p), p)
    return index


def redraw(result: Result, checkpoints: dict[str, Path]) -> Samples:
    """The outputs ``result`` was scored on, when they can be rebuilt exactly: through its task, from the typed
    sample source the result records (a real split checked by its hash, a reference row of the task, a checkpoint
    found by its sha256, or an untrained network re-initialised)."""
    from ganbench.registry import MODELS, TASKS
    from ganbench.tasks import REFERENCE_ROWS, UNTRAINED, get_task
    from ganbench.zoo import load_generator, untrained_generator

    info = result.samples
    n, seed = info.n, info.seed
    resolution = result.dataset.resolution if result.dataset else None
    if result.task not in TASKS:
        return Samples(None, f"the result's task {result.task!r} is not registered here")
    task = get_task(result.task)
    data, where = None, ""
    if info.dataset is not None and info.split is not None:
        # the task's data with the recorded split as its test inputs (and, harmlessly, as its reference)
        data = task.load(info.dataset, info.split, info.split, resolution)
        if info.split_sha256 is not None and data.test.sha256 != info.split_sha256:
            return Samples(None, f"the split {info.dataset}/{info.split} here has another content hash than the "
                                 f"scored one")
        checked = f" (sha256 {info.split_sha256[:12]}… checked)" if info.split_sha256 else ""
        where = f"{info.dataset}/{info.split}{checked}, first {n}"
    row = REFERENCE_ROWS.get(result.reference_row or "")
    if row is not None and row is not UNTRAINED:
        if data is None:
            return Samples(None, "the result names no split to redraw its reference row from")
        return Samples(task.draw_reference(row, data, n, seed or 0).outputs, f"{row.label} of {where}")
    sha = result.model.weights_sha256
    if info.source == "folder" or (info.source == "generator" and seed is None):
        return Samples(None, f"samples came from {info.source} {info.path or ''}".rstrip()
                       + ", which the report does not redraw")
    if sha and sha in checkpoints:
        model = load_generator(checkpoints[sha])
        drawn = task.draw(model, data, n, seed if seed is not None else 0).outputs
        how = f"on {where}" if info.source == "transform" else f"seed {seed}"
        return Samples(drawn, f"redrawn from {checkpoints[sha]} (sha256 {sha[:12]}… checked), {how}")
    if sha:
        why = "a user's model (the report runs no code that results name)" if "source" in result.model.config \
            else f"no generator.safetensors with sha256 {sha[:12]}… under the checkpoint directories"
        return Samples(None, why)
    if row is UNTRAINED and result.model.entry in MODELS:
        model = untrained_generator(result.model.entry, seed=UNTRAINED_INIT_SEED, **result.model.config)
        drawn = task.draw(model, data, n, seed if seed is not None else 0).outputs
        return Samples(drawn, f"untrained {result.model.entry} re-initialised (init seed {UNTRAINED_INIT_SEED}, "
                              f"recorded config), seed {seed}")
    return Samples(None, "the result names no weights to redraw from")


def _close(a: float, b: float) -> bool:
    return (math.isinf(a) and math.isinf(b) and a == b) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def verify_points(result: Result, points: torch.Tensor) -> str | None:
    """None if the points reproduce the recorded mode scores; else what differs."""
    from ganbench.data import TOY_SETS
    from ganbench.metrics.modes import mode_stats

    modes_fn, std = TOY_SETS[result.dataset.name]
    captured, hq, _ = mode_stats(points.double().numpy(), modes_fn().double().numpy(), std)
    for name, value in (("modes", captured), ("hq_fraction", hq)):
        if name in result.scores and not _close(result.scores[name].value, value):
            return f"redrawn samples give {name} = {value:.4g}, the result records {result.scores[name].value:.4g}"
    return None


def stacked_triples(images: torch.Tensor) -> np.ndarray:
    """Digit triple (0..999) of each Stacked MNIST image, by the stacked_mnist_cnn extractor's logits."""
    from ganbench.features import extract, get_extractor

    digits = extract(get_extractor("stacked_mnist_cnn"), images, progress=False)["digits"]
    return (digits.reshape(-1, 3, 10).argmax(2).numpy() @ np.array([100, 10, 1])).astype(np.int64)


# ----------------------------------------------------------------------------------------------- figures

def _figure_path(out: Path, name: str) -> Path:
    return out / "img" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"


def _figure(**kwargs: Any) -> Any:
    """A matplotlib figure on an Agg canvas of its own: no pyplot, no global backend switch, no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return path


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8) -> Path:
    """An 8 x 8 PNG grid of the first samples, white gaps, at the samples' own resolution."""
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(images[:GRID], nrow=nrow, padding=2, pad_value=255)  # 3 x H x W uint8
    with atomic_path(path) as tmp:
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(tmp, format="PNG")
    return path


def plot_toy(rows: list[tuple[str, torch.Tensor, Result]], dataset: str, path: Path) -> Path:
    """Samples of each row over the true mode centres and their 3-std circles."""
    from ganbench.data import TOY_SETS

    from matplotlib.patches import Circle

    modes_fn, std = TOY_SETS[dataset]
    modes = modes_fn().numpy()
    lim = float(np.abs(modes).max()) * 1.35 + 0.2
    fig = _figure(figsize=(3.2 * len(rows), 3.4))
    axes = fig.subplots(1, len(rows), squeeze=False)
    for ax, (name, pts, r) in zip(axes[0], rows):
        p = pts.numpy()
        ax.scatter(p[:, 0], p[:, 1], s=2, alpha=0.35, color="#1f77b4", rasterized=True, label="samples")
        for c in modes:
            ax.add_patch(Circle(c, 3 * std, fill=False, color="#d62728", lw=0.8))
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=18, color="#d62728", label="true modes")
        cov = r.scores.get("modes")
        ax.set_title(f"{name}\nmodes {cov.value:.0f}/{len(modes)}" if cov else name, fontsize=9)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    axes[0][0].legend(loc="lower left", fontsize=7, markerscale=3)
    fig.suptitle(f"{dataset}: {len(rows[0][1])} samples per row over the {len(modes)} true modes (circles: 3 std)",
                 fontsize=10)
    return _save(fig, path)


def plot_stacked(rows: list[tuple[str, np.ndarray]], path: Path, modes: int = 1000) -> Path:
    """Samples per digit-triple mode, modes sorted by count (a rank-frequency plot), one line per row; a
    generator that covers every mode evenly follows the dotted line, a collapsed one is a spike at rank 1."""
    fig = _figure(figsize=(8, 3.6))
    ax = fig.subplots()
    n, top = 0, 1
    styles = ["-", "--", "-.", ":"]
    for i, (name, triples) in enumerate(rows):
        counts = np.sort(np.bincount(triples, minlength=modes))[::-1]
        n, top = max(n, len(triples)), max(top, int(counts[0]))
        ax.step(np.arange(1, modes + 1), counts, where="post", lw=1.4, ls=styles[i % len(styles)],
                label=f"{name}: {int((counts > 0).sum())} of {modes} modes")
    ax.axhline(n / modes, ls=":", color="gray", lw=1, label=f"uniform ({n / modes:.1f} per mode)")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlim(1, modes)
    ax.set_ylim(0, top * 1.6)
    ax.set_xlabel("mode rank (digit triples sorted by sample count)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"Stacked MNIST: samples per mode ({n} samples per row)", fontsize=10)
    return _save(fig, path)


def pareto_front(points: list[tuple[float, float]], x_higher: bool, y_higher: bool) -> list[int]:
    """Indices of the points no other point dominates (at least as good on both axes, better on one)."""
    sx, sy = (1 if x_higher else -1), (1 if y_higher else -1)
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(sx * a >= sx * x and sy * b >= sy * y and (sx * a > sx * x or sy * b > sy * y)
                        for j, (a, b) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def plot_pareto(rows: list[Row], quality: str, speed: str, path: Path) -> Path:
    """Quality (y) against throughput (x) with error bars and the Pareto front."""
    pts = [(r.scores[speed].value, r.scores[quality].value) for r in rows]
    xh, yh = rows[0].scores[speed].higher_is_better, rows[0].scores[quality].higher_is_better
    front = sorted(pareto_front(pts, xh, yh), key=lambda i: pts[i][0])
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    for r, (x, y) in zip(rows, pts):
        ax.errorbar(x, y, xerr=r.scores[speed].std or 0, yerr=r.scores[quality].std or 0, fmt="o", capsize=3)
        ax.annotate(r.name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if front:
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "--", color="#d62728", lw=1, label="Pareto front")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"{speed} {'↑' if xh else '↓'}")
    ax.set_ylabel(f"{quality} {'↑' if yh else '↓'}")
    ax.set_title(f"{quality} against {speed}", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------- the site

def speed_metric(table: Table, results: list[Result], requested: str | None) -> str | None:
    """The throughput axis: ``requested`` if the table has it, else the first (by name) higher-is-better score
    that a throughput run contributed, else any such score."""
    have = set().union(*(throughput_scores(r, results) for r in table.rows)) if table.rows else set()
    if requested:
        return requested if any(requested in r.scores for r in table.rows) else None
    ordered = sorted(have)
    up = [m for m in ordered if table.higher_is_better(m)]
    return (up or ordered or [None])[0]


def code_spans(text: str) -> Markup:
    """Markdown `code` spans of ``text`` as <code> elements, everything else escaped."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def _cell(metric: str, row: Row, marks: dict[str, str]) -> str:
    """``value ± spread m``, m the mark of the spread shown (collected in ``marks`` for the table's legend)."""
    if metric not in row.scores:
        return "–"
    text, mark = format_score(metric, row.scores[metric]), spread_mark(row.scores[metric])
    if mark is None:
        return text
    marks[mark[0]] = mark[1]
    return f"{text} {mark[0]}"


def _provenance(r: Result) -> list[tuple[str, str]]:
    d, e, p = r.dataset, r.extractor, r.provenance
    items = [("run id", r.run_id), ("kind / task", f"{r.kind} / {r.task}"), ("model", r.model.name),
             ("zoo entry", str(r.model.entry)), ("config", json.dumps(r.model.config, sort_keys=True)),
             ("weights sha256", str(r.model.weights_sha256)),
             ("training", json.dumps(r.model.train, sort_keys=True) if r.model.train else "–")]
    if d is not None:
        items += [("reference", f"{d.name}/{d.reference_split} ({d.reference_n} samples, {d.resolution or '–'} px, "
                                f"{d.resize}; source {d.source})"), ("reference sha256", d.reference_sha256)]
    if e is not None:
        items += [("extractor", f"{e.name} (features {e.feature_layer}, logits {e.logits_layer}, {e.input_resize})"),
                  ("extractor weights sha256", str(e.weights_sha256))]
    info = r.samples
    source = ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(info).items() if v is not None and k != "n")
    items += [("samples", f"n = {info.n}; {source}"),
              ("timings (s)", ", ".join(f"{k} {v}" for k, v in r.timings.items())),
              ("software", f"ganbench {p.ganbench_version} (git {str(p.git_commit)[:12]}), torch {p.torch_version}, "
                           f"torch-fidelity {p.torch_fidelity_version}, Python {p.python_version}"),
              ("hardware", f"{p.device}, {p.threads} threads, {p.platform}"), ("written", p.created_utc),
              ("schema", r.schema_version)]
    for name, s in r.scores.items():
        items.append((f"score {name}", f"{s.value!r} ± {s.std!r}, 95% [{s.ci_low!r}, {s.ci_high!r}], n {s.n}, "
                                       f"{'higher' if s.higher_is_better else 'lower'} is better; {s.method}"))
    return items


def _section(t: Table, index: int, results: list[Result], out: Path, checkpoints: dict[str, Path],
             speed: str | None) -> dict[str, Any]:
    by_id = {r.run_id: r for r in t.results}
    tag = f"t{index}-{t.dataset.name if t.dataset else 'throughput'}-{t.task}"
    fidelity = [m for m in t.metrics if score_group(m) == "fidelity"]
    diversity = [m for m in t.metrics if score_group(m) == "diversity"]
    grids = []
    marks: dict[str, str] = {}
    for caption, metrics in ((None, fidelity), ("Diversity, mode collapse and memorisation", diversity)):
        if not metrics:
            continue
        columns = [{"name": m, "arrow": "↑" if t.higher_is_better(m) else "↓", "sorted": m == t.sort} for m in metrics]
        rows = [{"rank": "ref" if r.rank is None else f"{r.rank}{'=' if r.tied else ''}", "name": r.name,
                 "reference": r.kind == "reference", "task": r.task, "n": r.n, "seeds": r.seeds, "weights": r.weights,
                 "cells": [_cell(m, r, marks) for m in metrics]} for r in t.rows]
        grids.append({"caption": caption, "columns": columns, "rows": rows})
    section: dict[str, Any] = {"id": tag, "title": f"{t.dataset.name if t.dataset else 'throughput'} · {t.task}"
                                                   + (f" · {t.extractor.name}" if t.extractor else ""),
                               "reference": code_spans(describe_reference(t)), "sort": t.sort, "tables": grids,
                               "spreads": "Spread shown after ±: " + "; ".join(f"{m}: {meaning}" for m, meaning in
                                                                            sorted(marks.items())) if marks else "",
                               "figures": [], "grids": []}
    if t.dataset is None:
        return section

    # quality against throughput
    quality = t.sort
    axis = speed_metric(t, results, speed)
    candidates = [r for r in t.rows if r.kind != "reference" and axis and axis in r.scores and quality in r.scores]
    if candidates:
        path = plot_pareto(candidates, quality, axis, _figure_path(out, f"{tag}-pareto"))
        section["figures"].append({"src": path.relative_to(out).as_posix(), "alt": f"{quality} against {axis}",
                                   "caption": f"Quality ({quality}) against throughput ({axis}) of the model rows; "
                                              f"dashed: the Pareto front (no other model is better on both)."})
    else:
        section["figures"].append({"src": None, "alt": "", "caption": (
            f"Quality against throughput: no result of this table carries {'the score ' + speed if speed else 'a throughput score'}"
            f" (throughput comes from `ganbench bench MODEL --out RESULTS` or `ganbench run SUITE --bench`).")})

    # samples, redrawn
    drawn: list[tuple[Row, Result, Samples]] = []
    for r in t.rows:
        result = by_id[r.run_ids[0]]
        try:
            s = redraw(result, checkpoints)
        except Exception as e:  # a model the report cannot drive (other sampling signature, ...) costs its grid only
            s = Samples(None, f"redrawing failed: {type(e).__name__}: {e}")
        if s.data is not None and result.dataset.name in ("ring8", "grid25"):
            problem = verify_points(result, s.data)
            if problem:
                s = Samples(None, problem)
        drawn.append((r, result, s))

    hist = []
    for i, (r, res, s) in enumerate(drawn):
        if t.dataset.name != "stacked_mnist" or s.data is None:
            continue
        triples = stacked_triples(s.data)
        covered, rec = float(len(np.unique(triples))), res.scores.get("stacked_modes")
        if rec is not None and not _close(rec.value, covered):
            drawn[i] = (r, res, Samples(None, f"redrawn samples cover {covered:.0f} modes, the result records "
                                              f"{rec.value:.0f}: not the scored samples"))
        else:
            hist.append((r.name, triples))
    if hist:
        path = plot_stacked(hist, _figure_path(out, f"{tag}-stacked-modes"))
        section["figures"].append({"src": path.relative_to(out).as_posix(), "alt": "Stacked MNIST mode histogram",
                                   "caption": "Samples per Stacked MNIST mode (digit triple by mnist_cnn on each "
                                              "channel), modes sorted by count; a generator that covers every mode "
                                              "evenly follows the dotted line, a collapsed one is a spike at rank 1."})
    points = [(r.name, s.data, res) for r, res, s in drawn if s.data is not None and s.data.dtype != torch.uint8]
    if points:
        path = plot_toy(points, t.dataset.name, _figure_path(out, f"{tag}-modes"))
        section["figures"].append({"src": path.relative_to(out).as_posix(), "alt": f"{t.dataset.name} samples over "
                                   f"the true modes", "caption": f"{t.dataset.name}: the scored samples of each row "
                                   f"(blue) over the true mode centres (red crosses, circles of 3 std)."})
    for r, res, s in drawn:
        if s.data is not None and s.data.dtype != torch.uint8:
            continue  # points: drawn in the modes figure
        entry = {"name": r.name, "reference": r.kind == "reference", "origin": s.origin, "src": None}
        if s.data is not None:
            path = save_grid(s.data, _figure_path(out, f"{tag}-grid-{res.run_id}"))
            entry["src"] = path.relative_to(out).as_posix()
        section["grids"].append(entry)
    return section


def build_site(results_path: str | Path, out_dir: str | Path, title: str | None = None, sort: str | None = None,
               speed: str | None = None, checkpoint_dirs: list[str | Path] | None = None) -> Path:
    """Write ``out_dir/index.html`` with its figures under ``out_dir/img`` and the leaderboard as md, csv, json.

    Args:
        results_path: Results directory (or one result file).
        out_dir: Site directory; figures it wrote before and no longer writes are removed.
        sort: Metric the tables are sorted and ranked by (default: fid, else modes).
        speed: Throughput score for the quality-against-throughput figure (default: the first higher-is-better
            score a throughput run contributed).
        checkpoint_dirs: Where to look for generator checkpoints to redraw samples from (default: ``runs``).

    Returns:
        The path of index.html.
    """
    import jinja2

    from ganbench import __version__

    results = read_results(results_path)
    tables = build_tables(results, sort)
    out = Path(out_dir)
    (out / "img").mkdir(parents=True, exist_ok=True)
    before = set((out / "img").glob("*.png"))
    checkpoints = checkpoint_index([Path(p) for p in (checkpoint_dirs if checkpoint_dirs is not None else ["runs"])])
    title = title or f"ganbench report: {Path(results_path).name}"
    sections = [_section(t, i, results, out, checkpoints, speed) for i, t in enumerate(tables)]
    downloads = {}
    for fmt in ("md", "csv", "json"):
        name = f"leaderboard.{fmt}"
        write_text_atomic(out / name, render(results, fmt, title=title, sort=sort))
        downloads[fmt] = name
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["code"] = code_spans
    page = env.get_template("report.html.j2").render(
        title=title, version=__version__, source=str(results_path), sections=sections, downloads=downloads,
        provenance=[{"run_id": r.run_id, "model": r.model.name, "dataset": r.dataset.name if r.dataset else "–",
                     "fields": _provenance(r)} for r in results])
    index = write_text_atomic(out / "index.html", page)
    written = {out / s for sec in sections for s in [f["src"] for f in sec["figures"]] + [g["src"] for g in sec["grids"]] if s}
    for stale in before - written:
        stale.unlink(missing_ok=True)
    return index


__all__ = ["build_site", "redraw", "pareto_front", "checkpoint_index", "Samples"]
