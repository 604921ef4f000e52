"""Scale-out: sharded extraction merged exactly, the Ray executor, and crash safety under SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.data import load
from ganbench.features import extract, get_extractor
from ganbench.features.distributed import extract_sharded, shard_bounds
from ganbench.metrics.frechet import GaussianStats, frechet_distance
from ganbench.runner import load_suite, run_suite


def test_shard_bounds_cut_on_batch_boundaries_and_cover_everything():
    for n, world, batch in [(1000, 2, 250), (1001, 3, 100), (5, 4, 2), (0, 2, 10)]:
        bounds = shard_bounds(n, world, batch)
        assert len(bounds) == world and bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert all(lo % batch == 0 for lo, _ in bounds if lo < n)


def test_two_process_fid_equals_one_process_fid():
    spec = get_extractor("mnist_cnn")
    samples = load("mnist", "test", 32).data[:600]
    single = extract(spec, samples, progress=False)
    feats, sums = extract_sharded(spec, samples, nproc=2)
    for name in single:  # the same batches through the same network: the same bits
        assert torch.equal(feats[name], single[name])
    layer = spec.feature_layer
    ref = GaussianStats.from_features(extract(spec, load("mnist", "train", 32).data[:800], progress=False)[layer],
                                      with_root=True)
    one = frechet_distance(GaussianStats.from_features(single[layer]), ref)
    merged = GaussianStats.from_sums(int(sums["n"].item()), sums["sum"], sums["sum_outer"])
    two = frechet_distance(merged, ref)
    assert abs(two - one) / one < 1e-9, (one, two)


SUITE = """
name = "scale"
results = "{results}"
leaderboard = "{board}"
sample_seed = 3

[[datasets]]
name = "ring8"
extractor = "points2d"
reference_split = "test"  # 2000 points (train holds 10 000): a smaller reference keeps the reruns short
heldout_split = "train"
n_samples = 300
untrained = {{ model = "mlpgan", config = {{}} }}

[[models]]
model = "mlpgan"
dataset = "ring8"
train = {{ steps = {steps}, batch_size = 32, checkpoint_every = {every} }}
seeds = [0, 1]
"""


def _suite(tmp_path, name, steps=40, every=20):
    path = tmp_path / f"{name}.toml"
    path.write_text(SUITE.format(results=tmp_path / name / "results", board=tmp_path / name / "b.md", steps=steps,
                                 every=every))
    return load_suite(str(path))


def _scores(results):
    return {r.run_id: {k: s.value for k, s in r.scores.items()} for r in results}


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_gives_the_local_executors_results(tmp_path, ray_instance):
    local = run_suite(_suite(tmp_path, "local"), work_dir=tmp_path / "local" / "work", progress=False)
    states = []
    on_ray = run_suite(_suite(tmp_path, "ray"), work_dir=tmp_path / "ray" / "work", progress=False, executor="ray",
                       on_job=lambda j, s: states.append(s))
    assert len(local) == len(on_ray) == 4
    assert _scores(on_ray) == _scores(local)
    assert [r.model.weights_sha256 for r in on_ray] == [r.model.weights_sha256 for r in local]
    assert states.count("done") == 4
    again = []
    run_suite(_suite(tmp_path, "ray"), work_dir=tmp_path / "ray" / "work", progress=False, executor="ray",
              on_job=lambda j, s: again.append(s))
    assert again == ["skipped (result exists)"] * 4


def test_ray_executor_without_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    s = _suite(tmp_path, "noray")
    out = CliRunner().invoke(main, ["run", str(s.path), "--executor", "ray", "--work", str(tmp_path / "w")])
    assert out.exit_code != 0 and "pip install 'ganbench[ray]'" in out.output


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import ganbench.results.store as store
    import ganbench.zoo.base as zoo_base
    from ganbench.runner import load_suite, run_suite

    point, count = sys.argv[2], int(sys.argv[3])
    seen = {"n": 0}

    def maybe_die():
        seen["n"] += 1
        if seen["n"] == count:
            os.kill(os.getpid(), signal.SIGKILL)

    if point == "atomic":  # die inside an atomic write: temporary written, not yet renamed
        real = store.os.replace
        def replace(src, dst):
            maybe_die()
            return real(src, dst)
        store.os.replace = replace
    elif point == "step":  # die in the middle of training (mlpgan trains through the default adversarial step)
        real_step = zoo_base.adversarial_step
        def step(*a, **k):
            maybe_die()
            return real_step(*a, **k)
        zoo_base.adversarial_step = step
    s = load_suite(sys.argv[1])
    run_suite(s, work_dir=Path(sys.argv[4]), progress=False)
""")


@pytest.fixture(scope="module", autouse=True)
def one_metric_thread():
    """The kill tests compare a resumed run's scores with a clean run's bit for bit; the metric stage sizes its
    thread pools to the machine's load, and scores agree only to round-off across counts (the RBF MMD reads the
    BLAS-computed distance blocks). One thread for every run here, the killed subprocess included."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANBENCH_METRIC_THREADS", "1")
        yield


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    return tmp, run_suite(_suite(tmp, "clean", steps=60, every=20), work_dir=tmp / "clean" / "work", progress=False)


# kill points: inside the 3rd and 9th atomic write (a checkpoint, a samples file or a result half-renamed),
# and at training steps 30 and 95 (mid-run of the first and of the second model, between checkpoints)
# one kill point runs by default; the others are slow (python -m pytest -m slow)
@pytest.mark.parametrize("point,count", [pytest.param("atomic", 3, marks=pytest.mark.slow),
                                         pytest.param("atomic", 9, marks=pytest.mark.slow), ("step", 30),
                                         pytest.param("step", 95, marks=pytest.mark.slow)])
def test_sigkill_at_any_point_loses_nothing_and_reruns_only_unfinished_work(tmp_path, uninterrupted, point, count):
    clean_dir, clean = uninterrupted
    s = _suite(tmp_path, "killed", steps=60, every=20)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run([sys.executable, str(script), str(s.path), point, str(count), str(tmp_path / "killed" / "work")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    results_dir = tmp_path / "killed" / "results"
    before = sorted(p.name for p in results_dir.glob("*.json")) if results_dir.exists() else []
    from ganbench.results.store import read_result

    for p in before:  # whatever was written is complete
        read_result(results_dir / p)
    states = []
    final = run_suite(s, work_dir=tmp_path / "killed" / "work", progress=False, on_job=lambda j, st: states.append(st))
    assert states.count("skipped (result exists)") == len(before)
    assert _scores(final) == _scores(clean)
    assert sorted(p.name for p in results_dir.glob("*.json")) == sorted(p.name for p in (clean_dir / "clean" / "results").glob("*.json"))
    assert not list(tmp_path.rglob(".*.tmp"))  # temporaries the kill left were swept
