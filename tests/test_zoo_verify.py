"""`verify` reproduces a card's expected scores through the public evaluation path, and fails on a planted wrong
expectation; the CLI's fetch, verify and `ls models` weight status."""

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ganbench.cli import main
from ganbench.data import load
from ganbench.paths import REPO_ROOT
from ganbench.results.store import read_results
from ganbench.zoo import get_model
from ganbench.zoo.cards import CardError, load_card
from ganbench.verify import verify

TINY = {"resolution": 32, "channels": 1, "nz": 16, "ngf": 8, "ndf": 8}
PROTOCOL = {"dataset": "digits8", "extractor": "mnist_cnn", "n": 200, "seed": 3, "metrics": "prc,dc"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A small DCGAN that ganbench trains here (40 steps on digits8 at 32x32)."""
    from ganbench.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run")
    outcome = train(get_model("dcgan"), load("digits8", "train", 32), out,
                    TrainConfig(steps=40, batch_size=32, checkpoint_every=40), TINY, progress=False)
    return outcome.weights_path


@pytest.fixture(scope="module")
def oracle(trained, tmp_path_factory) -> dict:
    """The scores `ganbench eval` gives the trained weights under the protocol (the reference for verify)."""
    results = tmp_path_factory.mktemp("eval")
    out = CliRunner().invoke(main, ["eval", str(trained), "--dataset", PROTOCOL["dataset"], "--heldout-split", "none",
                                    "--extractor", PROTOCOL["extractor"], "--metrics", PROTOCOL["metrics"],
                                    "-n", str(PROTOCOL["n"]), "--seed", str(PROTOCOL["seed"]), "--out", str(results)])
    assert out.exit_code == 0, out.output
    [result] = read_results(results)
    return {k: s.value for k, s in result.scores.items()}


@pytest.fixture
def zoo(tmp_path, monkeypatch) -> Path:
    """A zoo directory for cards written by the test; the extractor cards and weights are the repository's. The
    cache stays the session's (conftest), so the digits' reference features are extracted once."""
    root = tmp_path / "zoo"
    (root / "cards").mkdir(parents=True)
    (root / "extractors").symlink_to(REPO_ROOT / "zoo" / "extractors")
    monkeypatch.setenv("GANBENCH_ZOO", str(root))
    return root


def write_card(zoo: Path, name: str, weights: Path | None, expected: dict[str, tuple[float, float]] | None = None,
               sources: str | None = None, protocol: bool = True) -> Path:
    """A card for ``weights``, copied into the zoo's weights/ (a card's file must lie in the zoo or the cache)."""
    data = weights.read_bytes() if weights else b"x"
    if weights is not None and sources is None:
        (zoo / "weights").mkdir(exist_ok=True)
        (zoo / "weights" / f"{name}.safetensors").write_bytes(data)
        sources = f'file = "weights/{name}.safetensors"'
    lines = [f'name = "{name}"', f'arch = "{name.split(".")[0]}"', 'license = "MIT"', 'paper = "Radford et al. 2015"',
             'training_data = "digits8 train, 40 steps"', f'sha256 = "{hashlib.sha256(data).hexdigest()}"',
             f"size = {len(data)}", "", "[config]", *(f"{k} = {v}" for k, v in TINY.items()), "", "[sources]",
             sources]
    if protocol:
        metrics = ", ".join(f'"{m}"' for m in PROTOCOL["metrics"].split(","))
        lines += ["", "[protocol]", f'dataset = "{PROTOCOL["dataset"]}"', f'extractor = "{PROTOCOL["extractor"]}"',
                  f'n_samples = {PROTOCOL["n"]}', f'seed = {PROTOCOL["seed"]}', f"metrics = [{metrics}]"]
    if expected:
        lines += ["", "[expected]", *(f"{k} = {{ value = {v!r}, tol = {t!r} }}" for k, (v, t) in expected.items())]
    path = zoo / "cards" / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_verify_reproduces_what_eval_gives(zoo, trained, oracle):
    assert set(oracle) == {"precision", "recall", "density", "coverage"}
    write_card(zoo, "dcgan.trained", trained, {k: (v, 1e-9) for k, v in oracle.items()})
    report = verify("dcgan.trained")
    assert report.ok, [c.describe() for c in report.failures]
    assert {c.score: c.actual for c in report.checks} == pytest.approx(oracle, abs=1e-12)
    assert report.result.model.name == "dcgan.trained"
    assert report.result.model.weights_sha256 == hashlib.sha256(trained.read_bytes()).hexdigest()
    assert report.result.samples.n == PROTOCOL["n"] and report.result.samples.seed == PROTOCOL["seed"]


def test_a_planted_wrong_expectation_fails(zoo, trained, oracle):
    planted = {k: (v, 1e-9) for k, v in oracle.items()}
    planted["density"] = (oracle["density"] + 0.05, 0.01)  # outside its tolerance
    planted["fid"] = (1.0, 0.5)  # a score the protocol does not produce
    write_card(zoo, "dcgan.planted", trained, planted)
    report = verify("dcgan.planted")
    assert not report.ok
    assert sorted(c.score for c in report.failures) == ["density", "fid"]
    assert "got missing" in next(c for c in report.checks if c.score == "fid").describe()

    out = CliRunner().invoke(main, ["verify", "dcgan.planted"])
    assert out.exit_code == 1, out.output
    assert "FAIL density" in out.output and "ok   precision" in out.output and "NOT reproduced" in out.output


def test_verify_needs_a_protocol_and_expectations(zoo, trained):
    write_card(zoo, "dcgan.noexp", trained)
    with pytest.raises(CardError, match="key 'expected'"):
        verify("dcgan.noexp")
    write_card(zoo, "dcgan.noproto", trained, {"precision": (0.5, 0.1)}, protocol=False)
    with pytest.raises(CardError, match="key 'protocol'"):
        verify("dcgan.noproto")


def test_cli_fetch_and_its_errors(zoo, trained, tmp_path):
    write_card(zoo, "dcgan.clifetch", trained)
    runner = CliRunner()
    out = runner.invoke(main, ["fetch", "dcgan.clifetch"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output.strip().splitlines()[-1])
    assert Path(doc["path"]).is_file() and doc["source_sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    assert doc["license"] == "MIT" and doc["source"].startswith("file ")

    out = runner.invoke(main, ["fetch", "dcgan.clifecth"])
    assert out.exit_code == 2 and "Did you mean 'dcgan.clifetch'" in out.output

    other = zoo / "weights" / "other.bin"
    other.write_bytes(b"substituted")
    card = write_card(zoo, "dcgan.wrong", trained, sources='file = "weights/other.bin"')
    out = runner.invoke(main, ["fetch", "dcgan.wrong"])
    assert out.exit_code == 1
    assert load_card("dcgan.wrong").sha256 in out.output and hashlib.sha256(b"substituted").hexdigest() in out.output
    assert card.exists()


def test_ls_models_shows_where_each_weight_set_is(zoo, trained):
    write_card(zoo, "dcgan.lsfile", trained)
    write_card(zoo, "dcgan.onhub", trained, sources='hub = { repo = "ganbench-test/absent", filename = "G.pth" }')
    write_card(zoo, "lsgan.frompip", trained,
               sources='pypi = { package = "surely-not-installed-ganbench", version = "1.0", path = "p/w.pth" }')
    write_card(zoo, "stylegan9.future", trained)  # an architecture nobody registered (yet)
    (zoo / "cards" / "dcgan.broken.toml").write_text('name = "dcgan.broken"\n')
    out = CliRunner().invoke(main, ["ls", "models"])
    assert out.exit_code == 0, out.output
    lines = [ln.split() for ln in out.output.splitlines()]
    status = {ln[0]: " ".join(ln[1:]) for ln in lines if ln and "." in ln[0] and len(ln) > 2 and ln[1] == "weights"}
    assert status["dcgan.lsfile"].startswith("weights local: file")
    assert status["dcgan.onhub"].startswith("weights fetchable: hub ganbench-test/absent/G.pth@main")
    assert status["lsgan.frompip"] == ("weights pip-installable: "
                                       "pip install --no-deps 'surely-not-installed-ganbench==1.0'")
    assert status["dcgan.broken"].startswith("weights invalid:") and "required key is missing" in status["dcgan.broken"]
    assert status["mlpgan.*"].startswith("weights train-only")
    assert status["stylegan9.future"].startswith("weights local")
    assert "stylegan9 (architecture not registered)" in " ".join(out.output.split())
    # the weight sets sit under their architecture's line
    names = [ln[0] for ln in lines if ln]
    assert names.index("dcgan") < names.index("dcgan.lsfile") < names.index("lsgan") < names.index("lsgan.frompip")


def test_ls_models_lists_the_committed_weight_sets():
    out = CliRunner().invoke(main, ["ls", "models"])
    assert out.exit_code == 0, out.output
    for name, arch in (("dcgan.faces64", "dcgan"), ("cdcgan.eyes128", "cdcgan"), ("cyclegan.vintage256", "cyclegan")):
        line = next(ln for ln in out.output.splitlines() if ln.split()[:1] == [name])
        assert line.split()[1] == "weights" and line.split()[2].rstrip(":") in ("local", "pip-installable")


@pytest.mark.parametrize("name", ["dcgan.faces64", pytest.param("cdcgan.eyes128", marks=pytest.mark.slow)])
def test_committed_third_party_cards_reproduce(name):
    from importlib.metadata import PackageNotFoundError, distribution

    card = load_card(name)
    try:
        distribution(card.sources[-1].package)
    except PackageNotFoundError:
        pytest.skip(f"{card.sources[-1].install_hint()} to run this check")
    report = verify(card)
    assert report.ok, [c.describe() for c in report.failures]
