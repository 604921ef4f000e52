"""What an evaluation will cost, measured on a small batch before it runs (``ganbench eval --dry-run``).

Drawing samples and extracting features scale linearly in the number of images, and dominate an
evaluation that uses a large extractor (Inception-v3 reads 2-15 images/s on a 2-core CPU). Both rates
are measured here on a calibration batch after a warm-up batch, then multiplied out; reference splits whose
features are already cached cost nothing. Metric time is not linear in anything simple (bootstrap FID is
dominated by D x D eigendecompositions, the k-NN metrics by N x M distances), so it is taken from earlier
results of the same dataset and extractor when the results directory has one, scaled by sample count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ganbench.data import Split
from ganbench.features import ExtractorSpec, reference_key
from ganbench.paths import cache_dir


@dataclass
class Estimate:
    seconds: dict[str, float | None]  # stage -> estimated seconds (None: no basis for an estimate)
    rates: dict[str, float]  # stage -> measured images per second
    notes: list[str]

    @property
    def total(self) -> float:
        return sum(v for v in self.seconds.values() if v is not None)

    def format(self) -> str:
        lines = [f"{stage:<22} {'unknown' if s is None else f'{s:8.1f} s'}" for stage, s in self.seconds.items()]
        lines.append(f"{'total (known stages)':<22} {self.total:8.1f} s")
        lines += [f"rate {k}: {v:,.1f} img/s" for k, v in self.rates.items()]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _rate(fn: Callable[[int], object], k: int) -> float:
    fn(min(k, 8))  # warm-up: lazy initialisation, allocator growth, oneDNN primitive creation
    t0 = time.perf_counter()
    fn(k)
    return k / max(time.perf_counter() - t0, 1e-9)


def _cached(spec: ExtractorSpec, split: Split) -> bool:
    path = cache_dir() / "features" / f"{spec.name}-{split.dataset}-{split.split}-{reference_key(spec, split)}.safetensors"
    return path.exists()


def estimate_evaluation(sample: Callable[[int], torch.Tensor] | None, n: int, spec: ExtractorSpec, reference: Split,
                        heldout: Split | None = None, previous: list | None = None, calibration: int = 64) -> Estimate:
    """Estimated seconds of each stage of evaluating ``n`` samples against ``reference``.

    Args:
        sample: Draws k samples (a generator's ``sample``); None when the samples already exist (a folder).
        previous: Earlier ``Result`` documents; those on the same dataset and extractor give the metric time.
        calibration: Images drawn and extracted to measure the rates.
    """
    seconds: dict[str, float | None] = {}
    rates: dict[str, float] = {}
    notes: list[str] = []
    k = max(1, min(calibration, n))
    drawn: list[torch.Tensor] = []
    if sample is not None:
        rates["sample"] = _rate(lambda m: drawn.append(sample(m)), k)
        seconds["sample"] = n / rates["sample"]
        images = drawn[-1]
    else:
        seconds["sample"] = 0.0
        images = reference.data[:k]
    if spec.input_kind == "points":
        seconds["features"] = 0.0
    else:
        net = spec.create()
        with torch.inference_mode():
            rates["features"] = _rate(lambda m: net(images[:m]), len(images))
        todo = [("generated", n)] + [(f"{s.dataset}/{s.split}", len(s)) for s in (reference, heldout)
                                     if s is not None and not _cached(spec, s)]
        seconds["features"] = sum(count for _, count in todo) / rates["features"]
        notes.append("features for " + ", ".join(f"{what} ({count})" for what, count in todo)
                     + "; cached reference features cost nothing")
    same = [r for r in previous or [] if r.kind != "bench" and r.dataset is not None and r.extractor is not None
            and r.dataset.name == reference.dataset and r.extractor.name == spec.name and "metrics" in r.timings]
    if same:
        last = same[-1]
        seconds["metrics"] = last.timings["metrics"] * n / max(last.samples.n, 1)
        notes.append(f"metric time scaled from result {last.run_id!r} ({last.samples.n} samples)")
    else:
        seconds["metrics"] = None
        notes.append("metric time unknown: no earlier result on this dataset and extractor in the results directory")
    return Estimate(seconds, rates, notes)


def results_in(directory: str | Path) -> list:
    """Result documents under ``directory`` (none if it does not exist), for ``previous``."""
    from ganbench.results.store import read_results

    path = Path(directory)
    return read_results(path) if path.is_dir() and any(path.glob("*.json")) else []
