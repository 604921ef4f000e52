"""Suites: stable job ids, skipping finished jobs, --fresh, and deterministic results."""

import pytest

from ganbench.runner import load_suite, run_suite

SUITE = """
name = "tiny"
results = "{results}"
leaderboard = "{board}"
sample_seed = 7

[[datasets]]
name = "ring8"
extractor = "points2d"
reference_split = "test"  # 2000 points (train holds 10 000): the reruns score against a smaller reference
heldout_split = "train"
n_samples = 400
untrained = {{ model = "mlpgan", config = {{}} }}

[[models]]
model = "mlpgan"
dataset = "ring8"
train = {{ steps = 60, batch_size = 32, checkpoint_every = 30 }}
seeds = [0, 1]
"""


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE.format(results=tmp_path / "results", board=tmp_path / "board.md"))
    return load_suite(str(path))


def test_suite_jobs_have_stable_ids(suite):
    ids = [j.id for j in suite.jobs()]
    assert len(ids) == len(set(ids)) == 4  # real, untrained, two seeds
    assert ids == [j.id for j in load_suite(str(suite.path)).jobs()]


def test_rerun_skips_finished_jobs_and_fresh_reproduces_them(suite, tmp_path, monkeypatch):
    # a fixed metric-stage thread count (else it follows the machine's load): scores are then bit-identical
    monkeypatch.setenv("GANBENCH_METRIC_THREADS", "1")
    states = []
    first = run_suite(suite, work_dir=tmp_path / "work", progress=False, on_job=lambda j, s: states.append(s))
    assert states.count("running") == 4
    states.clear()
    second = run_suite(suite, work_dir=tmp_path / "work", progress=False, on_job=lambda j, s: states.append(s))
    assert states == ["skipped (result exists)"] * 4 and second == first
    fresh = run_suite(suite, work_dir=tmp_path / "work", progress=False, fresh=True)
    for a, b in zip(first, fresh):
        assert a.run_id == b.run_id and a.model.weights_sha256 == b.model.weights_sha256
        assert {k: s.value for k, s in a.scores.items()} == {k: s.value for k, s in b.scores.items()}
        assert a.provenance.metric_threads == b.provenance.metric_threads == 1


def test_suite_with_unknown_model_names_the_valid_ones(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SUITE.format(results=tmp_path, board=tmp_path / "b.md").replace('model = "mlpgan"\ndataset',
                                                                                    'model = "mlpgn"\ndataset'))
    with pytest.raises(ValueError, match="Did you mean 'mlpgan'"):
        load_suite(str(path))


@pytest.mark.slow
def test_bench_step_times_the_trained_generator_and_is_skipped_on_rerun(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(SUITE.format(results=tmp_path / "results", board=tmp_path / "b.md")
                    .replace("seeds = [0, 1]", "seeds = [0]") + '\n[bench]\nbatch_sizes = [1, 32]\ndevice = "cpu"\nrepeats = 3\nwarmup = 1\n')
    s = load_suite(str(path))
    kinds = [(j.kind, j.row) for j in s.jobs()]
    assert kinds == [("reference", "real"), ("reference", "untrained"), ("model", None), ("bench", None)]
    results = run_suite(s, work_dir=tmp_path / "work", progress=False)
    trained, bench = results[2], results[3]
    assert bench.kind == "bench" and bench.dataset.name == "ring8"
    assert bench.model.weights_sha256 == trained.model.weights_sha256  # the trained weights were timed
    assert [r["batch_size"] for r in bench.bench["rows"]] == [1, 32]
    assert bench.scores["images_per_s"].value > 0
    states = []
    run_suite(s, work_dir=tmp_path / "work", progress=False, on_job=lambda j, st: states.append(st))
    assert states == ["skipped (result exists)"] * 4
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("repeats = 3", "repeat = 3"))
    with pytest.raises(ValueError, match=r"\[bench\].*valid keys"):
        load_suite(str(bad))
