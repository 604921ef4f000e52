"""The one weights resolver (``ganbench.weights``): its order, its hash rule, the offline rule, downloads (resume,
size limit while streaming, nothing left when refused), the Hub, safe reading, and its place in the import graph.
No network: HTTP servers listen on 127.0.0.1, the Hub is a local cache folder."""

from __future__ import annotations

import ast
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

import ganbench
from ganbench import weights
from ganbench.weights import (DownloadTooLarge, HubFile, LocalFile, SourceUnavailable, Unavailable,
                              UnsafeCheckpointError, WeightsFile, WeightsMismatch, WeightsNotFound, WeightsRequest,
                              check_hub_repo, check_hub_revision, check_relative_path, download_url, hub_file,
                              load_state_dict, offline_by_env, offline_reason, resolve, weights_sha256)

DATA = bytes(range(256)) * 40  # 10240 bytes
SHA = hashlib.sha256(DATA).hexdigest()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return tmp_path


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def write(path: Path, data: bytes = DATA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def hub_layout(root: Path, repo: str, filename: str, data: bytes) -> Path:
    """The files huggingface_hub reads offline: blobs/<hash>, snapshots/<commit>/<file> -> blob, refs/main."""
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    blob = write(repo_dir / "blobs" / hashlib.sha256(data).hexdigest(), data)
    link = repo_dir / "snapshots" / COMMIT / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    write(repo_dir / "refs" / "main", COMMIT.encode())
    return link


# --------------------------------------------------------------------------------------------------------------
# Its place in the import graph, and that the other modules use it


ALLOWED = {"ganbench.paths", "ganbench.results.store", "ganbench.registry"}


def test_the_resolver_sits_at_the_bottom_of_the_import_graph():
    source = Path(weights.__file__).read_text()
    imported = {n.module for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m.startswith("ganbench")} <= ALLOWED
    loaded = subprocess.run([sys.executable, "-c", "import sys, ganbench.weights; print(' '.join(sorted(m for m in "
                             "sys.modules if m.startswith('ganbench'))))"], capture_output=True, text=True,
                            check=True, cwd=Path(ganbench.__file__).parents[1]).stdout.split()
    assert set(loaded) <= ALLOWED | {"ganbench", "ganbench.weights", "ganbench.results", "ganbench.results.schema"}


DOWNLOADERS = {"hf_hub_download", "download_url_to_file", "load_state_dict_from_url", "urlopen",
               "get_hf_file_metadata"}


def test_no_other_weights_code_downloads_on_its_own():
    """Extractors, metrics, the zoo and training reach the network for weights only through ganbench.weights."""
    root = Path(ganbench.__file__).parent
    found = []
    for folder in ("features", "metrics", "zoo", "train"):
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    name = ast.unparse(node.func).split(".")[-1]
                    if name in DOWNLOADERS:
                        found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node.func)}")
    assert found == []


# --------------------------------------------------------------------------------------------------------------
# Order and the hash rule


def request(tmp_path: Path, **kw) -> WeightsRequest:
    base = dict(label="test weights", sha256=SHA, size=len(DATA), expected_by="the test",
                local=(LocalFile(tmp_path / "local.bin", "file 'local.bin'"),), cache=(tmp_path / "cache.bin",),
                hub_caches=(tmp_path / "torchhub.bin",), hub=(HubFile("org/name", "w.bin"),),
                urls=((tmp_path / "url.bin").as_uri(),), download_to=tmp_path / "downloaded.bin")
    return WeightsRequest(**{**base, **kw})


def test_one_fixed_order_local_cache_hub_url(dirs):
    req = request(dirs)
    with pytest.raises(WeightsNotFound) as info:
        resolve(req)
    msg = str(info.value)
    for needle in ("local.bin' does not exist", "cache.bin' does not exist", "torchhub.bin' does not exist",
                   "hub org/name/w.bin@main: not in the local Hub cache (offline:", "url.bin' does not exist"):
        assert needle in msg, msg
    expected = []
    for path, source in ((dirs / "url.bin", "url file://"), (None, "hub org/name/w.bin@main"),
                         (dirs / "torchhub.bin", "file "), (dirs / "cache.bin", "cache "),
                         (dirs / "local.bin", "file 'local.bin'")):
        if path is None:
            hub_layout(dirs / "hub", "org/name", "w.bin", DATA)
        else:
            write(path)
        got = resolve(req)
        assert got.source.startswith(source) and got.sha256 == SHA, (source, got)
        expected.append(got.path)
    assert expected[-1] == dirs / "local.bin" and not any(p.owned for p in [resolve(req)])


def test_a_named_file_is_the_only_candidate_and_its_absence_an_error(dirs):
    write(dirs / "cache.bin")
    req = request(dirs, local=(LocalFile(dirs / "missing.bin", "GANBENCH_X='missing.bin'", named_by="GANBENCH_X"),))
    with pytest.raises(WeightsNotFound, match="GANBENCH_X=.*missing.bin.* is not a file"):
        resolve(req)
    req = request(dirs, local=(Unavailable("pypi pkg", "package 'pkg' is not installed"),))
    assert resolve(req).source.startswith("cache ")  # an unavailable local candidate passes to the next


def test_a_wrong_file_stops_resolution_and_only_ganbench_downloads_are_deleted(dirs):
    wrong = b"x" * len(DATA)
    write(dirs / "local.bin", wrong)
    write(dirs / "cache.bin")  # the right file, later in the order: never reached
    with pytest.raises(WeightsMismatch, match="left in place") as info:
        resolve(request(dirs))
    assert SHA in str(info.value) and hashlib.sha256(wrong).hexdigest() in str(info.value)
    assert (dirs / "local.bin").exists()

    (dirs / "local.bin").unlink()
    write(dirs / "cache.bin", wrong)
    with pytest.raises(WeightsMismatch, match="left in place"):  # a user may have put it there
        resolve(request(dirs))
    with pytest.raises(WeightsMismatch, match="was deleted"):  # a model card's own download
        resolve(request(dirs, owns_cache=True))
    assert not (dirs / "cache.bin").exists()

    link = hub_layout(dirs / "hub", "org/name", "w.bin", wrong)
    blob = link.resolve()
    with pytest.raises(WeightsMismatch, match="Hub cache entry"):
        resolve(request(dirs))
    assert not link.is_symlink() and not blob.exists()


def test_a_named_file_with_another_hash_warns_and_is_used(dirs):
    write(dirs / "mine.bin", b"my own weights")
    req = request(dirs, local=(LocalFile(dirs / "mine.bin", "GANBENCH_X='mine.bin'", named_by="GANBENCH_X"),))
    with pytest.warns(UserWarning, match="named explicitly"):
        got = resolve(req)
    assert got.path == dirs / "mine.bin" and got.sha256 == hashlib.sha256(b"my own weights").hexdigest()


def test_hash_prefix_and_size(dirs):
    write(dirs / "cache.bin")
    assert resolve(request(dirs, sha256=None, hash_prefix=SHA[:8])).sha256 == SHA
    with pytest.raises(WeightsMismatch, match="starting with 00000000"):
        resolve(request(dirs, sha256=None, hash_prefix="00000000"))
    with pytest.raises(WeightsMismatch, match=f"{len(DATA) + 1} bytes"):
        resolve(request(dirs, size=len(DATA) + 1))
    assert resolve(request(dirs, sha256=None, size=None)).sha256 is None  # nothing known: nothing hashed


def test_sha256_memo_sees_a_file_rewritten_in_place(tmp_path):
    path = write(tmp_path / "w.bin", b"a" * 100)
    first = weights_sha256(path)
    st = path.stat()
    time.sleep(0.05)
    path.write_bytes(b"b" * 100)  # same size, same inode
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime
    assert weights_sha256(path) == hashlib.sha256(b"b" * 100).hexdigest() != first


# --------------------------------------------------------------------------------------------------------------
# The offline rule


@pytest.mark.parametrize("var", ["GANBENCH_OFFLINE", "HF_HUB_OFFLINE"])
@pytest.mark.parametrize("value, offline", [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False),
                                            ("", False), ("false", False)])
def test_offline_variables(monkeypatch, var, value, offline):
    for name in weights.OFFLINE_ENVS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, value)
    assert offline_by_env() is offline
    if offline:
        assert offline_reason("https://example.org/w").startswith("offline: ")


def test_the_probe_uses_the_urls_port_and_gives_up_within_half_a_second(online, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        assert offline_reason(f"http://127.0.0.1:{port}/w.bin") is None
    finally:
        listener.close()

    def hang(*args, **kwargs):
        time.sleep(3)
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    assert "did not answer" in offline_reason("https://example.org/w.bin")
    assert time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------------------------------------------
# Downloads


class RangeServer:
    """Serves ``data`` at any path, honouring ``Range: bytes=N-``; ``mode`` makes it misbehave."""

    def __init__(self, data: bytes, mode: str = "ok"):
        self.data, self.mode, self.ranges, self.sent = data, mode, [], 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                try:
                    outer.respond(self, start if rng else None)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def respond(self, h, start: int | None) -> None:
        data, mode = self.data, self.mode
        if mode == "416" and start:
            h.send_response(416)
            h.end_headers()
            return
        if mode == "wrong-range" and start:
            h.send_response(206)
            h.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{len(data)}")
            h.end_headers()
            h.wfile.write(data)
            return
        partial = start is not None and mode not in ("ignore-range", "416")
        body = data[start:] if partial else data
        h.send_response(206 if partial else 200)
        if partial:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if mode != "no-length":
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if mode == "cut":  # the connection drops halfway
            self.mode = "ok"
            body = body[:len(body) // 2]
        h.wfile.write(body)
        self.sent += len(body)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/w.bin"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def dl_request(**kw) -> WeightsRequest:
    return WeightsRequest(**{"label": "test weights", "sha256": SHA, "size": len(DATA), "expected_by": "the test",
                             **kw})


@pytest.mark.parametrize("mode", ["ok", "ignore-range", "416", "no-length"])
def test_download_resumes_or_restarts_and_verifies(tmp_path, online, capfd, mode):
    target = tmp_path / "dl" / "w.bin"
    write(target.with_name("w.bin.part"), DATA[:3000])  # what an interrupted transfer left
    with RangeServer(DATA, mode) as server:
        assert download_url(server.url(), target, dl_request()) == target
    assert target.read_bytes() == DATA and files_under(tmp_path / "dl") == [target]
    assert server.ranges[0] == "bytes=3000-"
    assert server.ranges[1:] == ([None] if mode == "416" else [])  # 416: started over, once
    assert "download w.bin" in capfd.readouterr().err  # the progress bar, on stderr


def test_an_interrupted_download_keeps_its_part_and_the_next_call_resumes(tmp_path, online):
    target = tmp_path / "w.bin"
    with RangeServer(DATA, "cut") as server:
        with pytest.raises(SourceUnavailable, match="resumes"):
            download_url(server.url(), target, dl_request())
        assert target.with_name("w.bin.part").stat().st_size == len(DATA) // 2
        download_url(server.url(), target, dl_request())
    assert server.ranges == [None, f"bytes={len(DATA) // 2}-"] and target.read_bytes() == DATA


@pytest.mark.parametrize("mode", ["ok", "no-length"], ids=["announced", "streamed"])
def test_a_download_stops_at_its_limit_and_leaves_nothing(tmp_path, online, mode):
    big = DATA * 200  # 2 MB
    with RangeServer(big, mode) as server:
        with pytest.raises(DownloadTooLarge, match="1000"):
            download_url(server.url(), tmp_path / "w.bin", dl_request(sha256=None, size=None, max_bytes=1000))
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("mode", ["ok", "wrong-range"])
def test_wrong_bytes_or_a_wrong_range_leave_nothing(tmp_path, online, mode):
    if mode == "wrong-range":
        write(tmp_path / "w.bin.part", DATA[:3000])
    with RangeServer(DATA if mode == "wrong-range" else DATA[::-1], mode) as server:
        with pytest.raises((WeightsMismatch, SourceUnavailable)):
            download_url(server.url(), tmp_path / "w.bin", dl_request())
    assert files_under(tmp_path) == []


def test_a_weights_file_downloads_through_the_same_path(dirs, online, monkeypatch):
    """An extractor's WeightsFile: downloaded into torch.hub's checkpoints/, its published hash checked before the
    file is renamed into place; a file with another hash is never kept."""
    with RangeServer(DATA) as server:
        wf = WeightsFile("test weights", "w-0.bin", server.url(), ("GANBENCH_TEST_W",), sha256=SHA)
        assert wf.resolve(progress=False) == wf.hub_path() and wf.hub_path().read_bytes() == DATA
        wf.hub_path().unlink()
        bad = WeightsFile("test weights", "w-0.bin", server.url(), ("GANBENCH_TEST_W",), sha256="0" * 64)
        with pytest.raises(WeightsMismatch, match="download"):
            bad.resolve(progress=False)
    assert files_under(dirs / "torch") == []


def test_a_weights_file_offline_names_everything_and_never_probes_when_not_downloading(dirs, monkeypatch):
    def no_probe(*args, **kwargs):
        raise AssertionError("probed the network")

    monkeypatch.setattr(socket, "create_connection", no_probe)
    wf = WeightsFile("test weights", "w-0.bin", "https://example.org/w-0.bin", ("GANBENCH_TEST_W",))
    with pytest.raises(FileNotFoundError) as info:
        wf.resolve(download=False)
    msg = str(info.value)
    for needle in ("w-0.bin", "https://example.org/w-0.bin", "GANBENCH_TEST_W", str(wf.cache_path()),
                   str(wf.hub_path()), "downloading was not allowed"):
        assert needle in msg, msg


# --------------------------------------------------------------------------------------------------------------
# The Hub


def test_hub_files_come_from_the_hub_cache_offline(dirs):
    link = hub_layout(dirs / "hub", "org/name", "sub/w.bin", DATA)
    assert hub_file(HubFile("org/name", "sub/w.bin"), dl_request(), download=True) == link
    assert hub_file(HubFile("org/name", "sub/w.bin", COMMIT), dl_request(), download=True) == link
    with pytest.raises(SourceUnavailable, match="offline"):
        hub_file(HubFile("org/name", "other.bin"), dl_request(), download=True)
    with pytest.raises(SourceUnavailable, match="'..'"):
        hub_file(HubFile("org/name", "../../w.bin"), dl_request(), download=True)


def test_a_hub_file_larger_than_allowed_is_refused_before_downloading(dirs, online, monkeypatch):
    import huggingface_hub

    listener = socket.socket()  # the Hub endpoint answers the probe, so ganbench is online
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", lambda url, **kw: SimpleNamespace(size=10 ** 12))

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded a file the Hub said was too large")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    try:
        with pytest.raises(DownloadTooLarge, match="1000000000000"):
            hub_file(HubFile("org/name", "w.bin"), dl_request(), download=True)
    finally:
        listener.close()
    assert files_under(dirs / "hub") == []


@pytest.mark.parametrize("text, ok", [("w.bin", True), ("a/b/w.bin", True), ("../w.bin", False),
                                      ("a/../../w.bin", False), ("/etc/passwd", False), ("a\\w.bin", False),
                                      ("C:w.bin", False), ("a//w.bin", False), ("./w.bin", False), ("", False),
                                      ("w.bin\0", False), ("w\n.bin", False)])
def test_relative_paths(text, ok):
    if ok:
        assert check_relative_path(text, "x") == text
    else:
        with pytest.raises(ValueError):
            check_relative_path(text, "x")


@pytest.mark.parametrize("repo, ok", [("org/name", True), ("a-b/c.d_e", True), ("org/na..me", False),
                                      ("org/na--me", False), ("org", False), ("org/name/x", False), ("/org/n", False),
                                      ("org/" + "n" * 100, False)])
def test_hub_repo_ids(repo, ok):
    if ok:
        assert check_hub_repo(repo) == repo
    else:
        with pytest.raises(ValueError):
            check_hub_repo(repo)


@pytest.mark.parametrize("rev, ok", [("main", True), (COMMIT, True), ("refs/pr/1", True), ("v1.0", True),
                                     ("../x", False), ("a/../../b", False), ("/main", False), ("ma in", False)])
def test_hub_revisions(rev, ok):
    if ok:
        assert check_hub_revision(rev) == rev
    else:
        with pytest.raises(ValueError):
            check_hub_revision(rev)


# --------------------------------------------------------------------------------------------------------------
# Reading


class _Payload:
    def __reduce__(self):
        return (os.system, ("true",))


def test_load_state_dict_reads_tensors_only(tmp_path):
    sd = {"w": torch.arange(6.0).view(2, 3), "b": torch.zeros(2)}
    torch.save(sd, tmp_path / "sd.pth")
    save_file(sd, str(tmp_path / "sd.bin"))  # safetensors, whatever the suffix
    for name in ("sd.pth", "sd.bin"):
        got = load_state_dict(tmp_path / name)
        assert got.keys() == sd.keys() and torch.equal(got["w"], sd["w"])
    torch.save({"netG_state_dict": sd, "epoch": 3}, tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="not a flat state dict"):
        load_state_dict(tmp_path / "nested.pth")
    torch.save({"w": torch.zeros(1), "x": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match="posix.system"):
        load_state_dict(tmp_path / "evil.pth")
