"""Issue 17, tried as an adversary would: nothing from a model or a result file fools the gate, every bad input gets a
clear error and no traceback, nothing finished is lost. (Model cards and downloads: tests/test_adversarial_cards.py.)

Each class of the issue is exercised through the public entry points (the CLI in-process with click's runner, or
the runner in a subprocess that SIGKILLs itself at chosen points), with property-style loops where they fit.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import main
from ganbench.results.schema import DatasetInfo, ExtractorInfo, ModelInfo, SampleInfo, Score, make_result
from ganbench.results.store import DirectoryLocked, directory_lock, read_results, sweep_temporaries, write_result

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=True)


def no_traceback(result) -> None:
    """The command ended with a message, not an uncaught exception or a Python traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output


def scored(name: str = "m", fid: float = 5.0, std: float | None = 0.5, run_id: str = "run-a", **scores: float):
    all_scores = {"fid": Score(fid, std, None, None, 100, False, "planted")}
    all_scores.update({k: Score(v, 0.01, None, None, 100, True, "planted") for k, v in scores.items()})
    return make_result(run_id, "model", "unconditional", ModelInfo(name, None, {}, "ab" * 32, None),
                       DatasetInfo("mnist", "train", "cd" * 32, 4000, 32, "bilinear", "planted"),
                       ExtractorInfo("mnist_cnn", "ef" * 32, "pool", "logits", "bilinear"),
                       SampleInfo(100, "generator", seed=1), all_scores, {})


def write_doc(path: Path, result) -> Path:
    path.write_text(json.dumps(result.to_dict(), allow_nan=True))
    return path


# ----------------------------------------------------------------------------------------------- 2: the gate


USER_MODELS = """
import sys, time, torch

class ExitOnImport:  # placeholder so the file imports in the other tests
    pass

class Fine:
    def sample(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, 256, (n, 1, 32, 32), generator=g, dtype=torch.uint8)

class ExitOnSample(Fine):
    def sample(self, n, seed):
        if n > 4:
            sys.exit(0)
        return super().sample(n, seed)

class InterruptOnSample(Fine):
    def sample(self, n, seed):
        if n > 4:
            raise KeyboardInterrupt
        return super().sample(n, seed)

class RaiseOnRealDraw(Fine):
    def sample(self, n, seed):
        if n > 4:
            raise RuntimeError("out of memory (planted)")
        return super().sample(n, seed)

class Hangs(Fine):
    def sample(self, n, seed):
        if n > 4:
            time.sleep(600)
        return super().sample(n, seed)

class Nondeterministic(Fine):
    calls = 0
    def sample(self, n, seed):
        Nondeterministic.calls += 1
        out = super().sample(n, seed)
        if n > 4 and Nondeterministic.calls % 2 == 0:
            out[-1, 0, 0, 0] ^= 1  # one pixel of one image differs on every second draw
        return out
"""


@pytest.fixture(scope="module")
def user_models(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "models.py"
    path.write_text(USER_MODELS)
    (path.parent / "exits.py").write_text("import sys\nsys.exit(0)\n")
    return path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    """A real baseline result of the Fine model (so the data and extractor are those a candidate is scored on)."""
    out = tmp_path_factory.mktemp("baseline")
    path = out / "models.py"
    path.write_text(USER_MODELS)
    r = cli("eval", f"{path}:Fine", "--dataset", "mnist", "--resolution", "32", "-n", "200", "--metrics", "fid,kid",
            "--heldout-split", "none", "--out", str(out / "results"), "--json")
    assert r.exit_code == 0, r.output
    return next((out / "results").glob("*.json"))


@pytest.mark.parametrize("model", ["ExitOnSample", "InterruptOnSample", "RaiseOnRealDraw", "Nondeterministic"])
def test_a_model_that_exits_or_fails_never_passes_a_check(user_models, baseline, model):
    r = cli("check", f"{user_models}:{model}", "--against", str(baseline), "-n", "200")
    assert r.exit_code == 2, r.output
    no_traceback(r)
    assert model in r.output or "models.py" in r.output


def test_a_model_that_exits_while_imported_fails_eval_and_check(user_models, baseline):
    for args in (["eval", f"{user_models.parent / 'exits.py'}:G", "--dataset", "mnist"],
                 ["check", f"{user_models.parent / 'exits.py'}:G", "--against", str(baseline)]):
        r = cli(*args)
        assert r.exit_code == 2, r.output
        no_traceback(r)
        assert "sys.exit(0)" in r.output


def test_a_hanging_model_is_stopped_by_the_timeout(user_models, baseline):
    t0 = time.perf_counter()
    r = cli("check", f"{user_models}:Hangs", "--against", str(baseline), "-n", "200", "--timeout", "2")
    assert r.exit_code == 2 and "within 2 s" in r.output, r.output
    assert time.perf_counter() - t0 < 60


@pytest.mark.parametrize("side", ["candidate", "baseline"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_score_is_an_error_not_a_pass(tmp_path, side, bad):
    good, broken = scored(fid=5.0), scored(fid=bad, run_id="run-b")
    cand, base = (broken, good) if side == "candidate" else (good, broken)
    r = cli("check", str(write_doc(tmp_path / "c.json", cand)), "--against", str(write_doc(tmp_path / "b.json", base)))
    assert r.exit_code == 2, r.output
    no_traceback(r)


def test_a_score_missing_from_the_candidate_is_an_error(tmp_path):
    cand, base = scored(fid=5.0), scored(fid=5.0, run_id="run-b", precision=0.5)
    r = cli("check", str(write_doc(tmp_path / "c.json", cand)), "--against", str(write_doc(tmp_path / "b.json", base)))
    assert r.exit_code == 2 and "precision" in r.output, r.output


def test_the_gate_passes_only_when_every_gated_metric_is_finite_and_inside(tmp_path):
    rng = random.Random(0)
    for _ in range(40):  # property: exit 0 implies every compared score finite and inside its band
        fid_c = rng.choice([5.0, 5.2, 50.0, math.nan, math.inf, -math.inf])
        cand = scored(fid=fid_c, std=rng.choice([0.5, None]))
        r = cli("check", str(write_doc(tmp_path / "c.json", cand)), "--against",
                str(write_doc(tmp_path / "b.json", scored(fid=5.0, run_id="run-b"))), "--json")
        no_traceback(r)
        if r.exit_code == 0:
            doc = json.loads(r.output)
            assert all(m["verdict"] in ("pass", "improved", "not gated") for m in doc["metrics"])
            assert math.isfinite(fid_c)
        if not math.isfinite(fid_c):
            assert r.exit_code == 2


def test_two_copies_of_one_result_are_one_run(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    one = scored(fid=5.0, run_id="dcgan_s0-mnist-abc")
    write_doc(results / "dcgan_s0-mnist-abc__fp32-cpu-torch2.14.1.json", one)
    write_doc(results / "dcgan_s0-mnist-abc__fp32-cpu-torch2.9.1.json", one)  # the same run, another file name
    board = cli("leaderboard", str(results), "--out", str(tmp_path / "board.md"))
    assert board.exit_code == 0, board.output
    assert "duplicate" in board.output and "dcgan_s0-mnist-abc" in board.output
    rows = [line for line in board.output.splitlines() if "**m**" in line]
    assert len(rows) == 1 and re.search(r"\|\s*100\s*\|\s*1\s*\|", rows[0]), rows  # n 100, one seed
    gate = cli("check", str(write_doc(tmp_path / "c.json", one)), "--against", str(results))
    assert gate.exit_code == 2 and "copy" in gate.output, gate.output


# ----------------------------------------------------------------------------------------------- 3, 4: the runner


SUITE = """
name = "adv"
results = "{results}"
leaderboard = "{board}"
sample_seed = 3

[[datasets]]
name = "ring8"
extractor = "points2d"
reference_split = "test"  # 2000 points (train holds 10 000): a smaller reference keeps the reruns short
heldout_split = "train"
n_samples = 200

[[models]]
model = "mlpgan"
dataset = "ring8"
train = {{ steps = {steps}, batch_size = 32, checkpoint_every = 10 }}
seeds = [0, 1]
"""

DRIVER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from ganbench.results import store
    from ganbench.runner import stages, load_suite, run_suite
    point, count = sys.argv[2], int(sys.argv[3])
    seen = {"n": 0}
    def maybe_die():
        seen["n"] += 1
        if seen["n"] == count:
            os.kill(os.getpid(), signal.SIGKILL)
    if point == "replace":  # inside the k-th atomic write of a checkpoint, samples file, result, ...
        real_replace = store.os.replace
        def replace(src, dst):
            maybe_die()
            return real_replace(src, dst)
        store.os.replace = replace
    elif point == "rename":  # between the renames that put a fresh run in place of the old one
        real_rename = stages.os.rename
        def rename(src, dst):
            real_rename(src, dst)
            maybe_die()
        stages.os.rename = rename
    run_suite(load_suite(sys.argv[1]), work_dir=Path(sys.argv[4]), progress=False, fresh=sys.argv[5] == "fresh")
""")


def _suite_file(tmp: Path, steps: int = 30) -> Path:
    path = tmp / "adv.toml"
    path.write_text(SUITE.format(results=tmp / "results", board=tmp / "adv.md", steps=steps))
    return path


def _consistent(tmp: Path) -> None:
    """Every job has its result, and every model's result names the weights and samples its run holds."""
    from safetensors import safe_open

    from ganbench.results.store import file_sha256
    from ganbench.runner import load_suite

    suite = load_suite(str(tmp / "adv.toml"))
    results = {r.run_id: r for r in read_results(tmp / "results")}
    for job in suite.jobs():
        assert job.id in results, f"{job.id} lost its result"
        if job.kind != "model":
            continue
        run = tmp / "work" / job.id
        sha = file_sha256(run / "generator.safetensors")
        assert results[job.id].model.weights_sha256 == sha, f"{job.id}: the result names other weights"
        assert json.loads((run / "train.json").read_text())["weights_sha256"] == sha
        with safe_open(str(run / "samples.safetensors"), "pt") as f:
            assert json.loads(f.metadata()["ganbench"])["weights_sha256"] == sha


# one kill point runs by default; the others are slow (python -m pytest -m slow)
@pytest.mark.parametrize("point,count", [pytest.param("replace", 2, marks=pytest.mark.slow), ("replace", 7),
                                         pytest.param("replace", 15, marks=pytest.mark.slow),
                                         pytest.param("rename", 1, marks=pytest.mark.slow),
                                         pytest.param("rename", 2, marks=pytest.mark.slow)])
def test_a_killed_fresh_run_then_a_plain_rerun_loses_nothing(tmp_path, point, count):
    suite = _suite_file(tmp_path)
    from ganbench.runner import load_suite, run_suite

    run_suite(load_suite(str(suite)), work_dir=tmp_path / "work", progress=False)
    _consistent(tmp_path)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run([sys.executable, str(driver), str(suite), point, str(count), str(tmp_path / "work"), "fresh"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert {r.run_id for r in read_results(tmp_path / "results")} == {j.id for j in load_suite(str(suite)).jobs()}
    run_suite(load_suite(str(suite)), work_dir=tmp_path / "work", progress=False)  # the plain rerun
    _consistent(tmp_path)


def test_a_second_run_on_the_same_suite_refuses_and_leaves_the_first_alone(tmp_path):
    suite = _suite_file(tmp_path, steps=3000)
    first = subprocess.Popen([sys.executable, "-m", "ganbench.cli", "run", str(suite), "--work", str(tmp_path / "work")],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "work").glob("*/checkpoint.safetensors")) and time.time() < deadline:
            time.sleep(0.2)
        second = cli("run", str(suite), "--work", str(tmp_path / "work"))
        assert second.exit_code == 2, second.output
        no_traceback(second)
        assert f"pid {first.pid}" in second.output and "in use" in second.output
        assert first.poll() is None, "the second run must not disturb the first"
    finally:
        first.kill()
        first.wait()


def test_the_sweep_removes_only_what_a_dead_process_left(tmp_path):
    live = tmp_path / f".result.json.{os.getpid()}.abc123.tmp"
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
    dead = tmp_path / f".result.json.{dead_pid}.def456.tmp"
    live.write_text("x")
    dead.write_text("x")
    assert sweep_temporaries(tmp_path) == 1
    assert live.exists() and not dead.exists()


def test_the_directory_lock_names_its_holder_and_dies_with_it(tmp_path):
    with directory_lock(tmp_path, "first"):
        child = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            from ganbench.results.store import directory_lock, DirectoryLocked
            try:
                with directory_lock({str(tmp_path)!r}, "second"):
                    print("acquired")
            except DirectoryLocked as e:
                print("refused:", e)
        """)], capture_output=True, text=True, cwd=REPO)
        assert "refused" in child.stdout and f"pid {os.getpid()}" in child.stdout and "first" in child.stdout
    killed = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from ganbench.results.store import directory_lock
        with directory_lock({str(tmp_path)!r}, "doomed"):
            print("held", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert killed.stdout.readline().strip() == "held"
    killed.kill()
    killed.wait()
    with directory_lock(tmp_path, "after the holder died"):  # no stale lock
        pass


# ----------------------------------------------------------------------------------------------- 6: counts


@pytest.mark.parametrize("n", ["-5", "0", "1.5", "many"])
def test_a_bad_sample_count_is_refused_before_anything_is_written(tmp_path, n):
    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.full((32, 32), i * 20, np.uint8)).save(folder / f"{i}.png")
    r = cli("eval", str(folder), "--dataset", "mnist", "-n", n, "--out", str(tmp_path / "out"))
    assert r.exit_code == 2, r.output
    no_traceback(r)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------- 7: tracebacks


def test_a_decompression_bomb_in_a_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "bomb"
    folder.mkdir()
    side = int(math.isqrt(2 * Image.MAX_IMAGE_PIXELS)) + 16  # over PIL's hard limit (twice MAX_IMAGE_PIXELS)
    Image.new("L", (side, side)).save(folder / "bomb.png", optimize=True)
    r = cli("eval", str(folder), "--dataset", "mnist", "-n", "1")
    assert r.exit_code == 2 and "bomb.png" in r.output, r.output
    no_traceback(r)


def test_samples_too_large_to_resize_are_refused_with_the_limit(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((256, 256), i, np.uint8)).save(folder / f"{i}.png")
    r = cli("eval", str(folder), "--dataset", "mnist", "-n", "3", env={"GANBENCH_MAX_BYTES": str(1 << 20)})
    # the reference (4000 digits) brought to 256x256 would need 1 GiB: over the planted 1 MiB limit
    assert r.exit_code == 2 and "GANBENCH_MAX_BYTES" in r.output, r.output
    no_traceback(r)


def test_pickle_weights_given_to_eval_bench_and_check_name_the_file_and_fetch(tmp_path):
    pickled = tmp_path / "G.pth"
    torch.save({"main.0.weight": torch.zeros(3)}, pickled)
    for args in (["eval", str(pickled), "--dataset", "mnist"], ["bench", "dcgan", "--weights", str(pickled)],
                 ["check", str(pickled), "--against", str(write_doc(tmp_path / "b.json", scored()))]):
        r = cli(*args)
        assert r.exit_code == 2, (args, r.output)
        no_traceback(r)
        assert "G.pth" in r.output and "ganbench fetch" in r.output, r.output


@pytest.mark.parametrize("bad", ['"fast"', "null", "[1]", "true"])
def test_result_files_with_mistyped_scores_are_refused_by_name(tmp_path, bad):
    results = tmp_path / "results"
    results.mkdir()
    doc = scored().to_dict()
    text = json.dumps(doc).replace('"value": 5.0', f'"value": {bad}', 1)
    (results / "r.json").write_text(text)
    r = cli("leaderboard", str(results), "--out", str(tmp_path / "b.md"))
    assert r.exit_code == 2 and "r.json" in r.output and "value" in r.output, r.output
    no_traceback(r)


@pytest.mark.parametrize("text", ["", "name = ", 'description = "no name"', "name = 3", "[[datasets]]\nname = 1",
                                  'name = "s"\nmodels = 4', 'name = "s"\nsurprise = 1'])
def test_broken_suite_files_are_refused_by_name(tmp_path, text):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    r = cli("run", str(path), "--work", str(tmp_path / "work"))
    assert r.exit_code == 2 and "suite.toml" in r.output, r.output
    no_traceback(r)


def test_random_bytes_as_inputs_give_messages_not_tracebacks(tmp_path):
    rng = random.Random(17)
    for trial in range(12):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        results = tmp_path / f"r{trial}"
        results.mkdir()
        (results / "x.json").write_bytes(blob)
        (tmp_path / f"s{trial}.toml").write_bytes(blob)
        (tmp_path / f"g{trial}.safetensors").write_bytes(blob)
        folder = tmp_path / f"f{trial}"
        folder.mkdir()
        (folder / "x.png").write_bytes(blob)
        for args in (["leaderboard", str(results), "--out", str(tmp_path / "b.md")],
                     ["run", str(tmp_path / f"s{trial}.toml")],
                     ["eval", str(tmp_path / f"g{trial}.safetensors"), "--dataset", "mnist"],
                     ["eval", str(folder), "--dataset", "mnist", "-n", "1"],
                     ["check", str(results / "x.json"), "--against", str(results / "x.json")]):
            r = cli(*args)
            no_traceback(r)
            assert r.exit_code in (1, 2), (args, r.exit_code, r.output)


# ----------------------------------------------------------------------------------------------- 8: floors


def test_the_dependency_floors_exclude_known_bad_versions_and_are_met():
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from packaging.version import Version

    deps = {Requirement(d).name: Requirement(d) for d in
            tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    fidelity = deps["torch-fidelity"].specifier
    assert not fidelity.contains("0.3.0"), "torch-fidelity 0.3.0 has no precision/recall"
    assert not fidelity.contains("0.4.0b1", prereleases=True), "0.4.0 pre-releases swap precision and recall"
    assert fidelity.contains("0.4.0")
    for name, req in deps.items():  # the environment the tests run in satisfies every floor
        assert req.specifier.contains(Version(version(name)), prereleases=True), (name, version(name), str(req))


def test_an_old_torch_fidelity_is_refused_with_a_message(monkeypatch):
    import torch_fidelity

    from ganbench.metrics import fidelity

    monkeypatch.setattr(torch_fidelity, "__version__", "0.3.0")
    with pytest.raises(ImportError, match="torch-fidelity>=0.4.0"):
        fidelity.check_torch_fidelity()


# ----------------------------------------------------------------------------------------------- 9: smaller


def test_names_cannot_inject_markup_into_markdown_or_csv(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    evil = scored(name="<script>alert(1)</script>|=cmd`")
    write_result(evil, results)
    for fmt in ("md", "csv"):
        r = cli("leaderboard", str(results), "--out", str(tmp_path / f"b.{fmt}"))
        assert r.exit_code == 0, r.output
        text = (tmp_path / f"b.{fmt}").read_text()
        assert "<script>" not in text and "&lt;script&gt;" in text


def test_a_leaderboard_json_written_into_a_results_folder_does_not_break_the_next_read(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_result(scored(), results)
    assert cli("leaderboard", str(results), "--out", str(results / "board.json")).exit_code == 0
    again = cli("leaderboard", str(results), "--out", str(tmp_path / "board.md"))
    assert again.exit_code == 0, again.output
    assert len(read_results(results)) == 1
