"""Speed of ganbench's FID Inception-v3 against torch-fidelity's, and of FID from cached statistics.

One run, one set of random uint8 images, one weights file:

- torch-fidelity's ``"inception-v3-compat"`` extractor at its defaults (float32, batch 64);
- ganbench's ``inception_v3_fid`` fast path (batch norm folded into the convolutions, channels_last,
  batch 8), and with ``--compile`` the same network under ``torch.compile`` with inductor's freezing;
- FID between two cached 2048-d Gaussian statistics (from random features), by ganbench
  (``ganbench.metrics.frechet.frechet_distance``, which replaced ``fidelity.fid_value``; with and without the
  reference covariance's Cholesky factor cached) and by torch-fidelity's ``fid_statistics_to_metric``.

Each extractor is warmed up first, then the passes alternate between the extractors ``--repeats`` times and
the fastest pass of each is reported, so background load affects both alike. Features are compared with
the maximum relative error, max |ours - theirs| / max |theirs|, per output. Without ``--weights`` random
weights of the right shapes are written to a temporary directory (the timings are the same; the features
are meaningless). torch-fidelity's extractor loads its file with ``torch.load(weights_only=False)``; this
script sets ``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` so that load is a safe one too.

Usage::

    python benchmarks/inception_speed.py                          # about a minute on 2 CPU cores
    python benchmarks/inception_speed.py --weights /path/to/weights-inception-2015-12-05-6726825d.pth
    python benchmarks/inception_speed.py --compile                # plus up to a minute of compilation
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"  # torch-fidelity's own torch.load becomes weights_only

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_fidelity  # noqa: E402
from tabulate import tabulate  # noqa: E402
from torch_fidelity.metric_fid import fid_statistics_to_metric  # noqa: E402

from ganbench.features.inception import (  # noqa: E402
    FAST_BATCH_SIZE, FEATURE_LAYER, FIDELITY_NAME, LOGITS_LAYER, REFERENCE_NAME, InceptionV3FID, weights_sha256,
    write_random_weights)
from ganbench.metrics.frechet import GaussianStats, frechet_distance  # noqa: E402

Extractor = Callable[[torch.Tensor], tuple[torch.Tensor, ...]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--weights", type=Path, default=None,
                   help="Inception weights .pth (torch-fidelity's file); default: random weights in a temp dir")
    p.add_argument("--images", type=int, default=64, help="timed images per pass")
    p.add_argument("--size", type=int, default=64, help="image side (random uint8 RGB images)")
    p.add_argument("--repeats", type=int, default=2, help="timed passes per extractor; the fastest is reported")
    p.add_argument("--warmup", type=int, default=8, help="warm-up images per extractor (not timed)")
    p.add_argument("--fidelity-batch", type=int, default=int(torch_fidelity.defaults.DEFAULTS["batch_size"]),
                   help="torch-fidelity's batch size (its default)")
    p.add_argument("--fast-batch", type=int, default=FAST_BATCH_SIZE, help="ganbench fast path batch size")
    p.add_argument("--compile", action="store_true",
                   help="also time the fast path under torch.compile with freezing (compiles once, ~40 s)")
    p.add_argument("--fid-samples", type=int, default=5000, help="features per cached FID statistic")
    p.add_argument("--fid-dim", type=int, default=2048, help="feature dimension of the FID statistics")
    p.add_argument("--fid-repeats", type=int, default=5, help="timed calls of ganbench's FID (median reported)")
    p.add_argument("--skip-fid", action="store_true", help="skip the FID timing")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


@torch.no_grad()
def run_all(net: Extractor, images: torch.Tensor, batch: int) -> tuple[torch.Tensor, ...]:
    """Outputs of ``net`` over ``images`` fed ``batch`` at a time, concatenated."""
    parts = [net(images[i:i + batch]) for i in range(0, len(images), batch)]
    return tuple(torch.cat(p) for p in zip(*parts))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def max_rel_err(ours: tuple[torch.Tensor, ...], theirs: tuple[torch.Tensor, ...]) -> list[float]:
    return [float((a - b).abs().max() / b.abs().max()) for a, b in zip(ours, theirs)]


def time_extractors(args: argparse.Namespace, weights: Path) -> list[list[object]]:
    layers = [FEATURE_LAYER, LOGITS_LAYER]
    g = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (args.images, 3, args.size, args.size), dtype=torch.uint8, generator=g)
    warm = torch.randint(0, 256, (args.warmup, 3, args.size, args.size), dtype=torch.uint8, generator=g)

    theirs = torch_fidelity.utils.create_feature_extractor(REFERENCE_NAME, layers, cuda=False,
                                                           feature_extractor_weights_path=str(weights), verbose=False)
    fast = InceptionV3FID(FIDELITY_NAME, layers, str(weights), fast=True, fast_batch_size=args.fast_batch)
    # (label, network, batch fed to it, seconds of warm-up / compilation)
    runs: list[tuple[str, Extractor, int, float]] = []
    for label, net, batch in ((f"torch-fidelity {REFERENCE_NAME} (fp32, batch {args.fidelity_batch})", theirs,
                               args.fidelity_batch),
                              (f"ganbench fast (BN folded, channels_last, batch {args.fast_batch})", fast,
                               args.fast_batch)):
        seconds, _ = timed(lambda: run_all(net, warm, batch))
        runs.append((label, net, batch, seconds))
    if args.compile:
        compiled = InceptionV3FID(FIDELITY_NAME, layers, str(weights), fast=True, fast_batch_size=args.fast_batch,
                                  compiled=True)
        print("compiling (torch.compile, freezing) ...", file=sys.stderr)
        seconds, _ = timed(lambda: run_all(compiled, warm, args.fast_batch))
        runs.append((f"ganbench fast + torch.compile(freezing) (batch {args.fast_batch})", compiled, args.fast_batch,
                     seconds))

    best = [float("inf")] * len(runs)
    outputs: list[tuple[torch.Tensor, ...]] = [()] * len(runs)
    for r in range(args.repeats):
        for i, (label, net, batch, _) in enumerate(runs):
            seconds, outputs[i] = timed(lambda: run_all(net, images, batch))
            best[i] = min(best[i], seconds)
            print(f"pass {r + 1}/{args.repeats} {label}: {args.images / seconds:.2f} img/s", file=sys.stderr)

    rows = []
    for i, (label, _, _, warm_s) in enumerate(runs):
        rate = args.images / best[i]
        errs = max_rel_err(outputs[i], outputs[0]) if i else [0.0, 0.0]
        rows.append([label, f"{rate:.2f}", f"{rate / (args.images / best[0]):.2f}x",
                     f"{errs[0]:.1e}", f"{errs[1]:.1e}", f"{warm_s:.1f}"])
    return rows


def gaussian(features: torch.Tensor) -> dict[str, np.ndarray]:
    """Mean and covariance (float64) of an (N, D) feature matrix: a cached FID statistic."""
    x = features.double().numpy()
    return {"mu": x.mean(axis=0), "sigma": np.cov(x, rowvar=False)}


def time_fid(args: argparse.Namespace) -> list[list[object]]:
    """Seconds per FID (median and fastest of ``--fid-repeats`` calls), ganbench's and torch-fidelity's."""
    g = torch.Generator().manual_seed(args.seed + 1)
    sa = gaussian(torch.randn(args.fid_samples, args.fid_dim, generator=g))
    sb = gaussian(torch.randn(args.fid_samples, args.fid_dim, generator=g) * 1.1 + 0.05)
    ga = GaussianStats(sa["mu"], sa["sigma"], args.fid_samples)
    gb = GaussianStats(sb["mu"], sb["sigma"], args.fid_samples)

    def row(label: str, fn: Callable[[], object], repeats: int) -> tuple[list[object], object]:
        times, out = [], None
        for _ in range(repeats):
            seconds, out = timed(fn)
            times.append(seconds)
        value = f"{float(out):.6f}" if isinstance(out, (float, np.floating, np.ndarray)) else ""
        return [label, f"{np.median(times):.2f}", f"{min(times):.2f}", repeats, value], out

    rows = []
    r, _ = row("ganbench.metrics.frechet.frechet_distance", lambda: frechet_distance(ga, gb), args.fid_repeats)
    rows.append(r)
    r, gb_rooted = row("  reference covariance factor (computed once)", gb.with_root, 1)
    rows.append(r)
    r, _ = row("  frechet_distance with the factor cached", lambda: frechet_distance(ga, gb_rooted), args.fid_repeats)
    rows.append(r)
    r, _ = row("torch_fidelity fid_statistics_to_metric",
               lambda: fid_statistics_to_metric(sa, sb, verbose=False)["frechet_inception_distance"], 1)
    rows.append(r)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if weights is None:
            weights = write_random_weights(Path(tmp) / "weights-random.pth", seed=args.seed)
            print(f"no --weights: using random weights of the right shapes ({weights}); timings are valid, "
                  f"feature values are not Inception's", file=sys.stderr)
        rows = time_extractors(args, weights)
        print(f"Inception-v3 features: {args.images} random uint8 images 3x{args.size}x{args.size}, "
              f"weights {'random (temp file)' if args.weights is None else weights} "
              f"sha256 {weights_sha256(weights)[:16]}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"best of {args.repeats} passes")
        print(tabulate(rows, headers=["extractor", "img/s", "vs torch-fidelity", "max rel err 2048",
                                      "max rel err logits", "warm-up/compile s"]))
    if not args.skip_fid:
        fid_rows = time_fid(args)
        print()
        print(f"FID from two cached statistics ({args.fid_dim}-d, each from {args.fid_samples} random features)")
        print(tabulate(fid_rows, headers=["function", "median s", "fastest s", "calls", "FID"]))


if __name__ == "__main__":
    main()
