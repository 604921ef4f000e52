"""The HTML report (ganbench.report.html, `ganbench report`): the quick suite's committed results rendered into
a static site, opened in a real headless Chromium over the DevTools protocol (tests/chromium_cdp.py).

Oracles: the browser's own account of the page (console errors, failed loads, each <img>'s naturalWidth),
checked first on a planted broken page so the check can fail; the Stacked MNIST split's labels for the
digit-triple histogram; the quick results' recorded mode counts for the redrawn ring8 samples; a brute-force
dominance check for the Pareto front. Skipped only where no Chromium is installed (CI: apt-get install chromium).
"""

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganbench.cli import main
from ganbench.data import load
from ganbench.report.html import pareto_front, redraw, stacked_triples, verify_points
from ganbench.results.schema import Score
from ganbench.results.store import read_results, write_result
from ganbench.zoo import untrained_generator
from tests.chromium_cdp import Chromium, find_chromium

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "leaderboards" / "quick"
CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")


def _bench_result(quality, images_per_s):
    """A throughput run of the network behind ``quality`` (as `ganbench bench --out` writes one)."""
    import copy

    r = copy.deepcopy(quality)
    r.run_id, r.kind, r.dataset, r.extractor = f"bench-{quality.model.entry}", "bench", None, None
    r.scores = {"images_per_s": Score(images_per_s, images_per_s * 0.03, None, None, 10, True, "median"),
                "ms_per_image_b1": Score(1000 / images_per_s, 0.1, None, None, 10, False, "median")}
    r.bench = {"settings": {"precision": "fp32", "compile": False, "channels_last": False}}
    return r


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The quick suite's results plus two throughput runs and one row whose checkpoint exists, rendered once."""
    tmp = tmp_path_factory.mktemp("report")
    results = tmp / "results"
    # the committed throughput runs are left out: this test plants its own, and a table without any
    shutil.copytree(QUICK, results, ignore=shutil.ignore_patterns("bench_*"))
    found = {r.model.name: r for r in read_results(results)}
    write_result(_bench_result(found["dcgan"], 900.0), results)
    write_result(_bench_result(found["lsgan"], 1500.0), results)
    # a row whose generator exists locally: an untrained DCGAN saved as a checkpoint, scored "as" a model
    gen = untrained_generator("dcgan", seed=7, ngf=32, ndf=32)
    sha = gen.save(tmp / "ckpt" / "job" / "generator.safetensors")
    mine = found["lsgan"]
    mine.run_id, mine.model.name, mine.model.weights_sha256 = "mine-mnist", "mine", sha
    write_result(mine, results)
    out = tmp / "site"
    (out / "img").mkdir(parents=True)
    (out / "img" / "stale-from-last-time.png").write_bytes(b"old")
    res = CliRunner().invoke(main, ["report", str(results), "--out", str(out), "--title", "quick suite",
                                    "--checkpoints", str(tmp / "ckpt")])
    assert res.exit_code == 0, res.output
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.imgs = [], []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.refs.append(v)
                if tag == "img":
                    self.imgs.append(v)


def test_site_is_self_contained_and_says_what_is_missing(site):
    page = (site / "index.html").read_text()
    links = _Links()
    links.feed(page)
    assert links.imgs and all(not r.startswith(("http:", "https:", "//")) for r in links.refs)  # no network
    for src in links.imgs:
        assert Image.open(site / src).size[0] > 100  # every image is a local PNG that decodes
    assert not (site / "img" / "stale-from-last-time.png").exists()
    for fmt in ("md", "csv", "json"):
        assert (site / f"leaderboard.{fmt}").stat().st_size > 0
    # the trained rows' checkpoints are not here (runs/ is not committed): text, not a broken image
    assert page.count("samples unavailable") >= 3 and "no generator.safetensors with sha256 c25993c270ef" in page
    assert "redrawn from" in page and "untrained dcgan re-initialised" in page
    # the real row is redrawn from the split whose content hash its result records, checked against the data here
    assert f"real data of mnist/test (sha256 {load('mnist', 'test', 32).sha256[:12]}… checked)" in page
    assert sum("-grid-" in s for s in links.imgs) == 3  # real, untrained and "mine" on mnist; no trained ones
    assert any(s.endswith("-pareto.png") for s in links.imgs)  # dcgan and lsgan carry images_per_s
    assert any("ring8" in s and s.endswith("-modes.png") for s in links.imgs)
    assert "no result of this table carries a throughput score" in page  # ring8 has no bench run
    for r in read_results(QUICK):
        assert r.kind == "bench" or r.run_id in page  # provenance of every run copied

    board = json.loads((site / "leaderboard.json").read_text())
    assert {t["dataset"]["name"] for t in board["tables"]} == {"mnist", "ring8"}


def test_browser_check_catches_a_broken_page(tmp_path, chromium):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>b</title></head><body><img src="missing.png">'
                    '<script>console.error("planted")</script></body></html>')
    report = chromium.load(page.as_uri())
    assert [i["naturalWidth"] for i in report.images] == [0]
    assert any("planted" in e for e in report.console_errors)
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in report.console_errors)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    with Chromium(CHROMIUM, tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@needs_chromium
def test_report_loads_in_headless_chromium_with_every_image(site, chromium, tmp_path):
    shot = tmp_path / "report.png"
    report = chromium.load((site / "index.html").as_uri(), screenshot=shot)
    assert report.title == "quick suite"
    assert report.console_errors == []
    links = _Links()
    links.feed((site / "index.html").read_text())
    assert len(report.images) == len(links.imgs) == 5  # pareto, 3 sample grids, ring8 modes
    broken = [i["src"] for i in report.images if not (i["complete"] and i["naturalWidth"] > 0)]
    assert broken == []
    image = np.asarray(Image.open(shot).convert("L"))
    assert image.shape[0] > 1500 and image.shape[1] >= 1400 and image.std() > 20  # a long page, not blank


def test_pareto_front_by_brute_force():
    pts = [(100.0, 10.0), (200.0, 12.0), (150.0, 9.0), (50.0, 30.0), (200.0, 11.0)]  # (images/s up, fid down)
    assert pareto_front(pts, x_higher=True, y_higher=False) == [2, 4]  # (150, 9) and (200, 11)
    assert pareto_front(pts, x_higher=False, y_higher=False) == [0, 2, 3]  # (100, 10), (150, 9), (50, 30)
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)], True, True) == [0, 1]  # equal points dominate neither


def test_stacked_histogram_triples_match_the_split_labels():
    from ganbench.data import load

    split = load("stacked_mnist", "test", 32)
    triples = stacked_triples(split.data[:300])
    assert (triples == split.labels[:300].numpy()).mean() > 0.9  # the classifier is 98.7% accurate per digit


def test_redrawn_toy_samples_reproduce_the_recorded_modes():
    real = next(r for r in read_results(QUICK) if r.run_id.startswith("real-ring8"))
    samples = redraw(real, {})
    assert samples.data.shape == (2000, 2) and verify_points(real, samples.data) is None
    real.scores["modes"].value = 7.0
    assert "the result records 7" in verify_points(real, samples.data)
