"""Running a suite: every job trains (or loads) its generator, is scored, and writes one result.

A job whose result already exists and parses is skipped; a job whose training was interrupted resumes
from its last checkpoint. Results land in the suite's results directory; the leaderboard is rendered
from that directory.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Callable

from ganbench.data import load
from ganbench.evaluate import EvalRequest, SampleSet, check_sample_count, evaluate, model_info_for
from ganbench.features import get_extractor
from ganbench.results.schema import Result
from ganbench.results.store import read_result, write_result
from ganbench.runner.suite import Job, Suite, load_suite
from ganbench.train import TrainConfig, train
from ganbench.zoo import get_model, untrained_generator

log = logging.getLogger(__name__)

__all__ = ["Job", "Suite", "load_suite", "run_suite", "run_job", "existing_result"]


def existing_result(results_dir: Path, job: Job) -> Result | None:
    """The job's result if one exists and is valid; an unreadable file is treated as missing."""
    for path in sorted(results_dir.glob(f"{job.id}__*.json")):
        try:
            result = read_result(path)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("ignoring unreadable result %s: %s", path, e)
            continue
        if result.run_id == job.id:
            return result
    return None


def run_bench_job(job: Job, suite: Suite, work_dir: Path, progress: bool = True) -> Result:
    """Throughput of a suite model: the trained generator when its run directory has one, else a fresh
    network of the same config (throughput depends on the architecture, not on the weights)."""
    from ganbench.bench import BenchSettings, bench_model, to_result
    from ganbench.results.schema import DatasetInfo
    from ganbench.zoo import load_generator

    assert job.model is not None and suite.bench is not None
    plan, b = job.model, suite.bench
    ds = job.dataset
    split = load(ds.name, ds.reference_split, ds.resolution)
    trained = [j for j in suite.jobs() if j.kind == "model" and j.model == plan]
    weights = work_dir / trained[0].id / "generator.safetensors" if trained else None
    net, sha = None, None
    if weights is not None and weights.exists():
        gen = load_generator(weights)
        net, sha = gen.net, gen.weights_sha256
    config = dict(plan.config)
    if ds.resolution is not None and "resolution" not in config and split.kind == "images":
        config.update(resolution=ds.resolution, channels=int(split.data.shape[1]))
    settings = BenchSettings(device=b.device, batch_sizes=b.batch_sizes, precision=b.precision, repeats=b.repeats,
                             warmup=b.warmup)
    report = bench_model(plan.model, settings, train=b.train, config=config, net=net, progress=progress)
    resolution = int(split.data.shape[-1]) if split.kind == "images" else None
    dataset = DatasetInfo(split.dataset, split.split, split.sha256, len(split), resolution, split.resize, split.source)
    return to_result(report, run_id=job.id, dataset=dataset, model_name=plan.model, weights_sha256=sha)


def run_job(job: Job, suite: Suite, work_dir: Path, progress: bool = True, fresh: bool = False) -> Result:
    if job.kind == "bench":
        return run_bench_job(job, suite, work_dir, progress)
    ds = job.dataset
    reference = load(ds.name, ds.reference_split, ds.resolution)
    heldout = load(ds.name, ds.heldout_split, ds.resolution)
    extractor = get_extractor(ds.extractor)
    timings: dict[str, float] = {}
    if job.kind == "real":
        check_sample_count(len(heldout), ds.n_samples, f"{ds.name}/{ds.heldout_split}")
        samples = SampleSet(heldout.data[:ds.n_samples], f"split {ds.name}/{ds.heldout_split} sha256 {heldout.sha256}", None)
        model = model_info_for(f"real data ({ds.heldout_split} split)", None, {}, None)
        task = "reference"
    else:
        assert job.model is not None
        entry = get_model(job.model.model)
        if job.kind == "untrained":
            generator = untrained_generator(job.model.model, seed=job.seed, **job.model.config)
            train_info = None
        else:
            cfg = TrainConfig(seed=job.seed, **job.model.train)
            split = load(ds.name, ds.reference_split, ds.resolution)
            if fresh and (work_dir / job.id).exists():
                shutil.rmtree(work_dir / job.id)
            outcome = train(entry, split, work_dir / job.id, cfg, job.model.config, resume=True, progress=progress)
            generator, timings["train"] = outcome.generator, outcome.seconds
            train_info = {**dataclasses.asdict(cfg), "objective": entry.objective,
                          "dataset": f"{split.dataset}/{split.split}", "data_sha256": split.sha256,
                          "resumed_from": outcome.resumed_from}
        t0 = time.perf_counter()
        drawn = generator.sample(ds.n_samples, seed=suite.sample_seed)
        samples = SampleSet(drawn, "generator", suite.sample_seed, time.perf_counter() - t0)
        model = model_info_for(generator.name if job.kind == "untrained" else entry.name, entry.name,
                               generator.config, generator.weights_sha256, train_info)
        task = "reference" if job.kind == "untrained" else entry.task
    request = EvalRequest(job.id, "reference" if job.kind != "model" else "model", task, model, reference,
                          extractor, list(ds.metrics), seed=suite.sample_seed, extra_timings=timings, heldout=heldout)
    return evaluate(request, samples, progress=progress)


def run_suite(suite: Suite, results_dir: Path | None = None, work_dir: Path | None = None, progress: bool = True,
              on_job: Callable[[Job, str], None] | None = None, fresh: bool = False) -> list[Result]:
    """Run every job of ``suite`` that has no valid result yet; returns all its results.

    Args:
        fresh: Recompute every job from scratch (train from step 0, score again). Each new result replaces the
            old one atomically when its job finishes, so an interrupted fresh run loses nothing already written.
    """
    results_dir = Path(results_dir or suite.results)
    work_dir = Path(work_dir or Path("runs") / suite.name)
    results = []
    for job in suite.jobs():
        done = None if fresh else existing_result(results_dir, job)
        if done is not None:
            if on_job:
                on_job(job, "skipped (result exists)")
            results.append(done)
            continue
        if on_job:
            on_job(job, "running")
        result = run_job(job, suite, work_dir, progress=progress, fresh=fresh)
        write_result(result, results_dir)
        results.append(result)
    return results
