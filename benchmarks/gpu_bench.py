"""Throughput of every zoo model's tiny and paper config, and of the feature extractors, on one device.

Runs ``ganbench.bench`` (the code behind ``ganbench bench``) on every registered model that has named
presets: sampling in fp32 at several batch sizes, sampling in bf16 with its drift from fp32, and one fp32
training step; then the image feature extractors (Inception-v3 with random weights of the right shapes
unless ``$GANBENCH_INCEPTION_WEIGHTS`` names the real file: the timing is the same). Writes one markdown
table and the full reports as JSON, both named after the device, e.g.
``benchmarks/results/gpu-nvidia-h100-80gb-hbm3.md``. Meant for a CUDA machine (under 5 minutes on one
H100); ``--device cpu`` runs the same plan on a CPU, slowly.

Usage::

    python benchmarks/gpu_bench.py                     # CUDA, writes benchmarks/results/gpu-<device>.{md,json}
    python benchmarks/gpu_bench.py --device cpu --quick --out /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganbench.bench import BenchSettings, bench_extractor, bench_model  # noqa: E402
from ganbench.bench.memory import hardware  # noqa: E402
from ganbench.registry import MODELS  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--quick", action="store_true", help="small batches and few repeats (a smoke run)")
    p.add_argument("--models", default="*", help="shell pattern over model names")
    p.add_argument("--compile", action="store_true", help="also time torch.compile sampling at the largest batch")
    return p.parse_args(argv)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def row(label: str, report, extra: str = "") -> list[dict]:
    out = []
    for r in report.rows:
        out.append({"what": label, "variant": report.settings.variant, "batch": r.batch_size,
                    "img/s": r.images_per_s, "ms/batch": r.latency_ms, "p10": r.latency_p10_ms, "p90": r.latency_p90_ms,
                    "MFLOP/img": r.flops_per_image / 1e6, "TFLOP/s": r.achieved_tflops, "util": r.utilisation,
                    "peak MB": r.peak_memory_mb, "drift": report.drift, "params": sum(report.parameters.values()),
                    "note": extra})
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import ganbench.features  # noqa: F401  (registers extractors)
    import ganbench.zoo  # noqa: F401  (registers models)

    device = torch.device(args.device)
    sample_sizes = (1, 16) if args.quick else (1, 64, 256)
    train_sizes = (8,) if args.quick else (64,)
    base = dict(device=args.device, repeats=3 if args.quick else 10, warmup=1 if args.quick else 3,
                min_seconds=0.0 if args.quick else 0.2)
    rows: list[dict] = []
    reports: list[dict] = []
    t_start = time.perf_counter()
    for name in MODELS.list(args.models):
        entry = MODELS.get(name)
        for preset in sorted(getattr(entry, "presets", {}) or {}):
            label = f"{name}.{preset}"
            t0 = time.perf_counter()
            try:
                plans = [("sample", BenchSettings(batch_sizes=sample_sizes, **base), False),
                         ("sample", BenchSettings(batch_sizes=sample_sizes[-1:], precision="bf16", **base), False),
                         ("train", BenchSettings(batch_sizes=train_sizes, **base), True)]
                if args.compile:
                    plans.append(("sample", BenchSettings(batch_sizes=sample_sizes[-1:], compile=True, **base), False))
                for kind, settings, train in plans:
                    rep = bench_model(name, settings, train=train, preset=preset, progress=False)
                    rows += row(f"{label} {kind}", rep)
                    reports.append(rep.to_dict())
            except Exception as e:  # one model failing must not lose the others' numbers
                rows.append({"what": label, "note": f"failed: {type(e).__name__}: {e}"[:200]})
            print(f"{label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            write(args, device, rows, reports, time.perf_counter() - t_start, partial=True)

    with tempfile.TemporaryDirectory() as tmp:
        if not os.environ.get("GANBENCH_INCEPTION_WEIGHTS"):
            from ganbench.features.inception import write_random_weights

            os.environ["GANBENCH_INCEPTION_WEIGHTS"] = str(write_random_weights(Path(tmp) / "inception-random.pth"))
        for ext, size in (("mnist_cnn", 32), ("inception_v3_fid", 64)):
            t0 = time.perf_counter()
            try:
                for precision in ("fp32", "bf16"):
                    settings = BenchSettings(batch_sizes=(8,) if args.quick else (64, 256), precision=precision, **base)
                    rep = bench_extractor(ext, settings, image_size=size, progress=False)
                    rows += row(f"{ext} extract", rep, "random weights" if ext.startswith("inception") else "")
                    reports.append(rep.to_dict())
            except Exception as e:
                rows.append({"what": ext, "note": f"failed: {type(e).__name__}: {e}"[:200]})
            print(f"{ext}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    write(args, device, rows, reports, time.perf_counter() - t_start, partial=False)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write(args: argparse.Namespace, device: torch.device, rows: list[dict], reports: list[dict], total: float,
          partial: bool) -> None:
    """Write the table and the JSON reports; called after every model too, so a run cut short keeps its numbers."""
    hw = hardware(device)
    name = f"{'gpu' if device.type == 'cuda' else 'cpu'}-{slug(hw['device_name'])}"
    args.out.mkdir(parents=True, exist_ok=True)
    ceiling = {r["settings"]["precision"]: r["ceiling"] for r in reports}
    lines = [f"# ganbench throughput: {hw['device_name']}", "",
             f"Written by `python benchmarks/gpu_bench.py{' --quick' if args.quick else ''}"
             f"{'' if args.models == '*' else f' --models {args.models!r}'}` in {total:.0f} s"
             f"{' (interrupted: the models so far)' if partial else ''}. "
             f"Device {hw['device']} ({hw['device_name']}), torch {hw['torch']}, CUDA {hw.get('cuda')}, "
             f"driver {hw.get('driver')}, cuDNN {hw.get('cudnn')}, {hw['threads']} CPU threads.", "",
             "Ceilings (dense square matmul timed in the same run): "
             + ", ".join(f"{p} {c['flops_per_s'] / 1e12:.1f} TFLOP/s ({c['size']}^2{', TF32' if c['tf32'] else ''})"
                         for p, c in ceiling.items()) + ".", "",
             "img/s = batch / median latency; p10/p90 are latency percentiles (ms per batch) over the timed runs "
             "(CUDA events, L2 flushed between runs); util = achieved FLOP/s / ceiling of the same precision; "
             "drift = relative L2 of bf16 samples against fp32 for the same latents; peak MB = CUDA max allocated.", "",
             "| model / extractor | variant | batch | img/s | ms/batch | p10 | p90 | MFLOP/img | TFLOP/s | util | peak MB | drift | params | note |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]

    def fmt(v, spec):
        return "" if v is None else format(v, spec)

    for r in rows:
        lines.append("| " + " | ".join([r["what"], r.get("variant", ""), str(r.get("batch", "")),
                                        fmt(r.get("img/s"), ",.0f"), fmt(r.get("ms/batch"), ".3f"),
                                        fmt(r.get("p10"), ".3f"), fmt(r.get("p90"), ".3f"),
                                        fmt(r.get("MFLOP/img"), ".2f"), fmt(r.get("TFLOP/s"), ".2f"),
                                        fmt(r.get("util"), ".2f"), fmt(r.get("peak MB"), ".0f"),
                                        fmt(r.get("drift"), ".1e"), fmt(r.get("params"), ","), r.get("note", "")]) + " |")
    _write_atomic(args.out / f"{name}.md", "\n".join(lines) + "\n")
    _write_atomic(args.out / f"{name}.json", json.dumps({"hardware": hw, "seconds": total, "partial": partial,
                                                         "reports": reports}, indent=1, default=str) + "\n")
    if not partial:
        print("\n".join(lines))
        print(f"wrote {args.out / (name + '.md')} in {total:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
