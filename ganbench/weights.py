"""Weights files: the one place that finds, downloads, verifies and reads them.

Every pretrained file ganbench reads goes through this module: the feature extractors' weights (Inception, CLIP,
DINOv2), LPIPS's heads and backbone, SRGAN's VGG19, and the files that model cards name (``ganbench.zoo.fetch``
turns a card into a ``WeightsRequest``). It sits at the bottom of the import graph: it imports only
``ganbench.paths``, ``ganbench.results.store`` and third-party libraries, so the zoo, the features and the metrics
can all use it without importing each other.

Resolution goes through the candidates of a request in one fixed order, as timm's ``_builder.py``
(``_resolve_pretrained_source``) does, and unlike timm it checks the sha256 before a file is used whenever one is
known:

1. an explicit local file: a path the user named (an environment variable such as ``GANBENCH_CLIP_WEIGHTS``, or a
   path argument), a model card's ``file`` source, or a file inside an installed PyPI distribution;
2. ganbench's cache (``$GANBENCH_CACHE/weights/<file>``; for a card, its completed download in
   ``$GANBENCH_CACHE/downloads``);
3. a Hub cache or download: ``torch.hub``'s ``checkpoints/`` (where torch-fidelity and torchvision cache their
   downloads) and other tools' caches, or the Hugging Face Hub (its cache, or ``huggingface_hub.hf_hub_download``
   when online);
4. a URL: ``file://`` read in place, ``http(s)://`` downloaded.

A candidate that is not there passes to the next. One that is there but does not have the known sha256 (or size)
stops the resolution with both hashes in the message, before anything is unpickled: a substituted file is
reported, never silently skipped. A refused file that ganbench downloaded (a ``.part``, a Hub cache entry, a model
card's download in ganbench's cache) is deleted, so that the next call fetches it anew; any other file is left
where it is. The one exception is a file the user named explicitly for an extractor (a
variable or an argument): the user chose it, so a hash other than the published one warns (the scores then record
that file's own sha256) instead of refusing it.

Downloads stream into ``<target>.part`` with a progress bar on stderr, stop as soon as more bytes arrive than the
file may have (its size when known, else ``max_bytes``), and are renamed into place only after the sha256 (when
known) matches. A refused download (too large, wrong hash, an HTTP error) leaves nothing behind; only a transfer
cut off by the network keeps its ``.part``, which the next call resumes with an HTTP range request.

Downloading is off when ``GANBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` is 1/true/yes/on, or when the download host does
not answer a TCP connection within ``PROBE_TIMEOUT_S``; resolution then fails within about a second, naming the
file, where it was looked for, and where to put it.

Reading (``load_checkpoint``, ``load_state_dict``): a ``torch.save`` file is a pickle, and unpickling can call any
importable function (``__reduce__`` returning ``(os.system, ("...",))`` runs a shell command at load time).
ganbench reads safetensors (a JSON header and raw tensor bytes: nothing to execute), and everything else only with
``torch.load(weights_only=True)``, PyTorch's restricted unpickler that rebuilds tensors and plain containers and
refuses every other global before creating it. A refusal becomes ``UnsafeCheckpointError`` naming what was
refused and how to convert the file, and never the advice, in torch's own message, to switch the restriction off.
"""

from __future__ import annotations

import http.client
import os
import pickle
import pickletools
import re
import socket
import sys
import threading
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import torch
from safetensors.torch import load_file
from tqdm import tqdm

from ganbench.paths import cache_dir
from ganbench.results.store import file_sha256

OFFLINE_ENVS = ("GANBENCH_OFFLINE", "HF_HUB_OFFLINE")  # either set to 1/true/yes/on: never download
PROBE_TIMEOUT_S = 0.5  # how long the reachability probe of a download host may take
URL_TIMEOUT_S = 30.0  # socket timeout of a download (a stalled transfer resumes on the next call)
DEFAULT_MAX_BYTES = 4 << 30  # the most a download of unknown size may bring (the largest CLIP file is 1.3 GB)
CHUNK_BYTES = 1 << 20  # read size of a download
SAFETENSORS_SUFFIX = ".safetensors"
_TRUE = ("1", "true", "yes", "on")
_HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HUB_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class WeightsMismatch(ValueError):
    """A weights file whose sha256 or size is not the one its card or publisher names; it was not loaded."""


class DownloadTooLarge(WeightsMismatch):
    """A download that brought (or announced) more bytes than the file may have; it was stopped and removed."""


class SourceUnavailable(Exception):
    """A source that cannot provide the file now (missing, offline, not installed); the next source is tried."""


class WeightsNotFound(FileNotFoundError):
    """No candidate of a request has the file; the message says why for each and where to put the file."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint that pickles something other than tensors and plain containers; it was not unpickled."""


class NotACheckpointError(ValueError):
    """A file that is neither safetensors nor a ``torch.save`` file of tensors (random bytes, text, truncated)."""


# --------------------------------------------------------------------------------------------------------------
# The offline rule


def offline_by_env() -> bool:
    """True when ``GANBENCH_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in OFFLINE_ENVS)


def host_reachable(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds, name resolution included.

    The probe runs in a daemon thread so that a slow DNS lookup cannot hold the caller past ``timeout``.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def offline_reason(url: str) -> str | None:
    """Why nothing can be downloaded from ``url`` now (an offline variable, or its host not answering), or None."""
    if offline_by_env():
        return "offline: " + ", ".join(f"{n}={os.environ.get(n, '')!r}" for n in OFFLINE_ENVS)
    parsed = urlparse(url)
    host = parsed.hostname or ""
    try:
        port = parsed.port or (80 if parsed.scheme == "http" else 443)
    except ValueError:  # a port that is not a number
        return f"offline: {url!r} names no valid port"
    if not host_reachable(host, port):
        return f"offline: {host} did not answer within {PROBE_TIMEOUT_S} s"
    return None


# --------------------------------------------------------------------------------------------------------------
# Where files live


def hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints``: where ``torch.hub.load_state_dict_from_url`` (so torch-fidelity
    and torchvision) caches downloads; follows ``$TORCH_HOME``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def weights_dir() -> Path:
    """``$GANBENCH_CACHE/weights``: weights files ganbench keeps (converted model cards, extractor files)."""
    return cache_dir() / "weights"


def download_dir() -> Path:
    """``$GANBENCH_CACHE/downloads``: model-card downloads (and their ``.part`` files) until they are converted."""
    return cache_dir() / "downloads"


def hf_hub_cache() -> str | None:
    """The Hugging Face Hub cache named by ``HF_HUB_CACHE``, read at call time (huggingface_hub reads it once, when
    it is imported), or None for huggingface_hub's default."""
    return os.environ.get("HF_HUB_CACHE") or None


def hf_endpoint() -> str:
    """The Hub server downloads come from (``HF_ENDPOINT``, as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


# --------------------------------------------------------------------------------------------------------------
# Hashes


_SHA256: dict[tuple[Any, ...], str] = {}


def _memo_key(path: Path) -> tuple[Any, ...]:
    st = path.stat()
    return str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a weights file, memoised on (path, device, inode, size, mtime, ctime): CLIP files are up to 1.3 GB.

    A file rewritten in place gets a new ctime (which, unlike the mtime, cannot be set back), so it is hashed anew.
    """
    key = _memo_key(Path(path))
    if key not in _SHA256:
        _SHA256[key] = file_sha256(path)
    return _SHA256[key]


# --------------------------------------------------------------------------------------------------------------
# Names inside the Hub and inside packages: relative, without '..', without backslashes


def check_relative_path(text: str, what: str) -> str:
    """``text`` if it is a relative '/'-separated path that stays where it is joined (no empty, '.' or '..' parts,
    no backslashes, no control characters).

    Raises:
        ValueError: Naming ``what`` and the problem.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f"{what} must be a non-empty relative path, got {text!r}")
    if _CONTROL.search(text) or "\\" in text:
        raise ValueError(f"{what} {text!r} contains a backslash or a control character")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise ValueError(f"{what} {text!r} is absolute; it must be relative")
    if any(part in ("", ".", "..") for part in text.split("/")):
        raise ValueError(f"{what} {text!r} has an empty, '.' or '..' part; it must not leave its directory")
    return text


def check_hub_repo(repo: str) -> str:
    """``repo`` if it is a Hub repository id ``org/name`` as the Hub accepts them (no '..' or '--', at most 96
    characters).

    Raises:
        ValueError: It is not.
    """
    if not isinstance(repo, str) or not _HUB_REPO.match(repo) or ".." in repo or "--" in repo or len(repo) > 96:
        raise ValueError(f"{repo!r} is not a Hub repository id 'org/name' (letters, digits, '_', '.', '-'; no '..' "
                         "or '--')")
    return repo


def check_hub_revision(revision: str) -> str:
    """``revision`` if it is a branch, tag or commit name that cannot leave the Hub cache's ``refs/`` folder.

    Raises:
        ValueError: It is not.
    """
    if not isinstance(revision, str) or not _HUB_REVISION.match(revision) or len(revision) > 255:
        raise ValueError(f"{revision!r} is not a Hub revision (a branch, tag or commit hash)")
    check_relative_path(revision, "Hub revision")
    return revision


# --------------------------------------------------------------------------------------------------------------
# Requests and their resolution


@dataclass(frozen=True)
class LocalFile:
    """A local candidate (step 1 of the order)."""

    path: Path
    describe: str  # for messages and provenance ("file '/zoo/w.pth'", "pypi pkg==1.0:pkg/w.pth")
    named_by: str | None = None  # what named it when the user did (a variable, an argument): then it is the only
    # candidate, its absence is an error, and a hash other than the known one warns instead of refusing
    hint: str = ""  # appended to a refusal (how to reinstall a package)


@dataclass(frozen=True)
class Unavailable:
    """A local candidate known to be absent before resolution (a package that is not installed): its reason is
    reported with the others if no candidate has the file."""

    describe: str
    reason: str


@dataclass(frozen=True)
class HubFile:
    """A file in a Hugging Face Hub model repository."""

    repo: str  # "org/name"
    filename: str  # path inside the repository
    revision: str = "main"  # branch, tag or (best: it cannot move) commit hash

    def describe(self) -> str:
        return f"hub {self.repo}/{self.filename}@{self.revision}"

    def check(self) -> "HubFile":
        """This file, after checking that its names cannot leave the Hub cache.

        Raises:
            ValueError: The repository id, file name or revision is not acceptable.
        """
        check_hub_repo(self.repo)
        check_relative_path(self.filename, "Hub filename")
        check_hub_revision(self.revision)
        return self


@dataclass(frozen=True)
class WeightsRequest:
    """Everything the resolver needs to find one file, verify it, or download it."""

    label: str  # what the file is, for messages ("dcgan.faces64", "CLIP ViT-B-32 weights 'clip-....pt'")
    sha256: str | None = None  # every copy must have it (None: not known)
    hash_prefix: str | None = None  # a known prefix of the sha256 (torchvision's file names carry one)
    size: int | None = None  # exact byte count, when known
    max_bytes: int = DEFAULT_MAX_BYTES  # the most bytes a download of unknown size may bring
    expected_by: str = "the publisher"  # who names sha256 and size, for messages ("the card '/zoo/...toml'")
    local: tuple[LocalFile | Unavailable, ...] = ()  # 1. explicit local files, in order
    cache: tuple[Path, ...] = ()  # 2. ganbench's cache
    owns_cache: bool = False  # the cache files are ganbench's own downloads (deleted when wrong), not files a user
    # was told to put there (refused but left alone)
    hub_caches: tuple[Path, ...] = ()  # 3a. other tools' caches, read only (torch.hub's checkpoints/)
    hub: tuple[HubFile, ...] = ()  # 3b. the Hugging Face Hub: its cache, or a download
    urls: tuple[str, ...] = ()  # 4. file:// (read in place) or http(s):// (downloaded to download_to)
    download_to: Path | None = None  # where an http(s) download is kept once verified
    missing_hint: str = ""  # appended when no candidate has the file (where to get it, where to put it)

    @property
    def limit(self) -> int:
        """The most bytes a download may bring: the exact size when known."""
        return self.size if self.size is not None else self.max_bytes

    def expectation(self) -> str:
        parts = []
        if self.sha256:
            parts.append(f"sha256 {self.sha256}")
        elif self.hash_prefix:
            parts.append(f"a sha256 starting with {self.hash_prefix}")
        if self.size is not None:
            parts.append(f"{self.size} bytes")
        return " and ".join(parts)

    def matches(self, sha256: str, size: int) -> bool:
        return ((self.sha256 is None or sha256 == self.sha256)
                and (self.hash_prefix is None or sha256.startswith(self.hash_prefix))
                and (self.size is None or size == self.size))

    @property
    def pinned(self) -> bool:
        """Whether anything about the file's bytes is known (else nothing is hashed during resolution)."""
        return self.sha256 is not None or self.hash_prefix is not None or self.size is not None


@dataclass(frozen=True)
class ResolvedWeights:
    """A file the resolver found (or downloaded) and verified."""

    path: Path
    source: str  # the candidate it came from, described
    sha256: str | None  # its sha256 when it was hashed (always, when the request knows a hash or size)
    owned: bool  # ganbench created it (a download, a cache entry): its caller may delete it when done


def _left_alone(path: Path) -> str:
    return f"{str(path)!r} was left in place (not ganbench's to delete)"


def _delete(path: Path) -> str:
    path.unlink(missing_ok=True)
    return f"{str(path)!r} was deleted"


def _delete_hub_entry(snapshot: Path) -> str:
    """Delete a Hub cache entry (its snapshot link and the blob it points to), so that the next call downloads it
    anew instead of finding the same bytes in the cache."""
    blob = snapshot.resolve()
    for p in {snapshot, blob}:
        if p.is_symlink() or p.exists():
            p.unlink()
    return f"the Hub cache entry {str(snapshot)!r} and its blob were deleted"


def verify_file(request: WeightsRequest, path: Path, describe: str, *, cleanup: Callable[[Path], str] = _left_alone,
                warn_only: bool = False, hint: str = "") -> str | None:
    """Check ``path`` against the request's sha256, hash prefix and size; its sha256 (None when nothing is known).

    Args:
        request: What the file must be.
        path: The file.
        describe: Where it came from, for the message.
        cleanup: Run on a refused file; returns what it did, for the message.
        warn_only: Warn instead of refusing (a file the user named explicitly).
        hint: Appended to the refusal.

    Raises:
        WeightsMismatch: The file is not the one the request names (after ``cleanup``); nothing was loaded.
    """
    if not request.pinned:
        return None
    actual, size = weights_sha256(path), path.stat().st_size
    if request.matches(actual, size):
        return actual
    if warn_only:
        warnings.warn(f"{request.label}: {describe} has sha256 {actual} ({size} bytes), but {request.expected_by} "
                      f"gives {request.expectation()}; it is used because it was named explicitly, and scores "
                      "computed with it are not comparable with those of the published file", UserWarning,
                      stacklevel=3)
        return actual
    done = cleanup(path)
    raise WeightsMismatch(
        f"refusing {request.label} from {describe}: sha256 {actual} ({size} bytes) but {request.expected_by} expects "
        f"{request.expectation()}; the file is corrupted or was substituted and was not loaded; {done}.{hint}")


def resolve(request: WeightsRequest, download: bool = True, progress: bool = True) -> ResolvedWeights:
    """The first candidate of ``request`` that has the file, in the module's fixed order, verified before it is
    returned.

    Args:
        request: The file and its candidates.
        download: Allow the Hub and http(s) URLs to download (``False``: local files and caches only).
        progress: Show a download's progress bar on stderr.

    Raises:
        WeightsMismatch: A candidate has a file with another sha256 or size (a download or a ganbench cache entry
            was deleted; a local file was left alone). Not raised for a file the user named: that warns.
        DownloadTooLarge: A download brought more bytes than the file may have (it was deleted).
        WeightsNotFound: No candidate has the file (a ``FileNotFoundError``); the message says why for each.
    """
    reasons: list[str] = []
    for item in request.local:
        if isinstance(item, Unavailable):
            reasons.append(f"{item.describe}: {item.reason}")
            continue
        if item.path.is_file():
            sha = verify_file(request, item.path, item.describe, warn_only=item.named_by is not None, hint=item.hint)
            return ResolvedWeights(item.path, item.describe, sha, owned=False)
        if item.named_by is not None:  # an explicit path that is wrong is an error, not a fallback
            raise WeightsNotFound(_not_found(request, [f"{item.named_by}={str(item.path)!r} is not a file"]))
        reasons.append(f"{item.describe}: {str(item.path)!r} does not exist")
    for path in request.cache:
        if path.is_file():
            sha = verify_file(request, path, f"ganbench's cache {str(path)!r}",
                              cleanup=_delete if request.owns_cache else _left_alone)
            return ResolvedWeights(path, f"cache {str(path)!r}", sha, owned=request.owns_cache)
        reasons.append(f"ganbench's cache: {str(path)!r} does not exist")
    for path in request.hub_caches:
        if path.is_file():
            sha = verify_file(request, path, f"{str(path)!r}")
            return ResolvedWeights(path, f"file {str(path)!r}", sha, owned=False)
        reasons.append(f"{str(path)!r} does not exist")
    for hub in request.hub:
        try:
            path = hub_file(hub, request, download)
        except SourceUnavailable as e:
            reasons.append(f"{hub.describe()}: {e}")
            continue
        sha = verify_file(request, path, hub.describe(), cleanup=_delete_hub_entry)
        return ResolvedWeights(path, hub.describe(), sha, owned=False)
    for url in request.urls:
        if url.startswith("file://"):
            path = Path(urllib.request.url2pathname(urlparse(url).path))
            if not path.is_file():
                reasons.append(f"url {url}: {str(path)!r} does not exist")
                continue
            sha = verify_file(request, path, f"url {url}")
            return ResolvedWeights(path, f"url {url}", sha, owned=False)
        why = offline_reason(url) if download else "downloading was not allowed"
        if why is None and request.download_to is None:
            why = "the request names no download location"
        if why is not None:
            reasons.append(f"url {url}: {why}")
            continue
        try:
            path = download_url(url, request.download_to, request, progress=progress)
        except SourceUnavailable as e:
            reasons.append(f"url {url}: {e}")
            continue
        return ResolvedWeights(path, f"url {url}", weights_sha256(path) if request.pinned else None, owned=True)
    raise WeightsNotFound(_not_found(request, reasons))


def _not_found(request: WeightsRequest, reasons: list[str]) -> str:
    text = f"{request.label} not found:\n  " + "\n  ".join(reasons or ["no candidate was given"])
    return text + (f"\n{request.missing_hint}" if request.missing_hint else "")


# --------------------------------------------------------------------------------------------------------------
# Downloads


def download_url(url: str, target: Path, request: WeightsRequest, progress: bool = True) -> Path:
    """Download ``url`` to ``target`` through ``<target>.part``, resuming a ``.part`` an interrupted transfer left,
    and rename it into place only once it has the request's sha256 and size.

    More bytes than ``request.limit`` (announced in Content-Length, or arriving) stop the transfer at once.

    Returns:
        ``target``.

    Raises:
        DownloadTooLarge: Too many bytes; the ``.part`` was deleted.
        WeightsMismatch: The completed file is not the request's; the ``.part`` was deleted.
        SourceUnavailable: An HTTP error (the ``.part`` was deleted) or a network failure (the ``.part`` is kept for
            the next call to resume).
    """
    target = Path(target)
    part = target.with_name(target.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    if start > request.limit:
        part.unlink()
        start = 0
    if request.size is None or start < request.size:
        _stream(url, part, start, request, progress)
    if part.stat().st_size == 0:
        part.unlink()
        raise SourceUnavailable("the server sent an empty file")
    sha = verify_file(request, part, f"url {url}", cleanup=lambda p: "the download " + _delete(p))
    os.replace(part, target)
    if sha is not None:  # the rename changes the memo's key; the bytes were hashed once already
        _SHA256[_memo_key(target)] = sha
    return target


def _stream(url: str, part: Path, start: int, request: WeightsRequest, progress: bool, retried: bool = False) -> None:
    """Append the bytes of ``url`` from ``start`` on to ``part`` (or rewrite it when the server ignores the range)."""
    headers = {"Range": f"bytes={start}-"} if start else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=URL_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start and not retried:  # the .part is no prefix of the file: start over
            part.unlink(missing_ok=True)
            return _stream(url, part, 0, request, progress, retried=True)
        part.unlink(missing_ok=True)
        raise SourceUnavailable(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise SourceUnavailable(f"{type(e).__name__}: {e}") from None
    with response:
        status = getattr(response, "status", 200)
        if start and status == 206:
            first = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
            if first is None or int(first.group(1)) != start:
                part.unlink(missing_ok=True)
                raise SourceUnavailable(f"the server answered a request for bytes {start}- with "
                                        f"{response.headers.get('Content-Range')!r}; the next call starts over")
        elif start:  # the server ignored the range: the whole file comes again
            start = 0
        announced = response.headers.get("Content-Length")
        if announced is not None and announced.isdigit() and start + int(announced) > request.limit:
            part.unlink(missing_ok=True)
            raise DownloadTooLarge(f"refusing {request.label} from url {url}: the server announces "
                                   f"{start + int(announced)} bytes, more than the {request.limit} it may have "
                                   f"({request.expected_by}); nothing was kept")
        received = start
        total = start + int(announced) if announced is not None and announced.isdigit() else None
        with open(part, "ab" if start else "wb") as f, tqdm(
                total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc=f"download {part.name[:-len('.part')]}", disable=not progress, leave=False) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as e:  # cut off: the .part stays for resuming
                    raise SourceUnavailable(f"the transfer stopped after {received} bytes ({type(e).__name__}: "
                                            f"{e}); the next call resumes it") from None
                if not chunk:
                    break
                received += len(chunk)
                if received > request.limit:
                    f.close()
                    part.unlink(missing_ok=True)
                    raise DownloadTooLarge(f"refusing {request.label} from url {url}: more than the {request.limit} "
                                           f"bytes it may have ({request.expected_by}) arrived; the transfer was "
                                           "stopped and nothing was kept")
                f.write(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:  # http.client ends a short body quietly: cut off, keep the .part
            raise SourceUnavailable(f"the transfer stopped after {received} of {total} bytes; the next call resumes "
                                    "it")


def hub_file(hub: HubFile, request: WeightsRequest, download: bool) -> Path:
    """The local path of a Hub file: from the Hub cache, else downloaded by ``huggingface_hub.hf_hub_download``
    when downloading is allowed and online (refused first when the Hub says it is larger than the request allows).

    Raises:
        SourceUnavailable: Not cached and not downloadable now, or the Hub has no such file.
        DownloadTooLarge: The Hub's file is larger than the request allows (nothing was downloaded).
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache

    try:
        hub.check()
    except ValueError as e:
        raise SourceUnavailable(str(e)) from None
    cached = try_to_load_from_cache(hub.repo, hub.filename, cache_dir=hf_hub_cache(), revision=hub.revision)
    if isinstance(cached, str):
        return Path(cached)
    why = offline_reason(hf_endpoint()) if download else "downloading was not allowed"
    if why is not None:
        raise SourceUnavailable(f"not in the local Hub cache ({why})")
    try:
        announced = get_hf_file_metadata(hf_hub_url(hub.repo, hub.filename, revision=hub.revision)).size
        if announced is not None and announced > request.limit:
            raise DownloadTooLarge(f"refusing {request.label} from {hub.describe()}: the Hub announces {announced} "
                                   f"bytes, more than the {request.limit} it may have ({request.expected_by}); "
                                   "nothing was downloaded")
        return Path(hf_hub_download(hub.repo, hub.filename, revision=hub.revision, cache_dir=hf_hub_cache()))
    except DownloadTooLarge:
        raise
    except Exception as e:  # huggingface_hub's network, HTTP and validation errors: this source is unavailable
        first = str(e).splitlines()[0] if str(e) else ""
        raise SourceUnavailable(f"{type(e).__name__}: {first}") from None


# --------------------------------------------------------------------------------------------------------------
# Named weights files of extractors and losses (a fixed URL, optional variables naming a local copy)


@dataclass(frozen=True)
class WeightsFile:
    """One pretrained weights file with a fixed URL: its name, where it is looked for, what it must hash to.

    Args:
        label: What the file is, for messages ("CLIP ViT-B/32 weights").
        filename: The file name torch-fidelity (or torchvision) caches it under.
        url: Where it is downloaded from.
        envs: Environment variables that may name the file explicitly, first set one wins.
        sha256: The published sha256, when known: files found in caches or downloaded must have it.
        hash_prefix: A published prefix of the sha256 (torchvision's file names carry 8 hex digits).
        extra_paths: Further caches to look in (step 3), ``~`` expanded at call time (e.g. OpenAI's ``clip`` cache).
        max_bytes: The most bytes a download may bring.
    """

    label: str
    filename: str
    url: str
    envs: tuple[str, ...]
    sha256: str | None = None
    hash_prefix: str | None = None
    extra_paths: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES

    def explicit(self) -> tuple[str, Path] | None:
        """(variable, path) of the first of ``envs`` that is set and non-empty."""
        for env in self.envs:
            value = os.environ.get(env, "").strip()
            if value:
                return env, Path(value).expanduser()
        return None

    def cache_path(self) -> Path:
        return weights_dir() / self.filename

    def hub_path(self) -> Path:
        return hub_checkpoints_dir() / self.filename

    def candidates(self) -> list[Path]:
        """Where the file is looked for, in order (an explicitly named path first)."""
        named = self.explicit()
        return ([named[1]] if named else []) + [self.cache_path(), self.hub_path()] + [
            Path(p).expanduser() for p in self.extra_paths]

    def local(self) -> Path | None:
        """The file if it exists locally (no network, no hashing), else None; an explicitly named path is the only
        candidate when set."""
        named = self.explicit()
        if named:
            return named[1] if named[1].is_file() else None
        return next((p for p in self.candidates() if p.is_file()), None)

    def where_to_put(self) -> str:
        return (f"Download {self.url} and either set {self.envs[0]}=/path/to/{self.filename} or put the file at "
                f"{str(self.cache_path())!r} (under $GANBENCH_CACHE) or {str(self.hub_path())!r} (torch-fidelity's "
                "torch.hub cache)")

    def missing_message(self, reason: str) -> str:
        return f"{self.label} {self.filename!r} not found ({reason}). {self.where_to_put()}"

    def request(self, named: str | os.PathLike[str] | None = None, named_by: str = "path") -> WeightsRequest:
        """The resolver's request for this file: ``named`` (a path argument) or the first set variable alone when
        given, else ganbench's cache, torch.hub's cache and ``extra_paths``, then the URL into torch.hub's cache."""
        explicit = (named_by, Path(named).expanduser()) if named is not None else self.explicit()
        local = (LocalFile(explicit[1], f"{explicit[0]}={str(explicit[1])!r}", named_by=explicit[0]),) \
            if explicit else ()
        return WeightsRequest(
            label=f"{self.label} {self.filename!r}", sha256=self.sha256, hash_prefix=self.hash_prefix,
            max_bytes=self.max_bytes, expected_by=f"its publisher ({self.url})", local=local,
            cache=(self.cache_path(),), hub_caches=(self.hub_path(), *(Path(p).expanduser() for p in self.extra_paths)),
            urls=(self.url,), download_to=self.hub_path(), missing_hint=self.where_to_put())

    def resolve(self, download: bool = True, progress: bool = True,
                named: str | os.PathLike[str] | None = None, named_by: str = "path") -> Path:
        """The local path of the file, verified, downloading it into the torch hub cache when allowed and online.

        Args:
            download: Allow downloading (``False``: local files only, no network probe).
            progress: Show the download's progress bar on stderr.
            named: A path the caller was given explicitly (overrides the variables; its absence is an error).
            named_by: What gave ``named``, for messages (an argument's name).

        Raises:
            WeightsNotFound: A named file is missing, or no candidate exists and the file cannot be downloaded
                (``download=False``, or offline); a ``FileNotFoundError`` naming the file, its URL and where to put
                it. Offline, this is raised within about half a second.
            WeightsMismatch: A cached or downloaded file does not have the published sha256.
        """
        return resolve(self.request(named, named_by), download=download, progress=progress).path


# --------------------------------------------------------------------------------------------------------------
# Reading checkpoints without running them


def is_safetensors(path: Path) -> bool:
    """Whether the file starts like safetensors: an 8-byte little-endian header length, then a JSON object."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n <= os.path.getsize(path) - 8 and head[8:9] == b"{"


_CONVERT_HINT = ("ganbench reads only tensors: safetensors files, and torch.save files of tensors and plain "
                 "containers through torch.load(weights_only=True). Where you trust the file, convert it once to "
                 "safetensors (safetensors.torch.save_file(state_dict, 'weights.safetensors')) or ask its publisher "
                 "for safetensors or a plain state dict")


def load_checkpoint(path: str | os.PathLike[str]) -> Any:
    """The contents of a checkpoint file on the CPU, without executing anything in it.

    Safetensors files give their flat dict of tensors. Anything else goes through
    ``torch.load(weights_only=True)`` (memory-mapped when the file is in torch's zip format) and may be a nested
    structure (e.g. ``{"netG_state_dict": {...}, "epoch": 5}``) of tensors and plain containers.

    Raises:
        FileNotFoundError: No such file.
        UnsafeCheckpointError: The file pickles a global that the weights-only unpickler does not allow (for
            instance a function to call); nothing in it was executed.
        NotACheckpointError: The file is neither safetensors nor a readable torch checkpoint (a ``ValueError``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    if path.suffix == SAFETENSORS_SUFFIX or is_safetensors(path):
        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own SafetensorError for malformed headers
            raise NotACheckpointError(f"checkpoint {str(path)!r} is not a valid safetensors file: {e}") from None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it may not read; the error says it all
            warnings.filterwarnings("ignore", message=r"Detected pickle protocol", category=UserWarning)
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as e:  # the legacy (pre-1.6, non-zip) format cannot be memory-mapped
                if "mmap" not in str(e):
                    raise
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = _refused_global(e)
        found = [refused] if refused is not None else _pickle_globals(path)
        if found is not None:  # a pickle the restricted unpickler refuses (protocol 4's FRAME is refused too)
            what = (f"it pickles {', '.join(found[:5])}, which is not a tensor or a plain container, and unpickling "
                    "it could run code" if found else f"it is a pickle that torch's weights-only unpickler refuses "
                    f"({_torch_reason(e)})")
            raise UnsafeCheckpointError(f"refusing to load checkpoint {str(path)!r}: {what}; nothing in it was run. "
                                        f"{_CONVERT_HINT}") from None
        raise NotACheckpointError(f"checkpoint {str(path)!r} is neither safetensors nor a torch.save file of tensors "
                                  f"({_torch_reason(e)}); nothing in it was run. {_CONVERT_HINT}") from None
    except Exception as e:  # random bytes or text make the unpickler fail in many ways (KeyError, IndexError, ...)
        raise NotACheckpointError(f"checkpoint {str(path)!r} is neither safetensors nor a readable torch.save file "
                                  f"({type(e).__name__}: {_torch_reason(e)})") from None


def _refused_global(error: Exception) -> str | None:
    """The global (``posix.system``) that torch's weights-only unpickler refused, if its message names one."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return found.group(1) if found else None


def _pickle_globals(path: Path) -> list[str] | None:
    """The globals (``module.name``) the first pickle in ``path`` references, or None when the file does not parse
    as a pickle. ``pickletools.genops`` only decodes opcodes: nothing is created or called."""
    names: list[str] = []
    strings: list[str] = []  # the last string pushes: STACK_GLOBAL takes its module and name from them
    try:
        with open(path, "rb") as f:
            for opcode, arg, _ in pickletools.genops(f):
                if opcode.name == "GLOBAL" or opcode.name == "INST":
                    names.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL":
                    names.append(".".join(strings[-2:]))
                elif isinstance(arg, str):
                    strings = (strings + [arg])[-2:]
    except Exception:  # not a pickle: genops stops at the first byte that is no opcode
        return None
    return names


def _torch_reason(error: Exception) -> str:
    """The line of torch's error that says what went wrong, without its advice on lifting the restriction."""
    advice = ("weights_only", "Weights only load failed", "safe_globals", "documentation", "trusted source")
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not any(a in ln for a in advice)]
    return (useful[0] if useful else type(error).__name__)[:200].rstrip(".")


def flat_state_dict(obj: Any, what: str) -> dict[str, torch.Tensor]:
    """``obj`` if it is a non-empty flat ``{name: tensor}`` dict, else a ``ValueError`` naming ``what`` and what it
    holds (never its contents)."""
    if not isinstance(obj, dict) or not obj:
        kind = "an empty dict" if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{what} is not a state dict of tensors (got {kind})")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        kinds = sorted({type(obj[k]).__name__ for k in bad[:5]})
        names = [k if isinstance(k, str) else type(k).__name__ for k in bad[:5]]
        raise ValueError(f"{what} is not a flat state dict of tensors: {[n[:80] for n in names]} hold "
                         f"{', '.join(kinds)}")
    return obj


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A flat state dict from a safetensors or ``torch.save`` file, read safely onto the CPU (memory-mapped where
    the file format allows).

    Raises:
        UnsafeCheckpointError: The file pickles anything but tensors and plain containers (a
            ``pickle.UnpicklingError``).
        ValueError: The file is not a checkpoint, or not a flat dict of tensors.
    """
    return flat_state_dict(load_checkpoint(path), f"{str(path)!r}")


__all__ = ["DEFAULT_MAX_BYTES", "DownloadTooLarge", "HubFile", "LocalFile", "NotACheckpointError", "OFFLINE_ENVS",
           "PROBE_TIMEOUT_S", "ResolvedWeights", "SAFETENSORS_SUFFIX", "SourceUnavailable", "URL_TIMEOUT_S",
           "Unavailable", "UnsafeCheckpointError", "WeightsFile", "WeightsMismatch", "WeightsNotFound",
           "WeightsRequest", "check_hub_repo", "check_hub_revision", "check_relative_path", "download_dir",
           "download_url", "flat_state_dict", "hf_hub_cache", "host_reachable", "hub_checkpoints_dir", "hub_file",
           "is_safetensors", "load_checkpoint", "load_state_dict", "offline_by_env", "offline_reason",
           "resolve", "verify_file", "weights_dir", "weights_sha256"]
