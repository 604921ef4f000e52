"""The results store: one JSON document per run, written atomically (temporary file, then rename)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ganbench.results.schema import Result


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def result_filename(result: Result) -> str:
    """Named like timm's results files: what was run, and the precision, device and torch it ran on."""
    p = result.provenance
    torch_v = p.torch_version.split("+")[0]
    precision = result.bench["settings"]["precision"] if result.bench else "fp32"
    return f"{result.run_id}__{precision}-{p.device.split(':')[0]}-torch{torch_v}.json"


def write_result(result: Result, directory: str | Path) -> Path:
    path = Path(directory) / result_filename(result)
    return write_text_atomic(path, json.dumps(result.to_dict(), indent=2, sort_keys=False) + "\n")


def read_result(path: str | Path) -> Result:
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"results file {str(path)!r} is not valid JSON: {e}") from e
    return Result.from_dict(doc, source=str(path))


def read_results(directory: str | Path) -> list[Result]:
    """Every result JSON under ``directory`` (recursively), in file-name order."""
    directory = Path(directory)
    if directory.is_file():
        return [read_result(directory)]
    if not directory.is_dir():
        raise FileNotFoundError(f"results directory {str(directory)!r} does not exist")
    return [read_result(p) for p in sorted(directory.rglob("*.json"))]
