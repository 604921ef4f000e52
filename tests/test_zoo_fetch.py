"""Fetching weight sets: Hub (a local Hub cache, offline), file:// and http URLs (resumed), PyPI distributions;
sha256 checked before anything is unpickled, and a refused file leaves the caches clean. No network.

Each test's temporary folder is the zoo directory (``GANBENCH_ZOO``), since a card's local files must lie in the
zoo or the cache; tests/test_adversarial_cards.py checks that nothing outside them is read."""

import hashlib
import http.server
import os
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ganbench.weights import WeightsMismatch
from ganbench.zoo import Generator, get_model, load_generator
from ganbench.zoo.cards import CardError, parse_card
from ganbench.zoo.dcgan import DCGANConfig, DCGANGenerator
from ganbench.zoo.fetch import converted_path, download_dir, download_path, fetch, load_weights, weights_status
from ganbench.zoo.safe_load import UnsafeCheckpointError

TINY = {"resolution": 32, "channels": 1, "nz": 16, "ngf": 8, "ndf": 8}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "ganbench-test/tiny-dcgan"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh ganbench cache and a fresh Hub cache for each test; the test's folder is the zoo."""
    monkeypatch.setenv("GANBENCH_ZOO", str(tmp_path))
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "cache"


def tiny_net(seed: int = 0) -> DCGANGenerator:
    torch.manual_seed(seed)
    return DCGANGenerator(DCGANConfig(**TINY)).eval()


def tutorial_checkpoint(path: Path, seed: int = 0) -> bytes:
    """A checkpoint in the PyTorch DCGAN tutorial's format (a pickle with netG_state_dict)."""
    torch.save({"netG_state_dict": tiny_net(seed).state_dict(), "epoch": 3}, path)
    return path.read_bytes()


def safetensors_checkpoint(path: Path, seed: int = 0) -> bytes:
    Generator(get_model("dcgan"), DCGANConfig(**TINY), tiny_net(seed)).save(path)
    return path.read_bytes()


def write_card(folder: Path, name: str, data: bytes, sources: str, convert: str | None = None,
               config: dict | None = None) -> Path:
    cfg = "\n".join(f"{k} = {v}" for k, v in (config or TINY).items())
    conv = f'convert = "{convert}"\n' if convert else ""
    path = folder / f"{name}.toml"
    path.write_text(f'name = "{name}"\narch = "{name.split(".")[0]}"\nlicense = "MIT"\npaper = "test"\n'
                    f'training_data = "none"\nsha256 = "{hashlib.sha256(data).hexdigest()}"\nsize = {len(data)}\n'
                    f'{conv}\n[config]\n{cfg}\n\n[sources]\n{sources}\n')
    return path


def hub_cache(root: Path, repo: str, filename: str, data: bytes, commit: str = COMMIT) -> Path:
    """The layout huggingface_hub reads offline: blobs/<hash>, snapshots/<commit>/<file> -> blob, refs/main."""
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    link = repo_dir / "snapshots" / commit / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return link


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_same_generator(gen, seed: int = 0):
    z = torch.randn(6, TINY["nz"], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(gen.net(z), tiny_net(seed)(z))


# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("revision", ["main", COMMIT])
def test_hub_source_offline_from_a_local_hub_cache(tmp_path, cache, revision):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    data = tutorial_checkpoint(tmp_path / "G.pth")
    hub_cache(tmp_path / "hub", REPO, "G.pth", data)
    card = parse_card(write_card(tmp_path, "dcgan.hubtest", data,
                                 f'hub = {{ repo = "{REPO}", filename = "G.pth", revision = "{revision}" }}',
                                 convert="dcgan_tutorial"))
    assert weights_status(card).state == "local" and "Hub cache" in weights_status(card).detail

    got = fetch(card)
    assert got.path == converted_path(card) and got.path.parent == cache / "weights"
    assert got.source.startswith(f"hub {REPO}/G.pth@{revision}")
    assert_same_generator(load_weights(card))
    assert_same_generator(load_generator(got.path))  # `ganbench eval` reads the converted file too
    assert fetch(card).source == "cache"
    first = got.sha256
    got.path.unlink()
    assert fetch(card).sha256 == first  # the conversion is byte-reproducible
    got.path.write_bytes(b"damaged")  # a damaged cache entry is converted again, not trusted
    again = fetch(card)
    assert again.source != "cache" and again.sha256 == first


def test_unavailable_sources_fall_through_and_are_all_explained(tmp_path, cache):
    data = safetensors_checkpoint(tmp_path / "G.safetensors")
    sources = (f'file = "{tmp_path}/absent.safetensors"\n'
               f'hub = {{ repo = "{REPO}", filename = "G.safetensors" }}\n'
               f'url = "{(tmp_path / "G.safetensors").as_uri()}"\n')
    card = parse_card(write_card(tmp_path, "dcgan.chain", data, sources))
    got = fetch(card)
    assert got.source.startswith("url file://")
    assert_same_generator(load_weights(card))

    missing = parse_card(write_card(tmp_path, "dcgan.none", data, sources.replace("G.safetensors\"\n", "gone\"\n")
                                    + 'pypi = { package = "surely-not-installed-ganbench", path = "x/w.pth" }'))
    with pytest.raises(FileNotFoundError) as info:
        fetch(missing)
    msg = str(info.value)
    assert "absent.safetensors' does not exist" in msg and "not in the local Hub cache (offline:" in msg
    assert "gone' does not exist" in msg and "pip install --no-deps 'surely-not-installed-ganbench'" in msg


def test_file_url_download_leaves_no_partial_files(tmp_path, cache):
    data = safetensors_checkpoint(tmp_path / "G.safetensors")
    card = parse_card(write_card(tmp_path, "dcgan.urltest", data, f'url = "{(tmp_path / "G.safetensors").as_uri()}"'))
    got = fetch(card)
    assert files_under(cache) == [got.path]  # the .part download was removed after conversion
    assert torch.equal(load_file(str(got.path))["main.0.weight"], tiny_net().state_dict()["main.0.weight"])


def test_substituted_hub_file_is_refused_with_both_hashes_and_removed(tmp_path, cache):
    good = tutorial_checkpoint(tmp_path / "good.pth", seed=0)
    bad = tutorial_checkpoint(tmp_path / "bad.pth", seed=1)  # a valid checkpoint, but not the card's
    link = hub_cache(tmp_path / "hub", REPO, "G.pth", bad)
    blob = link.resolve()
    card = parse_card(write_card(tmp_path, "dcgan.subst", good, f'hub = {{ repo = "{REPO}", filename = "G.pth" }}',
                                 convert="dcgan_tutorial"))
    with pytest.raises(WeightsMismatch) as info:
        fetch(card)
    msg = str(info.value)
    assert hashlib.sha256(good).hexdigest() in msg and hashlib.sha256(bad).hexdigest() in msg
    assert "was not loaded" in msg
    assert files_under(cache) == []  # nothing converted, nothing half-written
    assert not blob.exists() and not link.is_symlink()  # the Hub cache will fetch it anew


def test_corrupted_url_download_is_refused_and_the_part_file_removed(tmp_path, cache):
    good = safetensors_checkpoint(tmp_path / "G.safetensors")
    (tmp_path / "served.safetensors").write_bytes(good[:-100] + b"\0" * 100)  # same size, damaged tail
    card = parse_card(write_card(tmp_path, "dcgan.corrupt", good,
                                 f'url = "{(tmp_path / "served.safetensors").as_uri()}"'))
    with pytest.raises(WeightsMismatch) as info:
        fetch(card)
    actual = hashlib.sha256((tmp_path / "served.safetensors").read_bytes()).hexdigest()
    assert hashlib.sha256(good).hexdigest() in str(info.value) and actual in str(info.value)
    assert files_under(cache) == [] and not converted_path(card).exists()


def test_a_verified_download_waiting_in_the_cache_is_used_offline_then_removed(tmp_path, cache):
    """Step 2 of the order: a download that verified but was not converted yet (conversion failed, or the process
    stopped) is used without the network, and removed once converted; a tampered one is deleted."""
    data = safetensors_checkpoint(tmp_path / "G.safetensors")
    card = parse_card(write_card(tmp_path, "dcgan.waiting", data, 'url = "https://example.invalid/G.safetensors"'))
    assert weights_status(card).state == "fetchable"
    download_path(card).parent.mkdir(parents=True)
    download_path(card).write_bytes(data)
    assert weights_status(card).state == "local"
    got = fetch(card, download=False)
    assert got.source.startswith("cache ") and files_under(cache) == [got.path]
    assert_same_generator(load_weights(card))

    got.path.unlink()
    download_path(card).write_bytes(data[:-1] + b"\0")  # damaged after it verified
    with pytest.raises(WeightsMismatch, match="was deleted"):
        fetch(card, download=False)
    assert files_under(cache) == []


def test_local_sources_come_before_the_network(tmp_path, cache):
    """file, then an installed package's file, then the download cache, the Hub, URLs: the first that has it wins,
    whatever order the card lists them in."""
    data = safetensors_checkpoint(tmp_path / "G.safetensors")
    sources = (f'url = "{(tmp_path / "G.safetensors").as_uri()}"\n'
               f'hub = {{ repo = "{REPO}", filename = "G.safetensors" }}\n'
               'file = "G.safetensors"\n')
    hub_cache(tmp_path / "hub", REPO, "G.safetensors", data)
    card = parse_card(write_card(tmp_path, "dcgan.order", data, sources))
    assert [type(s).__name__ for s in card.sources] == ["FileSource", "HubSource", "UrlSource"]
    assert fetch(card).source == "file 'G.safetensors'"


def test_a_local_file_with_the_wrong_hash_is_refused_but_left_alone(tmp_path, cache):
    good = safetensors_checkpoint(tmp_path / "good.safetensors", seed=0)
    safetensors_checkpoint(tmp_path / "other.safetensors", seed=2)
    card = parse_card(write_card(tmp_path, "dcgan.local", good, f'file = "{tmp_path}/other.safetensors"'))
    with pytest.raises(WeightsMismatch, match="left in place"):
        fetch(card)
    assert (tmp_path / "other.safetensors").exists() and files_under(cache) == []


def test_a_malicious_pickle_is_refused_even_when_its_hash_matches(tmp_path, cache):
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"netG_state_dict": {"main.0.weight": torch.zeros(1)}, "hook": Payload()}, tmp_path / "evil.pth")
    data = (tmp_path / "evil.pth").read_bytes()
    card = parse_card(write_card(tmp_path, "dcgan.evil", data, f'file = "{tmp_path}/evil.pth"',
                                 convert="dcgan_tutorial"))
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        fetch(card)
    assert not marker.exists() and files_under(cache) == []


def test_weights_must_fit_the_architecture_strictly(tmp_path, cache):
    data = safetensors_checkpoint(tmp_path / "G.safetensors")
    card = parse_card(write_card(tmp_path, "dcgan.wide", data, f'file = "{tmp_path}/G.safetensors"',
                                 config={**TINY, "ngf": 16}))
    with pytest.raises(ValueError, match=r"(?s)do not fit dcgan.*size mismatch for main\.0\.weight"):
        fetch(card)
    assert files_under(cache) == []


@pytest.mark.parametrize("bad", [{"ngf": '"wide"'}, {"ngf": -8}, {"nz": 1.5}, {"depth": 3}])
def test_a_config_no_network_can_be_built_from_is_a_card_error(tmp_path, cache, bad):
    """Before any file is read: a card's config is data too, and a wrong one is the card's error, not a traceback."""
    data = safetensors_checkpoint(tmp_path / "G.safetensors")
    card = parse_card(write_card(tmp_path, "dcgan.badcfg", data, 'file = "G.safetensors"', config={**TINY, **bad}))
    with pytest.raises(CardError, match="key 'config'"):
        fetch(card)
    assert files_under(cache) == []


def test_pypi_source_reads_an_installed_distribution_without_importing_it(tmp_path, cache, monkeypatch):
    site = tmp_path / "site"
    (site / "fakegan").mkdir(parents=True)
    data = tutorial_checkpoint(site / "fakegan" / "G.pth")
    # importing this package would fail: only its metadata and its data file may be touched
    (site / "fakegan" / "__init__.py").write_text("raise RuntimeError('imported')\n")
    info = site / "fakegan-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakegan\nVersion: 0.3\n")
    (info / "RECORD").write_text("fakegan/__init__.py,,\nfakegan/G.pth,,\nfakegan-0.3.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    card = parse_card(write_card(tmp_path, "dcgan.pypitest", data,
                                 'pypi = { package = "fakegan", version = "0.3", path = "fakegan/G.pth" }',
                                 convert="dcgan_tutorial"))
    assert weights_status(card).state == "local"
    assert fetch(card).source == "pypi fakegan==0.3:fakegan/G.pth"
    assert_same_generator(load_weights(card))

    unlisted = parse_card(write_card(tmp_path, "dcgan.unlisted", data,
                                     'pypi = { package = "fakegan", path = "fakegan/other.pth" }'))
    with pytest.raises(FileNotFoundError, match="RECORD does not list it"):
        fetch(unlisted)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``data`` and honours ``Range: bytes=N-`` (which http.server's file handler does not)."""

    data = b""
    ranges: list = []

    def do_GET(self):
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = self.data[start:]
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(self.data) - 1}/{len(self.data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_download_resumes_a_part_file_and_honours_offline(tmp_path, cache, monkeypatch):
    data = safetensors_checkpoint(tmp_path / "G.safetensors")
    _RangeHandler.data, _RangeHandler.ranges = data, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/G.safetensors"
        card = parse_card(write_card(tmp_path, "dcgan.http", data, f'url = "{url}"'))
        with pytest.raises(FileNotFoundError, match="offline"):  # HF_HUB_OFFLINE=1 (conftest) stops http
            fetch(card)
        assert _RangeHandler.ranges == []
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
        for var in ("no_proxy", "NO_PROXY"):
            monkeypatch.setenv(var, "127.0.0.1,localhost")
        part = download_dir() / f"{card.name}-{card.sha256[:16]}.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(data[:1000])  # what an interrupted transfer left
        got = fetch(card)
        assert _RangeHandler.ranges == ["bytes=1000-"]
        assert_same_generator(load_weights(card))
        assert files_under(cache) == [got.path]
    finally:
        server.shutdown()
        server.server_close()
