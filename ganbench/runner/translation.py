"""Translation suites: train Pix2Pix / CycleGAN / DiscoGAN on offline tasks and score them on the test split.

A translation suite TOML has ``kind = "translation"`` and one ``[[tasks]]`` table per dataset (a paired or
unpaired task of ``ganbench.data.translation``) listing the models trained on it. Every task gets two
reference rows: the identity mapping (the input images scored as if they were translations: what a model
must beat) and the real targets (the test split's B images: the best a translation can look like). Rows:

- paired tasks: L1, PSNR and SSIM to the target of each pair, the digit classifier's accuracy on the
  outputs against the source label (semantic preservation), FID and KID against the B domain's training
  images; the main metric, which a trained model must beat the identity row on, is L1;
- unpaired tasks: FID and KID of G_AB(test A) against the B domain's training images, and the cycle error
  |G_BA(G_AB(a)) - a| for models with both directions; the main metric is FID.

Jobs have stable ids; a job whose result exists is skipped, training resumes from its last checkpoint,
``fresh`` recomputes everything. Results are ordinary result documents (``ganbench.results``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ganbench.data import load
from ganbench.results.schema import SCHEMA_VERSION, DatasetInfo, ExtractorInfo, ModelInfo, Result, current_provenance
from ganbench.results.store import write_result

MAIN_METRIC = {"paired-translation": "l1", "unpaired-translation": "fid"}


@dataclass(frozen=True)
class TranslationModelPlan:
    model: str  # "pix2pix", "cyclegan" or "discogan"
    preset: str | None = "tiny"
    config: dict[str, Any] = field(default_factory=dict)  # overrides on top of the preset
    train: dict[str, Any] = field(default_factory=dict)  # TranslationTrainConfig fields
    seed: int = 0


@dataclass(frozen=True)
class TranslationTask:
    dataset: str
    resolution: int = 32
    n_test: int = 500  # test examples scored per row
    extractor: str = "mnist_cnn"
    models: tuple[TranslationModelPlan, ...] = ()


@dataclass(frozen=True)
class TranslationJob:
    id: str
    kind: str  # "model", "identity" or "real"
    task: TranslationTask
    model: TranslationModelPlan | None


@dataclass(frozen=True)
class TranslationSuite:
    name: str
    description: str
    path: Path
    results: str
    leaderboard: str
    tasks: tuple[TranslationTask, ...]

    def jobs(self) -> list[TranslationJob]:
        out = []
        for t in self.tasks:
            base = {"dataset": t.dataset, "resolution": t.resolution, "n": t.n_test, "extractor": t.extractor}
            out.append(TranslationJob(_job_id("identity", t.dataset, base), "identity", t, None))
            out.append(TranslationJob(_job_id("real", t.dataset, base), "real", t, None))
            for m in t.models:
                out.append(TranslationJob(_job_id(f"{m.model}_s{m.seed}", t.dataset, {**base, "m": dataclasses.asdict(m)}),
                                          "model", t, m))
        return out


def _job_id(prefix: str, dataset: str, inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True)
    return f"{prefix}-{dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def is_translation_suite(path: str | Path) -> bool:
    return tomllib.loads(Path(path).read_text()).get("kind") == "translation"


def load_translation_suite(path: str | Path) -> TranslationSuite:
    """Parse a translation suite TOML; unknown datasets, models or keys raise a ValueError naming them."""
    from ganbench.registry import DATASETS, MODELS

    path = Path(path)
    doc = tomllib.loads(path.read_text())
    tasks = []
    for t in doc.get("tasks", []):
        t = dict(t)
        if t.get("dataset") not in DATASETS or DATASETS.meta(t["dataset"]).get("kind") != "translation":
            raise ValueError(f"suite {str(path)!r}: task dataset {t.get('dataset')!r} is not a translation dataset; "
                             f"valid: {', '.join(n for n in DATASETS.list() if DATASETS.meta(n).get('kind') == 'translation')}")
        models = []
        for m in t.pop("models", []):
            if m.get("model") not in MODELS or not MODELS.meta(m["model"]).get("task", "").endswith("translation"):
                raise ValueError(f"suite {str(path)!r}: {m.get('model')!r} is not a translation model "
                                 f"(pix2pix, cyclegan, discogan)")
            try:
                models.append(TranslationModelPlan(**m))
            except TypeError as e:
                raise ValueError(f"suite {str(path)!r}: model {m['model']!r}: {e}") from None
        try:
            tasks.append(TranslationTask(**t, models=tuple(models)))
        except TypeError as e:
            raise ValueError(f"suite {str(path)!r}: task {t.get('dataset')!r}: {e}") from None
    return TranslationSuite(doc["name"], doc.get("description", ""), path, doc.get("results", f"results/{doc['name']}"),
                            doc.get("leaderboard", f"leaderboards/{doc['name']}.md"), tuple(tasks))


def _train(job: TranslationJob, work_dir: Path, fresh: bool, progress: bool) -> tuple[dict[str, Any], Any, dict]:
    from ganbench.train.translation import TranslationTrainConfig, train_translation
    from ganbench.zoo import get_model

    m = job.model
    entry = get_model(m.model)
    cfg = entry.make_config(m.preset, resolution=job.task.resolution, **m.config)
    split = load(job.task.dataset, "train", job.task.resolution)
    run_dir = work_dir / job.id
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    tcfg = TranslationTrainConfig(seed=m.seed, **m.train)
    outcome = train_translation(m.model, cfg, split.domain("a"), split.domain("b"), run_dir, tcfg, resume=True,
                                progress=progress)
    info = {**dataclasses.asdict(tcfg), "dataset": f"{split.dataset}/train", "data_sha256": split.sha256,
            "resumed_from": outcome.resumed_from}
    return info, outcome, dataclasses.asdict(cfg)


def run_translation_job(job: TranslationJob, work_dir: Path, fresh: bool = False, progress: bool = True) -> Result:
    """Train (for a model row) and score one row of a translation leaderboard."""
    from ganbench.features import get_extractor
    from ganbench.metrics.translation import compute_translation, translated_fidelity, translation_inputs

    t = job.task
    test = load(t.dataset, "test", t.resolution)
    train_split = load(t.dataset, "train", t.resolution)
    n = min(t.n_test, len(test.a), len(test.b))
    paired = test.paired
    sources = test.a[:n]
    timings: dict[str, float] = {}
    model_info = ModelInfo("identity mapping" if job.kind == "identity" else "real targets (test B)", None, {}, None,
                           None)
    reconstructions = None
    if job.kind == "model":
        t0 = time.perf_counter()
        train_info, outcome, cfg = _train(job, work_dir, fresh, progress)
        timings["train"] = time.perf_counter() - t0
        ab = outcome.translators["ab"]
        t0 = time.perf_counter()
        outputs = ab.translate(sources)
        if "ba" in outcome.translators:
            reconstructions = outcome.translators["ba"].translate(outputs)
        timings["sample"] = time.perf_counter() - t0
        model_info = ModelInfo(job.model.model, job.model.model, cfg, ab.weights_sha256, train_info)
    elif job.kind == "identity":
        outputs = sources
    else:
        outputs = test.b[:n]

    t0 = time.perf_counter()
    scores = {}
    if paired:
        labels = test.labels_a[:n] if test.labels_a is not None else None
        scores.update(compute_translation([], translation_inputs(
            outputs, targets=test.b[:n], source_labels=labels if job.kind != "real" else test.labels_b[:n],
            classifier=t.extractor)))
    elif reconstructions is not None:
        scores.update(compute_translation(["cycle_l1"], translation_inputs(outputs, sources=sources,
                                                                           reconstructions=reconstructions)))
    scores.update(translated_fidelity(outputs, train_split.domain("b"), extractor=t.extractor, progress=progress))
    timings["metrics"] = time.perf_counter() - t0

    spec = get_extractor(t.extractor)
    _, weights_sha = spec.weights()
    ref = train_split.domain("b")
    return Result(
        schema_version=SCHEMA_VERSION, run_id=job.id, kind="model" if job.kind == "model" else "reference",
        task=test.task, model=model_info,
        dataset=DatasetInfo(t.dataset, "train (B domain)", train_split.sha256, len(ref), t.resolution, test.resize,
                            test.source),
        extractor=ExtractorInfo(spec.name, weights_sha, spec.feature_layer, spec.logits_layer, spec.input_resize),
        samples={"n": n, "seed": None, "source": f"{t.dataset}/test A translated" if job.kind == "model" else
                 ("test A as is" if job.kind == "identity" else "test B")},
        scores=scores, timings={k: round(v, 3) for k, v in timings.items()}, provenance=current_provenance("cpu"))


def run_translation_suite(suite: TranslationSuite, results_dir: Path | None = None, work_dir: Path | None = None,
                          progress: bool = True, on_job: Callable[[Any, str], None] | None = None,
                          fresh: bool = False) -> list[Result]:
    """Run every job of a translation suite without a valid result; returns all its results in job order."""
    from ganbench.runner import existing_result, sweep_temporaries

    results_dir = Path(results_dir or suite.results)
    work_dir = Path(work_dir or Path("runs") / suite.name)
    sweep_temporaries(results_dir, work_dir)
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
        result = run_translation_job(job, work_dir, fresh=fresh, progress=progress)
        write_result(result, results_dir)
        results.append(result)
    return results


def main_metric_wins(results: list[Result]) -> dict[str, bool]:
    """For each trained model, whether it beats its task's identity row on the task's main metric."""
    wins = {}
    for r in results:
        if r.kind != "model":
            continue
        metric = MAIN_METRIC[r.task]
        ident = [x for x in results if x.dataset.name == r.dataset.name and x.model.name == "identity mapping"]
        if ident and metric in r.scores:
            wins[r.run_id] = r.scores[metric].value < ident[0].scores[metric].value
    return wins


def translation_suite_path(name_or_path: str) -> Path | None:
    """The TOML of a suite name or path if it is a translation suite, else None."""
    from ganbench.registry import SUITES

    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.exists()):
        if name_or_path not in SUITES:
            return None
        path = Path(SUITES.get(name_or_path))
    return path if is_translation_suite(path) else None
