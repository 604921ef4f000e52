"""Time and peak memory of every default sample metric against the sample count, beside reference implementations
(ganbench issue 16, items 3, 4 and 6).

For each N in ``--sizes`` and D in ``--dims``, one evaluation's ``MetricInputs`` is built from synthetic features
(generated N x D, reference N x D, held-out N/5 x D; Gaussians with different means and spectra, so that no score
is degenerate) and every metric an unconditional evaluation computes by default from features
(``metrics_for(("sample",), inputs)``) is timed through ``ganbench.metrics.compute``, inside ``metric_threads()`` as
``evaluate`` runs it. The shared work is timed on its own first: the neighbour pass (``neighbours``) and FID's
jackknife groups (paid by ``fid``). Peak memory is the process's peak resident set (``VmHWM``, reset before each
step through ``/proc/self/clear_refs``), minus the resident set before the step: what the step added.

Beside them, where they compute the same metric on the same features: torch-fidelity (FID from the same float64
statistics; KID with the same subsets; precision/recall), prdc (precision, recall, density, coverage; it holds
three N x N float64 matrices, so it is skipped where that exceeds ``--reference-memory-gb``), and dgm-eval's
implementations re-written here (scipy ``sqrtm`` Fréchet distance as its ``fd.py``; AuthPct from full ``cdist``
matrices as its ``authpct.py``; C_T with scikit-learn nearest neighbours per k-means cell as its ``ct.py``).
References are skipped above ``--reference-max-n`` (they are quadratic in time and memory).

Also measured: FID with its interval against the point FID from the same cached reference statistics (at each N, D
and at 2000 x 2048, the issue's case), with the legacy 100-replicate bootstrap beside them where it is cheap, and the
metric stage at ``--load-n`` x ``--load-dim`` with a competing process (a 2-thread BLAS loop) running: with the
thread pools set by ``metric_threads()`` and with every pool left at its default (all cores).

The growth exponent of each metric is the least-squares slope of log time against log N over the sizes measured.

Usage::

    python benchmarks/metric_scaling.py                        # everything; about 40 minutes on 2 CPU cores
    python benchmarks/metric_scaling.py --sizes 1000,5000 --dims 128 --skip-load   # a quick look
    python benchmarks/metric_scaling.py --resume                # finish a stopped run from OUT.partial.json

Writes ``benchmarks/results/metric_scaling.md`` and ``.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganbench.metrics import MetricInputs, compute, fidelity, metrics_for  # noqa: E402
from ganbench.metrics.frechet import GaussianStats, frechet_distance  # noqa: E402
from ganbench.metrics.neighbours import neighbours  # noqa: E402
from ganbench.metrics.threads import metric_thread_count, metric_threads  # noqa: E402


# ---------------------------------------------------------------------------------------------- measurement


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


PROCESS_PEAK = [0.0]  # the largest resident set seen, MB (features included)


def measure(fn):
    """(result, seconds, peak MB added) of ``fn()``; records the process's peak in PROCESS_PEAK."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set to the current one
    except OSError:
        pass
    before = _rss_kb("VmRSS:")
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = _rss_kb("VmHWM:")
    PROCESS_PEAK[0] = max(PROCESS_PEAK[0], peak / 1024)
    return out, seconds, max(peak - before, 0) / 1024


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def features(n: int, d: int, seed: int) -> dict[str, torch.Tensor]:
    """Generated, reference and held-out features: Gaussians with a random shared spectrum, the generated set
    shifted and rescaled (float32, as extractors return them)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=g) / math.sqrt(d)
    scale = torch.linspace(1.5, 0.05, d) ** 2

    def draw(m: int, shift: float, stretch: float) -> torch.Tensor:
        out = torch.empty(m, d)
        for i in range(0, m, 8192):
            z = torch.randn(min(8192, m - i), d, generator=g) * scale * stretch
            out[i:i + len(z)] = z @ mix + shift
        return out

    return {"gen": draw(n, 0.05, 1.1), "ref": draw(n, 0.0, 1.0), "heldout": draw(max(n // 5, 200), 0.0, 1.0)}


def inputs_for(f: dict[str, torch.Tensor], seed: int = 0) -> MetricInputs:
    ref_stats = GaussianStats.from_features(f["ref"], with_root=True)  # cached on disk in an evaluation
    return MetricInputs({"f": f["gen"]}, {"f": f["ref"]}, "f", None, None, seed, heldout={"f": f["heldout"]},
                        ref_stats=ref_stats)


# ---------------------------------------------------------------------------------------------- references


def torch_fidelity_refs(f, ref_stats) -> dict:
    from torch_fidelity.metric_fid import fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    def fid():
        s = GaussianStats.from_features(f["gen"])
        return fid_statistics_to_metric({"mu": s.mu, "sigma": s.sigma}, {"mu": ref_stats.mu, "sigma": ref_stats.sigma},
                                        False)["frechet_inception_distance"]

    size = fidelity.kid_subset_size(len(f["gen"]), len(f["ref"]))
    return {"fid": fid,
            "kid": lambda: kid_features_to_metric(f["gen"].double(), f["ref"].double(), kid_subsets=100,
                                                  kid_subset_size=size, verbose=False)["kernel_inception_distance_mean"],
            "prc": lambda: prc_features_to_metric(f["gen"], f["ref"], prc_neighborhood=3, prc_batch_size=10000,
                                                  save_cpu_ram=True, verbose=False)}


def dgm_eval_refs(f, ref_stats) -> dict:
    import scipy.linalg

    def fd():  # dgm-eval fd.py: scipy sqrtm of the covariance product
        s = GaussianStats.from_features(f["gen"])
        covmean, _ = scipy.linalg.sqrtm(s.sigma @ ref_stats.sigma, disp=False)
        diff = s.mu - ref_stats.mu
        return float(diff @ diff + np.trace(s.sigma) + np.trace(ref_stats.sigma) - 2 * np.trace(covmean.real))

    def authpct():  # dgm-eval authpct.py: full cdist matrices
        train, gen = f["ref"], f["gen"]
        real = torch.cdist(train, train)
        real.fill_diagonal_(float("inf"))
        gd = torch.cdist(train, gen)
        rm, gm = real.min(0), gd.min(0)
        return float(100 * (rm.values[gm.indices] < gm.values).float().mean())

    def ct():  # dgm-eval ct.py (Meehan et al.'s code): k-means cells, sklearn nearest neighbour per cell
        from scipy.stats import mannwhitneyu
        from sklearn.cluster import KMeans
        from sklearn.neighbors import NearestNeighbors

        t, q, p = (f[k].double().numpy() for k in ("ref", "gen", "heldout"))
        km = KMeans(n_clusters=3, n_init=10).fit(t)
        tc, qc, pc = km.labels_, km.predict(q), km.predict(p)
        zs, ws = [], []
        for c in range(3):
            if (qc == c).mean() <= 20 / len(q):
                continue
            nn = NearestNeighbors(n_neighbors=1).fit(t[tc == c])
            lq, lp = nn.kneighbors(q[qc == c])[0], nn.kneighbors(p[pc == c])[0]
            u = mannwhitneyu(lq, lp, alternative="less")[0]
            m, n = len(lq), len(lp)
            zs.append((float(np.ravel(u)[0]) - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))
            ws.append((pc == c).mean())
        return float(np.dot(ws, zs) / np.sum(ws))

    return {"fid": fd, "authenticity": authpct, "data_copying": ct}


def prdc_ref(f) -> dict:
    import prdc

    return {"prc+dc": lambda: prdc.compute_prdc(f["ref"].numpy(), f["gen"].numpy(), 5)}


# ---------------------------------------------------------------------------------------------- runs


def run_size(n: int, d: int, args) -> dict:
    PROCESS_PEAK[0] = 0.0
    f = features(n, d, seed=n + d)
    x = inputs_for(f)
    row = {"n": n, "d": d, "metrics": {}, "references": {}, "shared": {}}
    names = metrics_for(("sample",), x)
    row["metric_names"] = names
    with metric_threads() as threads:
        row["threads"] = threads
        total_t, peak = 0.0, 0.0
        _, t, mem = measure(lambda: neighbours(x))
        row["shared"]["neighbour pass"] = {"seconds": t, "peak_mb": mem}
        _say(f"N={n} D={d} neighbour pass: {t:.1f} s, +{mem:.0f} MB")
        total_t, peak = total_t + t, max(peak, mem)
        for name in names:
            out, t, mem = measure(lambda: compute([name], x))
            row["metrics"][name] = {"seconds": t, "peak_mb": mem,
                                    "scores": {k: s.value for k, s in out.items()}}
            _say(f"N={n} D={d} {name}: {t:.1f} s, +{mem:.0f} MB")
            total_t, peak = total_t + t, max(peak, mem)
        row["total_seconds"], row["peak_mb"], row["process_peak_mb"] = total_t, peak, PROCESS_PEAK[0]
        # FID with its interval against the point FID from the same cached reference statistics
        _, t_point, _ = measure(lambda: frechet_distance(GaussianStats.from_features(f["gen"]), x.ref_stats))
        _, t_int, _ = measure(lambda: fidelity.fid(f["gen"], x.ref_stats, seed=0))
        row["fid_cost"] = {"point_s": t_point, "with_interval_s": t_int, "ratio": t_int / t_point}
        if n * d <= args.bootstrap_max:
            _, t_boot, _ = measure(lambda: fidelity.fid(f["gen"], x.ref_stats, seed=0, bootstrap=100))
            row["fid_cost"]["legacy_bootstrap100_s"] = t_boot
        if n <= args.reference_max_n:
            refs = {**{f"torch-fidelity {k}": v for k, v in torch_fidelity_refs(f, x.ref_stats).items()},
                    **{f"dgm-eval {k}": v for k, v in dgm_eval_refs(f, x.ref_stats).items()}}
            if 3 * n * n * 8 / 2 ** 30 <= args.reference_memory_gb:
                refs.update({f"prdc {k}": v for k, v in prdc_ref(f).items()})
            for name, fn in refs.items():
                _, t, mem = measure(fn)
                row["references"][name] = {"seconds": t, "peak_mb": mem}
    return row


def fid_case(n: int, d: int, bootstrap_max: int) -> dict:
    """The issue's measurement: FID at n x d, point against point + interval, with the reference statistics cached;
    the legacy bootstrap beside them up to ``bootstrap_max`` = n x d."""
    f = features(n, d, seed=7)
    ref_stats = GaussianStats.from_features(f["ref"], with_root=True)
    out = {"n": n, "d": d}
    with metric_threads():
        value, t_point, _ = measure(lambda: frechet_distance(GaussianStats.from_features(f["gen"]), ref_stats))
        score, t_int, _ = measure(lambda: fidelity.fid(f["gen"], ref_stats, seed=0))
        if n * d <= bootstrap_max:
            legacy, t_boot, _ = measure(lambda: fidelity.fid(f["gen"], ref_stats, seed=0, bootstrap=100))
            out.update(legacy_bootstrap100_s=t_boot, legacy_interval=[legacy.ci_low, legacy.ci_high])
    return {**out, "point_s": t_point, "with_interval_s": t_int, "ratio": t_int / t_point, "value": value,
            "interval": [score.ci_low, score.ci_high]}


def load_case(args) -> dict:
    """The metric stage at --load-n x --load-dim: quiet, and beside a competing 2-thread BLAS process, with the thread
    pools set by metric_threads() and with every pool at its default size (all cores)."""
    f = features(args.load_n, args.load_dim, seed=11)
    names = None

    def stage(threads: int | None) -> float:
        nonlocal names
        x = inputs_for(f)
        names = names or metrics_for(("sample",), x)
        t0 = time.perf_counter()
        if threads is None:
            compute(names, x)  # the libraries' default pools
        else:
            with metric_threads(threads or None):
                compute(names, x)
        return time.perf_counter() - t0

    competitor = [sys.executable, "-c", "import numpy as np, os\n"
                  "a = np.random.rand(1500, 1500)\n"
                  "while True: a = a @ a; a /= np.abs(a).max()"]
    out = {"n": args.load_n, "d": args.load_dim, "quiet_default_s": stage(None)}
    _say(f"load case: quiet, library defaults {out['quiet_default_s']:.1f} s")
    out["quiet_deliberate_s"] = stage(0)
    _say(f"load case: quiet, metric_threads() {out['quiet_deliberate_s']:.1f} s")
    proc = subprocess.Popen(competitor, env={**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})
    try:
        time.sleep(3)
        out["threads_chosen_under_load"] = metric_thread_count()
        out["loaded_deliberate_s"] = stage(0)
        _say(f"load case: loaded, metric_threads() {out['loaded_deliberate_s']:.1f} s")
        out["loaded_default_s"] = stage(None)
        _say(f"load case: loaded, library defaults {out['loaded_default_s']:.1f} s")
    finally:
        proc.kill()
        proc.wait()
    out["slowdown_deliberate"] = out["loaded_deliberate_s"] / out["quiet_deliberate_s"]
    out["slowdown_default"] = out["loaded_default_s"] / out["quiet_default_s"]
    return out


def exponents(rows: list[dict]) -> dict:
    out = {}
    for d in sorted({r["d"] for r in rows}):
        sub = sorted((r for r in rows if r["d"] == d), key=lambda r: r["n"])
        if len(sub) < 2:
            continue
        ns = np.log([r["n"] for r in sub])
        for name in ["neighbour pass", *sub[0]["metrics"], "total"]:
            ts = [r["total_seconds"] if name == "total" else
                  (r["shared"][name]["seconds"] if name in r["shared"] else r["metrics"][name]["seconds"]) for r in sub]
            if min(ts) > 0:
                out[f"{name} @ D={d}"] = float(np.polyfit(ns, np.log(ts), 1)[0])
    return out


def machine() -> dict:
    from threadpoolctl import threadpool_info

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    top = subprocess.run(["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "memory_gb": round(mem / 2 ** 20, 1),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "pools": sorted({f"{p['internal_api']}:{p.get('prefix', '')}" for p in threadpool_info()}),
            "loadavg_start": open("/proc/loadavg").read().strip(),
            "busiest_processes_start": [line.strip()[:120] for line in top.splitlines()[1:6]]}


# ---------------------------------------------------------------------------------------------- report


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# Metric cost against sample count (`benchmarks/metric_scaling.py`)", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}, torch {m['torch']}, "
             f"numpy {m['numpy']}; pools {', '.join(m['pools'])}.",
             f"Load average at start: {m['loadavg_start']}; at end: {result.get('loadavg_end', '?')}. Busiest processes "
             f"at start: " + "; ".join(f"`{p}`" for p in m["busiest_processes_start"]) + ".", "",
             "Synthetic features: generated N x D, reference N x D, held-out N/5 x D. Seconds and peak MB added per step; "
             "the total's memory is the process's peak resident set, features and reference statistics included "
             "(the neighbour pass is shared by prc, dc, realism, kid, rbf_mmd, memorization, near_copies, authenticity, "
             "data_copying and birthday; fid builds the jackknife groups fid_inf reuses).", ""]
    big = [r for r in result["rows"] if r["n"] >= 50000 and r["d"] >= 2048]
    for r in big:
        lines += [f"**Every default metric at {r['n']} x {r['d']}: {r['total_seconds']:.0f} s in total (target: 600 s), "
                  f"process peak {r['process_peak_mb'] / 1024:.2f} GiB, features included (target: 8 GiB).** "
                  f"Metrics: {', '.join(r['metric_names'])}.", ""]
    for d in sorted({r["d"] for r in result["rows"]}):
        sub = sorted((r for r in result["rows"] if r["d"] == d), key=lambda r: r["n"])
        names = ["neighbour pass", *sub[0]["metrics"]]
        lines += [f"## D = {d}", "", "| step | " + " | ".join(f"N={r['n']}" for r in sub) + " | exponent |",
                  "|---|" + "---:|" * (len(sub) + 1)]
        for name in names:
            cells = []
            for r in sub:
                c = r["shared"].get(name) or r["metrics"].get(name)
                cells.append(f"{c['seconds']:.2f} s / {c['peak_mb']:.0f} MB" if c else "–")
            e = result["exponents"].get(f"{name} @ D={d}")
            lines.append(f"| {name} | " + " | ".join(cells) + (f" | {e:.2f} |" if e is not None else " | – |"))
        lines.append("| **total** (process peak) | " + " | ".join(
            f"**{r['total_seconds']:.1f} s ({r['process_peak_mb'] / 1024:.2f} GiB)**" for r in sub)
            + f" | {result['exponents'].get(f'total @ D={d}', float('nan')):.2f} |")
        refs = sorted({k for r in sub for k in r["references"]})
        if refs:
            lines += ["", "Reference implementations on the same features:", "",
                      "| reference | " + " | ".join(f"N={r['n']}" for r in sub) + " |", "|---|" + "---:|" * len(sub)]
            for name in refs:
                cells = [f"{r['references'][name]['seconds']:.2f} s / {r['references'][name]['peak_mb']:.0f} MB"
                         if name in r["references"] else "skipped" for r in sub]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "FID with its jackknife interval against the point FID (cached reference statistics):", "",
                  "| N | point | with interval | ratio | legacy bootstrap(100) |", "|---:|---:|---:|---:|---:|"]
        for r in sub:
            c = r["fid_cost"]
            boot = f"{c['legacy_bootstrap100_s']:.1f} s" if "legacy_bootstrap100_s" in c else "–"
            lines.append(f"| {r['n']} | {c['point_s']:.2f} s | {c['with_interval_s']:.2f} s | {c['ratio']:.1f} | {boot} |")
        lines.append("")
    if result.get("fid_cases"):
        lines += ["## FID at the issue's sizes", "", "| N x D | point | with interval | ratio | legacy bootstrap(100) | "
                  "value | jackknife 95% interval | legacy interval |", "|---|---:|---:|---:|---:|---:|---|---|"]
        for c in result["fid_cases"]:
            boot, legacy = "–", "–"
            if "legacy_bootstrap100_s" in c:
                boot = f"{c['legacy_bootstrap100_s']:.1f} s"
                legacy = f"[{c['legacy_interval'][0]:.2f}, {c['legacy_interval'][1]:.2f}]"
            lines.append(f"| {c['n']} x {c['d']} | {c['point_s']:.2f} s | {c['with_interval_s']:.2f} s | {c['ratio']:.1f} "
                         f"| {boot} | {c['value']:.2f} | [{c['interval'][0]:.2f}, {c['interval'][1]:.2f}] | {legacy} |")
        lines.append("")
    if result.get("load"):
        c = result["load"]
        lines += ["## A competing process (item 6)", "",
                  f"The default metric stage at {c['n']} x {c['d']}, alone and beside a 2-thread BLAS loop "
                  f"(`a = a @ a` on 1500 x 1500); metric_threads() chose {c['threads_chosen_under_load']} thread(s) "
                  "under that load.", "", "| pools | quiet | loaded | slowdown |", "|---|---:|---:|---:|",
                  f"| metric_threads() | {c['quiet_deliberate_s']:.1f} s | {c['loaded_deliberate_s']:.1f} s | "
                  f"{c['slowdown_deliberate']:.2f}x |",
                  f"| library defaults (all cores) | {c['quiet_default_s']:.1f} s | {c['loaded_default_s']:.1f} s | "
                  f"{c['slowdown_default']:.2f}x |", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1000,5000,10000,50000")
    p.add_argument("--dims", default="128,2048")
    p.add_argument("--reference-max-n", type=int, default=10000, help="run reference implementations up to this N")
    p.add_argument("--reference-memory-gb", type=float, default=6.0, help="prdc's three N x N matrices at most this")
    p.add_argument("--bootstrap-max", type=int, default=5000 * 2048, help="legacy bootstrap FID up to this N x D")
    p.add_argument("--fid-cases", default="2000x2048,50000x2048")
    p.add_argument("--load-n", type=int, default=5000)
    p.add_argument("--load-dim", type=int, default=2048)
    p.add_argument("--skip-load", action="store_true")
    p.add_argument("--resume", action="store_true", help="keep the steps a stopped run saved (OUT.partial.json)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "metric_scaling"))
    args = p.parse_args()
    out = Path(args.out)
    result = {"machine": machine(), "rows": [], "fid_cases": []}
    partial = out.with_suffix(".partial.json")
    if args.resume and partial.exists():
        result = json.loads(partial.read_text())
        result.setdefault("resumed", []).append(machine())  # the machine state at each start
        _say(f"resuming {partial}: {len(result['rows'])} sizes, {len(result['fid_cases'])} FID cases kept")
    for d in (int(v) for v in args.dims.split(",")):
        for n in (int(v) for v in args.sizes.split(",")):
            if any(r["n"] == n and r["d"] == d for r in result["rows"]):
                continue
            row = run_size(n, d, args)
            _say(f"N={n} D={d}: total {row['total_seconds']:.1f} s, peak {row['peak_mb']:.0f} MB")
            result["rows"].append(row)
            _save(out, result, final=False)  # what is measured is kept if a later step fails
    for case in filter(None, args.fid_cases.split(",")):
        n, d = (int(v) for v in case.split("x"))
        if any(c["n"] == n and c["d"] == d for c in result["fid_cases"]):
            continue
        result["fid_cases"].append(fid_case(n, d, args.bootstrap_max))
        _say(f"FID {case}: {result['fid_cases'][-1]['ratio']:.1f}x")
        _save(out, result, final=False)
    if not args.skip_load and "load" not in result:
        result["load"] = load_case(args)
    _save(out, result, final=True)
    print(markdown(result))


def _save(out: Path, result: dict, final: bool) -> None:
    """Write the JSON (and, when ``final``, the markdown) atomically; a partial run writes ``.partial.json``."""
    result["exponents"] = exponents(result["rows"])
    result["loadavg_end"] = open("/proc/loadavg").read().strip()
    out.parent.mkdir(parents=True, exist_ok=True)
    files = {out.with_suffix(".json"): json.dumps(result, indent=1, default=float), out.with_suffix(".md"): markdown(result)}
    if not final:
        files = {out.with_suffix(".partial.json"): files[out.with_suffix(".json")]}
    for path, text in files.items():
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    if final:
        out.with_suffix(".partial.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
