"""The results store: one JSON document per run, written atomically (temporary file, then rename); and the two
things every writer of a shared directory needs: a lock that names its holder, and a sweep of the temporary files
that only a dead process left (a temporary's name carries its writer's pid)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import time
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
    # the writer's pid in the name: a sweep removes only what a dead process left (``sweep_temporaries``)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


_TEMPORARY = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$")
LEGACY_TEMPORARY_AGE_S = 24 * 3600  # a temporary without a pid in its name is swept only when older than this
LOCK_NAME = ".ganbench.lock"
log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_temporaries(*dirs: str | Path) -> int:
    """Remove the temporary files (``.<name>.<pid>.<random>.tmp``) whose writer is no longer running; returns how
    many. A temporary of a live process (another run writing into the same directory) is never touched."""
    removed = 0
    now = time.time()
    for d in dirs:
        if not Path(d).is_dir():
            continue
        for tmp in Path(d).rglob(".*.tmp"):
            m = _TEMPORARY.match(tmp.name)
            try:
                if m is not None:
                    if _alive(int(m["pid"])):
                        continue
                elif now - tmp.stat().st_mtime < LEGACY_TEMPORARY_AGE_S:
                    continue
                tmp.unlink()
                removed += 1
            except FileNotFoundError:  # its writer finished it meanwhile
                continue
    return removed


class DirectoryLocked(RuntimeError):
    """Another process holds the lock of a directory; the message names it."""


@contextlib.contextmanager
def directory_lock(directory: str | Path, what: str = "ganbench") -> Iterator[Path]:
    """Hold an exclusive advisory lock (``flock``) on ``directory/.ganbench.lock`` for the block.

    The lock file records its holder (pid, host, command, start time); the lock itself is the ``flock``, which the
    kernel releases when the holder dies, so a killed run never leaves a stale lock.

    Raises:
        DirectoryLocked: Another process holds it; the message names that process.
    """
    import fcntl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "an unknown process"
            raise DirectoryLocked(f"{str(directory)!r} is in use by {holder}; wait for it to finish (or stop it) "
                                  f"and run again") from None
        info = f"pid {os.getpid()} on {socket.gethostname()} ({what}, since {time.strftime('%Y-%m-%d %H:%M:%S')})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


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
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"results file {str(path)!r} is not valid JSON: {e}") from e
    return Result.from_dict(doc, source=str(path))


NOT_RESULTS = ("ganbench.leaderboard/",)  # "format" of the other JSON documents ganbench writes


def read_results(directory: str | Path) -> list[Result]:
    """Every result JSON under ``directory`` (recursively), in file-name order. Other documents ganbench writes
    there (a leaderboard JSON) are skipped with a warning; any other file is an error naming it."""
    directory = Path(directory)
    if directory.is_file():
        return [read_result(directory)]
    if not directory.is_dir():
        raise FileNotFoundError(f"results directory {str(directory)!r} does not exist")
    results = []
    for p in sorted(directory.rglob("*.json")):
        if p.name.startswith("."):
            continue  # a temporary or hidden file
        try:
            head = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"results file {str(p)!r} is not valid JSON: {e}") from e
        if isinstance(head, dict) and str(head.get("format", "")).startswith(NOT_RESULTS):
            log.warning("skipping %s: a %s document, not a result", p, head["format"])
            continue
        results.append(Result.from_dict(head, source=str(p)))
    return results
