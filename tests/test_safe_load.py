"""Checkpoints that would run code are refused unread, and no code path unpickles without weights_only=True."""

import ast
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import ganbench
from ganbench.zoo.safe_load import UnsafeCheckpointError, flat_state_dict, load_checkpoint


class _Payload:
    """Unpickling this object runs ``touch <marker>`` through os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious_files(tmp_path: Path) -> tuple[Path, list[Path]]:
    marker = tmp_path / "PWNED"
    zipped = tmp_path / "evil.pt"  # torch's zip format, next to a real tensor
    torch.save({"main.0.weight": torch.zeros(2), "x": _Payload(marker)}, zipped)
    legacy = tmp_path / "evil.pkl"  # a bare pickle (protocol 2: GLOBAL opcodes, as torch's legacy format writes)
    legacy.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=2))
    framed = tmp_path / "evil4.pkl"  # protocol 4 (STACK_GLOBAL)
    framed.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=4))
    return marker, [zipped, legacy, framed]


def test_the_payload_really_runs_when_unpickled_unsafely(tmp_path):
    # the control: without the restriction this file does execute (so the refusal test below can fail)
    marker = tmp_path / "PWNED"
    pickle.loads(pickle.dumps(_Payload(marker), protocol=2))
    assert marker.exists()


def test_malicious_checkpoints_are_refused_and_nothing_runs(tmp_path):
    marker, files = _malicious_files(tmp_path)
    for path in files:
        with pytest.raises(UnsafeCheckpointError) as info:
            load_checkpoint(path)
        msg = str(info.value)
        assert str(path) in msg and "refusing" in msg and "weights_only=True" in msg
        assert "posix.system" in msg  # named for every protocol (torch's own message does not name it for 4)
        assert "safetensors.torch.save_file" in msg  # how to convert it, where the file is trusted
        for advice in ("weights_only=False", "safe_globals"):  # never the advice to switch the protection off
            assert advice not in msg, msg
    assert not marker.exists()


def test_bytes_that_are_no_pickle_are_not_called_unsafe(tmp_path):
    """Random bytes make torch's unpickler fail with KeyError, IndexError or an unknown opcode: a ValueError naming
    the file, not an UnsafeCheckpointError (there is no pickle to be unsafe)."""
    import random

    for seed in range(40):
        rng = random.Random(seed)
        path = tmp_path / f"noise{seed}.bin"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
        with pytest.raises(ValueError, match=f"noise{seed}.bin") as info:
            load_checkpoint(path)
        assert not isinstance(info.value, pickle.UnpicklingError), str(info.value)


def test_plain_checkpoints_load(tmp_path):
    sd = OrderedDict(w=torch.arange(6.0).view(2, 3), n=torch.tensor(3))
    torch.save({"netG_state_dict": sd, "epoch": 5}, tmp_path / "nested.tar")
    got = load_checkpoint(tmp_path / "nested.tar")
    assert got["epoch"] == 5 and torch.equal(got["netG_state_dict"]["w"], sd["w"])
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)  # not memory-mappable
    assert torch.equal(load_checkpoint(tmp_path / "legacy.pth")["w"], sd["w"])
    save_file(dict(sd), str(tmp_path / "w.bin"))  # safetensors recognised by content, whatever the suffix
    assert torch.equal(load_checkpoint(tmp_path / "w.bin")["n"], sd["n"])


def test_unreadable_files_name_the_file(tmp_path):
    bad = tmp_path / "junk.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises((ValueError, pickle.UnpicklingError), match="junk.pth"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="flat state dict"):
        flat_state_dict({"a": torch.zeros(1), "b": {"c": torch.zeros(1)}}, "x")


# --------------------------------------------------------------------------------------------------------------
# Every torch.load in the package is weights_only=True; nothing else unpickles.


def unsafe_loads(source: str, filename: str = "<src>") -> list[str]:
    """Calls in ``source`` that could unpickle arbitrary objects: torch.load without a literal weights_only=True,
    pickle/dill/joblib loads, and torch.load imported under another name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization", "pickle", "dill"):
            for alias in node.names:
                if alias.name in ("load", "loads", "Unpickler"):
                    found.append(f"{filename}:{node.lineno}: from {node.module} import {alias.name}")
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in ("torch.load", "torch.serialization.load"):
            ok = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                     for k in node.keywords)
            if not ok:
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
        elif name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "dill.loads", "joblib.load",
                      "cPickle.load", "cPickle.loads"):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_catches_planted_unsafe_loads():
    planted = ("import torch, pickle\n"
               "a = torch.load(p)\n"
               "b = torch.load(p, weights_only=False)\n"
               "c = torch.load(p, map_location='cpu', weights_only=flag)\n"
               "d = pickle.loads(blob)\n"
               "from torch import load\n"
               "ok = torch.load(p, map_location='cpu', weights_only=True)\n")
    assert sorted(int(f.split(":")[1]) for f in unsafe_loads(planted)) == [2, 3, 4, 5, 6]


def test_no_code_path_in_ganbench_loads_without_weights_only():
    root = Path(ganbench.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) > 20
    found = [hit for f in files for hit in unsafe_loads(f.read_text(), str(f.relative_to(root.parent)))]
    assert found == [], "unsafe checkpoint loading:\n" + "\n".join(found)
    # the textual form of the same rule, as a reviewer would grep it: each "torch.load(" up to its closing
    # parenthesis (docstring mentions included) says weights_only=True
    for f in files:
        text = f.read_text()
        start = text.find("torch.load(")
        while start >= 0:
            depth, end = 0, start + len("torch.load")
            for end in range(end, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            call = text[start:end + 1]
            assert "weights_only=True" in call, f"{f}:{text.count(chr(10), 0, start) + 1}: {call}"
            start = text.find("torch.load(", end)
