"""Model cards written by an adversary: nothing a card says may run code, read or hash files outside the zoo and the
cache, write outside the cache, fill the disk, or crash ``ganbench ls models``. No network: the HTTP servers here
listen on 127.0.0.1.

Each test was run against the code before the fix (the trees of commits 2a9c100 and ffd58a5) and failed there
(all 60): converters named by module path were imported and called (``os:system`` ran a shell command,
``ganbench.zoo.user:load_from_file`` ran a Python file the checkpoint named); file sources anywhere on disk were
hashed and their sha256 printed; Hub names with ``..`` were listed as fetchable; downloads had no size limit and an
HTTP error left the partial file; random bytes gave ``KeyError`` or ``IndexError`` tracebacks; a refused pickle's
message repeated torch's advice to allow-list its globals; non-UTF-8 card files raised ``UnicodeDecodeError``.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import pickle
import random
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ganbench.zoo.cards import CardError, FileSource, UrlSource, load_card, parse_card
from ganbench.zoo.dcgan import DCGANConfig, DCGANGenerator

TINY = {"resolution": 32, "channels": 1, "nz": 16, "ngf": 8, "ndf": 8}


@pytest.fixture
def zoo(tmp_path, monkeypatch) -> Path:
    """An empty zoo (cards/ and weights/), a fresh ganbench cache and Hub cache; offline, as in conftest."""
    root = tmp_path / "zoo"
    (root / "cards").mkdir(parents=True)
    (root / "weights").mkdir()
    monkeypatch.setenv("GANBENCH_ZOO", str(root))
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return root


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside the zoo and the cache, which no card may read, hash or describe."""
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text("the contents a card must not learn\n")
    return path


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def cache(zoo: Path) -> Path:
    return zoo.parent / "cache"


def card_text(name: str, data: bytes, sources: str, convert: str | None = None, extra: str = "") -> str:
    cfg = "\n".join(f"{k} = {v}" for k, v in TINY.items())
    conv = f"convert = {convert!r}\n".replace("'", '"') if convert is not None else ""
    return (f'name = "{name}"\narch = "{name.split(".")[0]}"\nlicense = "MIT"\npaper = "test"\n'
            f'training_data = "none"\nsha256 = "{hashlib.sha256(data).hexdigest()}"\nsize = {len(data)}\n'
            f"{conv}{extra}\n[config]\n{cfg}\n\n[sources]\n{sources}\n")


def write_card(zoo: Path, name: str, data: bytes, sources: str, convert: str | None = None, extra: str = "") -> Path:
    path = zoo / "cards" / f"{name}.toml"
    path.write_text(card_text(name, data, sources, convert, extra))
    return path


def tiny_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return DCGANGenerator(DCGANConfig(**TINY)).state_dict()


def zoo_file(zoo: Path, name: str, obj) -> tuple[Path, bytes]:
    """``obj`` torch.save'd into the zoo's weights/ folder (so that a ``file`` source may name it)."""
    path = zoo / "weights" / name
    torch.save(obj, path)
    return path, path.read_bytes()


# --------------------------------------------------------------------------------------------------------------
# Converters: a closed registered set; a card names one, never code


@pytest.mark.parametrize("convert", ["ganbench.cli:main", "ganbench.zoo.user:load_from_file", "os:system",
                                     "ganbench.zoo.dcgan:from_tutorial_checkpoint", "no_such_converter",
                                     "DCGAN_TUTORIAL", "dcgan_tutorial:x", "builtins:eval", ""])
def test_a_card_naming_code_or_an_unknown_converter_is_refused(zoo, convert):
    path = write_card(zoo, "dcgan.conv", b"x", 'url = "https://example.org/G.pth"', convert=convert)
    with pytest.raises(CardError) as info:
        parse_card(path)
    msg = str(info.value)
    assert "key 'convert'" in msg and "dcgan_tutorial" in msg and "vintagify" in msg, msg  # the valid ones


@pytest.mark.parametrize("convert", ["os:system", "ganbench.zoo.user:load_from_file", "ganbench.cli:main"])
def test_fetch_never_imports_or_calls_what_a_card_names(zoo, tmp_path, convert):
    """A card built without the parser (a ModelCard is a public dataclass) still cannot make fetch run code: the
    checkpoint is the argument each of these functions would run."""
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass Evil:\n    pass\n")
    argument = {"os:system": f"touch {marker}", "ganbench.zoo.user:load_from_file": f"{evil}:Evil",
                "ganbench.cli:main": ["--help"]}[convert]
    ckpt, data = zoo_file(zoo, "arg.pth", argument)
    card = parse_card(write_card(zoo, "dcgan.code", data, 'file = "weights/arg.pth"'))
    card = replace(card, convert=convert)
    from ganbench.zoo.fetch import fetch

    with pytest.raises(CardError, match="key 'convert'"):
        fetch(card)
    assert not marker.exists()
    assert files_under(cache(zoo)) == []


@pytest.mark.parametrize("checkpoint, what", [
    ("ganbench/zoo/user.py:Generator", "str"),
    ([torch.zeros(1), torch.zeros(2)], "list"),
    ({"netG_state_dict": "evil.py:Evil"}, "str"),
    ({"netG_state_dict": {"main.0.weight": [1.0, 2.0]}}, "list"),
    ({"netG_state_dict": {"main": {"0": {"weight": torch.zeros(1)}}}}, "dict"),
    ({"a": {"b": torch.zeros(1)}, "epoch": 3}, "dict"),
    ({1: torch.zeros(1)}, "int"),
    ({}, "empty"),
])
def test_only_flat_tensors_reach_a_converter(zoo, monkeypatch, checkpoint, what):
    from ganbench.zoo.convert import CONVERTERS
    from ganbench.zoo.fetch import fetch

    calls = []
    entry = CONVERTERS.entry("dcgan_tutorial")
    entry.load()
    monkeypatch.setattr(entry, "target", lambda state: calls.append(state) or state)
    ckpt, data = zoo_file(zoo, "odd.pth", checkpoint)
    card = parse_card(write_card(zoo, "dcgan.odd", data, 'file = "weights/odd.pth"', convert="dcgan_tutorial"))
    with pytest.raises(ValueError) as info:
        fetch(card)
    msg = str(info.value)
    assert str(ckpt) in msg and "state dict" in msg and what in msg, msg
    assert calls == []  # refused before the converter was called
    assert files_under(cache(zoo)) == []


# --------------------------------------------------------------------------------------------------------------
# Local sources: only inside the zoo directory or ganbench's cache


def _escapes(zoo: Path, secret: Path) -> dict[str, str]:
    (zoo / "weights" / "link.pth").symlink_to(secret)
    (zoo / "weights" / "dirlink").symlink_to(secret.parent, target_is_directory=True)
    rel = os.path.relpath(secret, zoo)
    return {
        "dotdot": f'file = "{rel}"',
        "dotdot-inside-first": f'file = "weights/../{rel}"',
        "absolute": f'file = "{secret}"',
        "etc-passwd": 'file = "../../../../../../../../etc/passwd"',
        "home": 'file = "~/.ssh/id_rsa"',
        "symlink": 'file = "weights/link.pth"',
        "symlinked-dir": f'file = "weights/dirlink/{secret.name}"',
        "file-url": f'url = "{secret.as_uri()}"',
        "file-url-etc": 'url = "file:///etc/passwd"',
        "file-url-symlink": f'url = "{(zoo / "weights" / "link.pth").as_uri()}"',
    }


@pytest.mark.parametrize("case", ["dotdot", "dotdot-inside-first", "absolute", "etc-passwd", "home", "symlink",
                                  "symlinked-dir", "file-url", "file-url-etc", "file-url-symlink"])
def test_local_sources_outside_the_zoo_and_cache_are_refused_unread(zoo, secret, capsys, case):
    data = secret.read_bytes()
    path = write_card(zoo, "dcgan.escape", data, _escapes(zoo, secret)[case])
    with pytest.raises(CardError) as info:
        parse_card(path)
    msg = str(info.value)
    assert "outside" in msg and "key 'sources." in msg, msg
    if "symlink" in case:  # only what the card itself spells is repeated, never where a link leads
        assert str(secret) not in msg and str(secret.parent) not in msg, msg
    out = capsys.readouterr()
    assert hashlib.sha256(data).hexdigest() not in msg + out.out + out.err


def test_a_link_swapped_after_parsing_is_refused_at_fetch_without_hashing(zoo, secret, capsys):
    from ganbench.zoo.fetch import fetch

    inside, data = zoo_file(zoo, "G.pth", tiny_state())
    link = zoo / "weights" / "current.pth"
    link.symlink_to(inside)
    card = parse_card(write_card(zoo, "dcgan.swap", data, 'file = "weights/current.pth"'))
    link.unlink()
    link.symlink_to(secret)  # the card's file now leads outside
    with pytest.raises(CardError, match="outside") as info:
        fetch(card)
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    out = capsys.readouterr()
    assert secret_sha not in str(info.value) + out.out + out.err
    assert str(secret) not in str(info.value)  # where the link points is not repeated
    assert files_under(cache(zoo)) == []


def test_fetch_of_an_unparsed_card_with_an_outside_file_prints_nothing_about_it(zoo, secret, capsys):
    """Before the fix, fetch hashed /etc/passwd-like files and printed their sha256 and size in the refusal."""
    from ganbench.zoo.fetch import fetch

    inside, data = zoo_file(zoo, "G.pth", tiny_state())
    card = parse_card(write_card(zoo, "dcgan.direct", data, 'file = "weights/G.pth"'))
    for src in (FileSource(str(secret)), UrlSource(secret.as_uri())):
        with pytest.raises(CardError, match="outside") as info:
            fetch(replace(card, sources=(src,)))
        out = capsys.readouterr()
        text = str(info.value) + out.out + out.err
        assert hashlib.sha256(secret.read_bytes()).hexdigest() not in text
        assert f"({secret.stat().st_size} bytes)" not in text


def test_a_card_name_is_never_a_path(zoo):
    outside = zoo / "dcgan.outside.toml"  # a valid card, but not in cards/
    outside.write_text(card_text("dcgan.outside", b"x", 'url = "https://example.org/G.pth"'))
    for name in ("../dcgan.outside", "../../zoo/dcgan.outside", "/etc/passwd", "dcgan.outside/../x"):
        with pytest.raises(CardError, match="no model card"):
            load_card(name)


# --------------------------------------------------------------------------------------------------------------
# Hub and package names cannot leave their caches; `ls models` reports such cards instead of crashing


BAD_NAMES = {
    "hub-filename-dotdot": 'hub = { repo = "org/name", filename = "../../../../etc/passwd" }',
    "hub-filename-inner-dotdot": 'hub = { repo = "org/name", filename = "weights/../../G.pth" }',
    "hub-filename-absolute": 'hub = { repo = "org/name", filename = "/etc/passwd" }',
    "hub-filename-backslash": 'hub = { repo = "org/name", filename = "..\\\\..\\\\G.pth" }',
    "hub-filename-nul": 'hub = { repo = "org/name", filename = "G.pth\\u0000.txt" }',
    "hub-repo-dotdot": 'hub = { repo = "org/na..me", filename = "G.pth" }',
    "hub-repo-dashdash": 'hub = { repo = "org/na--me", filename = "G.pth" }',
    "hub-revision-dotdot": 'hub = { repo = "org/name", filename = "G.pth", revision = "../../../x" }',
    "pypi-path-dotdot": 'pypi = { package = "pip", path = "../../../../../etc/passwd" }',
    "pypi-path-absolute": 'pypi = { package = "pip", path = "/etc/passwd" }',
    "pypi-version-quote": 'pypi = { package = "pip", version = "1\'; rm -rf ~; echo \'", path = "pip/w.pth" }',
    "pypi-package-space": 'pypi = { package = "pip; rm", path = "pip/w.pth" }',
    "url-no-host": 'url = "https:///G.pth"',
    "url-bad-port": 'url = "http://127.0.0.1:port/G.pth"',
    "url-newline": 'url = "https://example.org/G.pth\\nHost: evil"',
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_names_that_could_leave_their_place_are_card_errors(zoo, case):
    path = write_card(zoo, "dcgan.badname", b"x", BAD_NAMES[case])
    with pytest.raises(CardError, match="key 'sources.") as info:
        parse_card(path)
    assert str(path) in str(info.value)


def test_ls_models_lists_every_hostile_card_as_invalid(zoo, secret):
    from ganbench.cli import main
    from ganbench.zoo.fetch import weight_sets_by_arch

    sources = {**{k.replace("-", "_"): v for k, v in BAD_NAMES.items()},
               **{k.replace("-", "_"): v for k, v in _escapes(zoo, secret).items()}}
    for case, src in sources.items():
        write_card(zoo, f"dcgan.{case}", b"x", src)
    write_card(zoo, "dcgan.modconv", b"x", 'url = "https://example.org/G.pth"', convert="os:system")
    (zoo / "cards" / "dcgan.binary.toml").write_bytes(bytes(range(256)))
    write_card(zoo, "dcgan.fine", b"x", 'url = "https://example.org/G.pth"')

    status = {s.name: s for sets in weight_sets_by_arch().values() for s in sets}
    assert status.pop("dcgan.fine").state == "fetchable"
    assert len(status) == len(sources) + 2
    for name, s in status.items():
        assert s.state == "invalid" and s.detail, (name, s)
    out = CliRunner().invoke(main, ["ls", "models"])
    assert out.exit_code == 0, out.output
    lines = {ln.split()[0]: ln for ln in out.output.splitlines() if ln.strip().startswith("dcgan.")}
    assert all("weights invalid:" in lines[name] for name in status), out.output
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in out.output


# --------------------------------------------------------------------------------------------------------------
# Downloads: the card's size is a hard limit while streaming; a refused download leaves nothing in the cache


class _Server:
    """A loopback HTTP server whose handler the test sets; counts what it managed to send."""

    def __init__(self, handler):
        self.sent = 0
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self):
                outer.requests.append(dict(self.headers))
                try:
                    handler(self, outer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what the size limit is for

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str = "G.pth") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def write(self, handler, data: bytes) -> None:
        handler.wfile.write(data)
        self.sent += len(data)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def online(monkeypatch):
    """Downloads allowed (conftest sets HF_HUB_OFFLINE=1); loopback is never proxied."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("GANBENCH_OFFLINE", raising=False)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")


ENDLESS_CAP = 48 << 20  # what the endless servers send at most (the code before the fix read all of it)


def _endless(handler, server, announce: int | None) -> None:
    handler.send_response(200)
    if announce is not None:
        handler.send_header("Content-Length", str(announce))
    handler.end_headers()
    block = b"\0" * (1 << 16)
    while server.sent < ENDLESS_CAP:
        server.write(handler, block)


@pytest.mark.parametrize("announce", [None, ENDLESS_CAP], ids=["unannounced", "content-length"])
def test_a_download_larger_than_the_card_says_is_cut_off_and_removed(zoo, online, announce):
    from ganbench.zoo.fetch import fetch

    data = b"w" * 4096
    with _Server(lambda h, s: _endless(h, s, announce)) as server:
        card = parse_card(write_card(zoo, "dcgan.big", data, f'url = "{server.url()}"'))
        with pytest.raises(ValueError, match=r"(more than|announces).*4096") as info:
            fetch(card)
    assert type(info.value).__name__ == "DownloadTooLarge"
    assert server.sent < 16 << 20, f"the client read {server.sent} bytes for a {len(data)}-byte file"
    assert files_under(cache(zoo)) == []


def test_a_server_serving_wrong_bytes_or_errors_leaves_nothing_in_the_cache(zoo, online):
    """Wrong bytes of the right size are refused with both hashes and deleted (this held before the fix too); a
    partial file an interrupted transfer left is deleted when the server answers the resume with an error (before
    the fix it stayed in the cache)."""
    from ganbench.zoo.fetch import download_path, fetch

    good, served = b"g" * 5000, b"b" * 5000

    def serve(handler, server):
        if handler.headers.get("Range"):
            handler.send_error(500, "broken")
            return
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(served)))
        handler.end_headers()
        server.write(handler, served)

    with _Server(serve) as server:
        card = parse_card(write_card(zoo, "dcgan.wrong", good, f'url = "{server.url()}"'))
        for _ in range(2):  # nothing was kept, so the second fetch starts over (no Range header)
            with pytest.raises(ValueError) as info:
                fetch(card)
            msg = str(info.value)
            assert hashlib.sha256(good).hexdigest() in msg and hashlib.sha256(served).hexdigest() in msg
            assert files_under(cache(zoo)) == []
        part = download_path(card).with_name(download_path(card).name + ".part")
        part.write_bytes(good[:1000])  # what an interrupted transfer left
        with pytest.raises(FileNotFoundError, match="HTTP 500"):
            fetch(card)
        assert files_under(cache(zoo)) == []
    assert [r.get("Range") for r in server.requests] == [None, None, "bytes=1000-"]


# --------------------------------------------------------------------------------------------------------------
# Files with the right hash that are no checkpoint, and pickles: clear errors, no tracebacks, no advice to unpickle


def _noise(seed: int) -> bytes:
    r = random.Random(seed)
    return bytes(r.randrange(256) for _ in range(r.randrange(1, 200)))


# Inputs on which torch's weights-only unpickler fails with KeyError, IndexError, UnicodeDecodeError or an
# UnpicklingError about an opcode (seeds found by trying; any of them was a traceback or a wrong message before).
NOT_CHECKPOINTS = {"text": b"hello world, a text file\n", "noise2": _noise(2), "noise33": _noise(33),
                   "noise161": _noise(161), "noise1": _noise(1),
                   "pickle-header": b"\x80\x02" + _noise(3)}


@pytest.mark.parametrize("case", sorted(NOT_CHECKPOINTS))
def test_a_file_with_the_right_hash_that_is_no_checkpoint_gives_a_clear_error(zoo, case):
    from ganbench.cli import main
    from ganbench.zoo.fetch import fetch

    data = NOT_CHECKPOINTS[case]
    path = zoo / "weights" / "junk.pth"
    path.write_bytes(data)
    card = parse_card(write_card(zoo, "dcgan.junk", data, 'file = "weights/junk.pth"'))
    with pytest.raises(ValueError) as info:
        fetch(card)
    assert not isinstance(info.value, pickle.UnpicklingError)  # not called an unsafe pickle: it is no pickle
    assert str(path) in str(info.value) and "neither safetensors nor" in str(info.value), str(info.value)
    out = CliRunner().invoke(main, ["fetch", "dcgan.junk", "--offline"])
    assert out.exit_code == 1 and str(path) in out.output, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), repr(out.exception)  # no traceback


class Gadget:
    """A class torch's unpickler does not know: its refusal message advises allow-listing it."""

    def __reduce__(self):
        return (Gadget, ())


def test_a_refused_pickle_says_how_to_convert_it_never_how_to_unpickle_it(zoo, tmp_path):
    from ganbench.zoo.fetch import fetch
    from ganbench.zoo.safe_load import UnsafeCheckpointError

    ckpt, data = zoo_file(zoo, "gadget.pth", {"main.0.weight": torch.zeros(1), "x": Gadget()})
    card = parse_card(write_card(zoo, "dcgan.gadget", data, 'file = "weights/gadget.pth"'))
    with pytest.raises(UnsafeCheckpointError) as info:
        fetch(card)
    msg = str(info.value)
    assert str(ckpt) in msg and "Gadget" in msg and "safetensors" in msg and "save_file" in msg, msg
    for advice in ("weights_only=False", "safe_globals", "add_safe_globals", "trusted source"):
        assert advice not in msg, msg


# --------------------------------------------------------------------------------------------------------------
# Random bytes as card files: a CardError or a card, never another exception


def _mutations(valid: bytes, rng: random.Random) -> bytes:
    data = bytearray(valid)
    for _ in range(rng.randrange(1, 8)):
        op = rng.randrange(5)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(i, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
        elif op == 2:
            del data[i:i + rng.randrange(1, 20)]
        elif op == 3:
            data[i:i] = rng.choice([b"..", b"/", b"\\", b"\0", b'"', b"[", b"{", b"=", b"\n", b"'", b"~", b"1e999",
                                    b"-", b"nan", b"true", b"1979-05-27", b"[[[[", b"[sources]\n", b"file = "])
        else:
            del data[i:]
    return bytes(data)


ADVERSARIAL_VALUES = ['"../../etc/passwd"', '"/etc/passwd"', '"~/x"', '"\\u0000"', "-1", "0", "1e999", "nan", "true",
                      "1979-05-27T07:32:00Z", "[]", "[1, [2, [3]]]", "{}", '{ a = { b = "c" } }', '"os:system"',
                      '"ganbench.cli:main"', '"a/../b"', '"..\\\\x"', "99999999999999999999", '""', '"x" ']


def _structured(rng: random.Random, zoo: Path) -> str:
    """A valid card in which one value may be replaced by a hostile one, and a hostile line may be added."""
    lines = card_text("dcgan.fuzz", b"x", 'url = "https://example.org/G.pth"', extra='classes = ["a"]\n'
                      ).splitlines()
    keyed = [i for i, line in enumerate(lines) if "=" in line]
    if rng.random() < 0.5:
        i = rng.choice(keyed)
        lines[i] = f"{lines[i].split('=')[0]}= {rng.choice(ADVERSARIAL_VALUES)}"
    extra = rng.choice(['', '', '', '', 'hub = { repo = "o/n", filename = "../x" }',
                        'pypi = { package = "p", path = "/x" }', f'file = "{zoo}/../x"', 'url = "file:///etc/passwd"',
                        "file = 3", "hub = []", "[protocol]\nn_samples = -1", "[expected]\nfid = 3",
                        "[expected]\nfid = { value = 1 }"])
    return "\n".join(lines) + "\n" + extra + "\n"


def test_random_bytes_as_a_card_give_a_card_error_or_a_card(zoo, secret):
    from ganbench.zoo.fetch import weight_sets_by_arch

    rng = random.Random(20240517)
    valid = card_text("dcgan.fuzz", b"x", 'url = "https://example.org/G.pth"', extra='classes = ["a"]\n').encode()
    path = zoo / "cards" / "dcgan.fuzz.toml"
    outcomes = {"card": 0, "error": 0}
    deep = [b"a = " + b"[" * 5000 + b"]" * 5000, b"a = " + b"{ b = " * 2000 + b"1" + b" }" * 2000]
    inputs = deep + [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(150)]
    inputs += [_mutations(valid, rng) for _ in range(500)]
    inputs += [_structured(rng, zoo).encode() for _ in range(300)]
    for data in inputs:
        path.write_bytes(data)
        try:
            parse_card(path)
            outcomes["card"] += 1
        except CardError:
            outcomes["error"] += 1
        except Exception as e:  # noqa: BLE001 -- the point of the test
            pytest.fail(f"{type(e).__name__}: {e} for card bytes {data[:300]!r}")
    assert outcomes["card"] > 20 and outcomes["error"] > 500, outcomes  # both branches were exercised
    # and listing a zoo full of them never raises
    for i, data in enumerate(inputs[::25]):
        (zoo / "cards" / f"dcgan.fuzz{i}.toml").write_bytes(data.replace(b"dcgan.fuzz", f"dcgan.fuzz{i}".encode()))
    assert sum(len(v) for v in weight_sets_by_arch().values()) == len(inputs[::25]) + 1
