"""Measured coverage of every reported 95% interval (ganbench issue 16, item 1), before and after.

Draws ``--draws`` (>= 200) independent generated sets from known distributions and counts how often each score's
95% interval contains its target (``ganbench.metrics.calibration``: closed forms, whole-pool values, or the
expectation at N estimated from the other draws). Worlds:

- Gaussians in 64 dimensions: a shifted, rescaled generator (N = 500 against 1000 reference points), and a
  generator equal to the data distribution (N = 1000 against 1000: KID's degenerate case, the real-data row);
- Gaussians with fewer samples than dimensions (N = 200, D = 256);
- real digit features: mnist_cnn features of 20 000 augmented held-out digits drawn without replacement, against
  the 4000 training digits (N = 500: density and coverage average reference subsets);
- FID and FID-infinity alone at D = 512 (N = 400 < D and N = 2000 > D).

The same draws are scored by the intervals ganbench reported before issue 16 (``legacy_scores``: percentile bootstrap
of FID, linear-fit FID-infinity, subset-std KID, binomial recall, subset-std density/coverage). Writes
``benchmarks/results/interval_coverage.md`` and ``.json``.

Usage::

    python benchmarks/interval_coverage.py            # about 30 minutes on 2 CPU cores
    python benchmarks/interval_coverage.py --draws 50 --worlds gauss64   # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ganbench.metrics.calibration import (EXPECTED_AT_N, augmented_images, coverage, gaussian_world,  # noqa: E402
                                          pool_world)
from ganbench.metrics.fidelity import wilson_interval  # noqa: E402


def digit_world():
    from ganbench.data import load
    from ganbench.features import extract, get_extractor

    spec = get_extractor("mnist_cnn")
    pool = extract(spec, augmented_images(load("mnist", "test", 32).data, 20, seed=0), progress=False)["pool"]
    ref = extract(spec, load("mnist", "train", 32).data, progress=False)["pool"]
    return pool_world(pool, ref, "mnist_cnn features of augmented held-out digits (20000) vs 4000 training digits")


WORLDS = {  # name -> (world builder, N, draws of the legacy intervals (None: as many), FID only)
    "gauss64": (lambda: gaussian_world(64, 1000, 0.1, 1.1, seed=0), 500, None, False),
    "gauss64_same": (lambda: gaussian_world(64, 1000, 0.0, 1.0, seed=1), 1000, None, False),
    "gauss256_n_lt_d": (lambda: gaussian_world(256, 1000, 0.05, 1.05, seed=2), 200, None, False),
    "digits": (digit_world, 500, None, False),
    # the legacy bootstrap costs 100 FIDs of 512-d per draw: 50 draws of it
    "gauss512_fid_n400": (lambda: gaussian_world(512, 2000, 0.05, 1.05, seed=3, big=2000), 400, 50, True),
    "gauss512_fid_n2000": (lambda: gaussian_world(512, 2000, 0.05, 1.05, seed=3, big=2000), 2000, 50, True),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draws", type=int, default=200)
    p.add_argument("--worlds", default=",".join(WORLDS))
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "interval_coverage"))
    p.add_argument("--render", action="store_true", help="only re-write OUT.md from OUT.json")
    args = p.parse_args()
    out = Path(args.out)
    if args.render:
        out.with_suffix(".md").write_text(markdown(json.loads(out.with_suffix(".json").read_text())))
        return
    results = []
    load_start = open("/proc/loadavg").read().strip()
    for name in args.worlds.split(","):
        build, n, legacy_draws, frechet_only = WORLDS[name]
        t0 = time.perf_counter()
        world = build()
        rows, seconds = coverage(world, n, args.draws, seed=100, frechet_only=frechet_only)
        old, old_seconds = coverage(world, n, min(args.draws, legacy_draws or args.draws), seed=100, legacy=True,
                                    frechet_only=frechet_only)
        legacy_by_score = {r.score: r for r in old}
        for r in rows:
            o = legacy_by_score.get(r.score)
            results.append({"world": name, "description": world.name, **asdict(r), "coverage": r.coverage,
                            "legacy_coverage": o.coverage if o else None, "legacy_reported": o.reported if o else 0,
                            "legacy_draws": o.draws if o else 0,
                            "seconds_per_draw": seconds, "legacy_seconds_per_draw": old_seconds})
        print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"draws": args.draws, "loadavg_start": load_start, "loadavg_end": open("/proc/loadavg").read().strip(),
           "rows": results}
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1, default=float))
    out.with_suffix(".md").write_text(markdown(doc))
    print(markdown(doc))


def markdown(doc: dict) -> str:
    lines = ["# Coverage of the reported 95% intervals (`benchmarks/interval_coverage.py`)", "",
             f"{doc['draws']} independent generated sets per world; each interval is counted as covering when it "
             "contains its target: the expectation at N estimated from the other draws (" + ", ".join(EXPECTED_AT_N)
             + "), or else a closed form or a whole-distribution value (fid_inf, kid, precision, realism). Coverage in "
             "brackets: Wilson 95% interval of the count. 'sd' is the spread of the values across draws, 'std' the "
             "mean std reported; 'reported' counts the draws that gave an interval (FID-infinity gives none when its "
             "extrapolation is not trusted). Legacy: the intervals before issue 16 on the same draws. Load average "
             f"{doc['loadavg_start']} at the start, {doc['loadavg_end']} at the end.", ""]
    for world in dict.fromkeys(r["world"] for r in doc["rows"]):
        rows = [r for r in doc["rows"] if r["world"] == world]
        lines += [f"## {world}: {rows[0]['description']}, N = {rows[0]['n']}", "",
                  f"{rows[0]['seconds_per_draw']:.2f} s per draw (all scores with their intervals).", "",
                  "| score | target | mean value | sd | std | coverage | reported | legacy coverage |",
                  "|---|---:|---:|---:|---:|---|---:|---:|"]
        for r in rows:
            if r["reported"]:
                _, lo, hi = wilson_interval(r["coverage"], r["reported"])
                cov = f"**{r['coverage']:.3f}** [{lo:.2f}, {hi:.2f}]"
            else:
                cov = "no interval"
            std = f"{r['mean_std']:.4g}" if r["mean_std"] is not None else "–"
            legacy = (f"{r['legacy_coverage']:.3f} ({r['legacy_reported']}/{r['legacy_draws']})"
                      if r["legacy_coverage"] is not None and r["legacy_reported"] else "–")
            lines.append(f"| {r['score']} | {r['target']:.4g} | {r['mean_value']:.4g} | {r['sd_value']:.3g} | {std} "
                         f"| {cov} | {r['reported']}/{r['draws']} | {legacy} |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
