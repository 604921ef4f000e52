"""Fetching a named weight set: resolve its card's first available source, check the sha256, convert to safetensors.

Sources are tried in one fixed order, as timm's ``_builder.py`` (``_resolve_pretrained_source``) does: a local
file, the Hugging Face Hub (``huggingface_hub.hf_hub_download``: its cache, resumable downloads, and
``HF_HUB_OFFLINE``), a URL (``file://`` or ``http(s)://``, resumed from a ``.part`` file), and a file inside an
installed PyPI distribution (found through ``importlib.metadata``, so the package's own code is never imported or
run). A source that is not there (file missing, offline, package not installed) passes to the next; a source that
is there but whose bytes do not have the card's sha256 stops the fetch with both hashes in the message, before
anything is unpickled. timm checks no hash; this is the difference.

The verified file is read without executing it (``ganbench.zoo.safe_load``), mapped onto ganbench's module by the
card's converter, loaded strictly into the architecture (every tensor name and shape must match), and written
atomically as safetensors to ``cache_dir()/weights/<arch.tag>-<sha256[:16]>.safetensors`` with the metadata of
``Generator.save`` (so ``ganbench eval`` reads it too). Nothing is left half-written: a download lives in a
``.part`` file until it verifies, a file that fails verification is deleted when it is a download (the URL's
``.part``, or the Hub cache's blob and snapshot link), and a local file or an installed package's file is refused
but left alone.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ganbench.features import WeightsMismatch
from ganbench.paths import cache_dir
from ganbench.registry import Entry, UnknownNameError
from ganbench.results.store import atomic_path, file_sha256
from ganbench.zoo import GENERATOR_FORMAT, Generator, get_model
from ganbench.zoo.cards import (CardError, FileSource, HubSource, ModelCard, PypiSource, Source, UrlSource, load_card)
from ganbench.zoo.cdcgan import ConditionalGenerator  # importing cdcgan registers the "cdcgan" arch
from ganbench.zoo.safe_load import flat_state_dict, load_checkpoint

URL_TIMEOUT_S = 30.0  # socket timeout of a URL download (a stalled transfer resumes on the next fetch)


class SourceUnavailable(Exception):
    """A source that cannot provide the file now (missing, offline, not installed); the next source is tried."""


@dataclass(frozen=True)
class FetchedWeights:
    """A weight set in ganbench's cache, converted and verified."""

    card: ModelCard
    path: Path  # the converted safetensors file
    sha256: str  # of the converted file
    source: str  # where the verified bytes came from ("cache" when an earlier fetch converted them)


@dataclass(frozen=True)
class WeightsStatus:
    """Whether a weight set can be used without a download, with one, or not at all; nothing is hashed."""

    name: str  # arch.tag
    state: str  # "local", "fetchable" (Hub or URL), "pip-installable" (a PyPI package not installed), "missing",
    # or "invalid" (the card does not parse)
    detail: str  # where it is, or what would get it


def converted_path(card: ModelCard) -> Path:
    """Where the converted safetensors of ``card`` lives: keyed by the source hash, so a new file gets a new name."""
    return cache_dir() / "weights" / f"{card.name}-{card.sha256[:16]}.safetensors"


def download_dir() -> Path:
    """Partial URL downloads (``.part`` files), resumed by the next fetch."""
    return cache_dir() / "downloads"


# --------------------------------------------------------------------------------------------------------------
# Sources. Each resolver returns the local path of the source file and what to do with it if its hash is wrong.


def _no_cleanup(path: Path) -> str:
    return f"{str(path)!r} was left in place (not ganbench's to delete)"


def _resolve_file(src: FileSource, card: ModelCard, download: bool) -> tuple[Path, Callable[[Path], str]]:
    path = src.resolved()
    if not path.is_file():
        raise SourceUnavailable(f"{str(path)!r} does not exist")
    return path, _no_cleanup


def _hub_cache() -> str | None:
    # read at call time: huggingface_hub reads HF_HUB_CACHE once, when it is imported
    return os.environ.get("HF_HUB_CACHE") or None


def _offline() -> bool:
    from ganbench.features.foundation import offline_by_env

    return offline_by_env()


def _resolve_hub(src: HubSource, card: ModelCard, download: bool) -> tuple[Path, Callable[[Path], str]]:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import EntryNotFoundError

    local_only = not download or _offline()
    try:
        path = Path(hf_hub_download(src.repo, src.filename, revision=src.revision, cache_dir=_hub_cache(),
                                    local_files_only=local_only))
    except (OSError, EntryNotFoundError) as e:  # not cached while offline, no such repo/revision/file, network
        why = "not in the local Hub cache (offline)" if local_only else type(e).__name__
        raise SourceUnavailable(f"{why}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return path, _remove_hub_file


def _remove_hub_file(snapshot: Path) -> str:
    """Delete a Hub cache entry (its snapshot link and the blob it points to), so the next fetch downloads it anew
    instead of finding the same bytes in the cache."""
    blob = snapshot.resolve()
    for p in {snapshot, blob}:
        if p.is_symlink() or p.exists():
            p.unlink()
    return f"the Hub cache entry {str(snapshot)!r} and its blob were deleted"


def _resolve_url(src: UrlSource, card: ModelCard, download: bool) -> tuple[Path, Callable[[Path], str]]:
    part = download_dir() / f"{card.name}-{card.sha256[:16]}.part"
    remote = src.url.startswith(("http://", "https://"))
    if remote and (not download or _offline()):
        raise SourceUnavailable("offline" if download else "downloading was not allowed")
    part.parent.mkdir(parents=True, exist_ok=True)
    # a remote transfer resumes where a stalled one ended; a file:// copy is local and simply starts over
    start = part.stat().st_size if remote and part.exists() else 0
    if start > card.size:
        part.unlink()
        start = 0
    if start < card.size or not remote:
        request = urllib.request.Request(src.url, headers={"Range": f"bytes={start}-"} if start else {})
        try:
            with urllib.request.urlopen(request, timeout=URL_TIMEOUT_S) as response:
                if start and getattr(response, "status", 200) != 206:  # the server ignored the range: start over
                    start = 0
                with open(part, "ab" if start else "wb") as f:
                    shutil.copyfileobj(response, f, 1 << 20)
        except (urllib.error.URLError, OSError) as e:
            # a partial .part of a remote file is kept for resuming; an unreadable local URL leaves nothing
            if not remote and part.exists():
                part.unlink()
            raise SourceUnavailable(f"{type(e).__name__}: {e}") from None
    return part, _remove_download


def _remove_download(part: Path) -> str:
    part.unlink(missing_ok=True)
    return f"the download {str(part)!r} was deleted"


def _resolve_pypi(src: PypiSource, card: ModelCard, download: bool) -> tuple[Path, Callable[[Path], str]]:
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        raise SourceUnavailable(f"package {src.package!r} is not installed ({src.install_hint()})") from None
    listed = {str(f).replace("\\", "/") for f in (dist.files or [])}
    if listed and src.path not in listed:
        raise SourceUnavailable(f"{src.package} {dist.version} does not contain {src.path!r} (its RECORD does not "
                                f"list it; the card names version {src.version or 'unspecified'})")
    path = Path(str(dist.locate_file(src.path)))
    if not path.is_file():
        raise SourceUnavailable(f"{src.package} {dist.version} lists {src.path!r} but {str(path)!r} is missing "
                                f"(reinstall: {src.install_hint()})")
    return path, _no_cleanup


_RESOLVERS: dict[type, Callable[[Any, ModelCard, bool], tuple[Path, Callable[[Path], str]]]] = {
    FileSource: _resolve_file, HubSource: _resolve_hub, UrlSource: _resolve_url, PypiSource: _resolve_pypi}


def _check_hash(path: Path, card: ModelCard, src: Source, cleanup: Callable[[Path], str]) -> None:
    """Raise ``WeightsMismatch`` (after ``cleanup``) unless ``path`` has the card's sha256 and size."""
    actual = file_sha256(path)
    if actual == card.sha256:
        return
    size = path.stat().st_size
    done = cleanup(path)
    hint = f" Reinstall it: {src.install_hint()}." if isinstance(src, PypiSource) else ""
    raise WeightsMismatch(
        f"refusing {card.name} from {src.describe()}: sha256 {actual} ({size} bytes) but the card "
        f"{str(card.path)!r} expects sha256 {card.sha256} ({card.size} bytes); the file is corrupted or was "
        f"substituted and was not loaded; {done}.{hint}")


def resolve_source(card: ModelCard, download: bool = True) -> tuple[Path, Source, Callable[[Path], str]]:
    """The first source of ``card`` that has the file, verified against the card's sha256 and size.

    Returns:
        (local path of the verified file, its source, the cleanup to run once the file has been converted).

    Raises:
        WeightsMismatch: A source had the file with another hash (it was removed if it was a download).
        FileNotFoundError: No source has the file; the message says why for each.
    """
    reasons = []
    for src in card.sources:
        try:
            path, cleanup = _RESOLVERS[type(src)](src, card, download)
        except SourceUnavailable as e:
            reasons.append(f"{src.describe()}: {e}")
            continue
        _check_hash(path, card, src, cleanup)
        return path, src, cleanup
    raise FileNotFoundError(f"no source of {card.name} (card {str(card.path)!r}) is available:\n  "
                            + "\n  ".join(reasons))


# --------------------------------------------------------------------------------------------------------------
# Conversion and loading


def _architecture(card: ModelCard) -> tuple[Any, Any]:
    """(model entry, config) of the card's architecture."""
    try:
        entry = get_model(card.arch)
    except UnknownNameError as e:
        raise CardError(f"model card {str(card.path)!r}: key 'arch': {e}") from None
    try:
        config = entry.make_config(**card.config)
    except (TypeError, ValueError) as e:
        raise CardError(f"model card {str(card.path)!r}: key 'config': {e}") from None
    return entry, config


def _build_strict(entry: Any, config: Any, state: dict[str, torch.Tensor], what: str) -> torch.nn.Module:
    """The generator with exactly ``state`` (names and shapes checked).

    It is built on the meta device first, so no random initialisation is spent on weights that are overwritten;
    an architecture with tensors outside its state dict (non-persistent buffers) is built again on the CPU.
    """
    with torch.device("meta"):
        net = entry.build_generator(config)
    try:
        net.load_state_dict(state, strict=True, assign=True)
        if any(t.is_meta for t in (*net.parameters(), *net.buffers())):
            net = entry.build_generator(config)
            net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{what} do not fit {entry.name} {config}: {e}") from None
    return net.eval()


def convert_state(card: ModelCard, checkpoint: Any) -> dict[str, torch.Tensor]:
    """The card's converter applied to a loaded checkpoint (the identity without one), checked to be flat."""
    if card.convert:
        # the registry's lazy "module:attr" loading; the card parser allows only modules inside ganbench
        fn = Entry(card.name, card.convert).load()
        checkpoint = fn(checkpoint)
    return flat_state_dict(checkpoint, f"{card.name} (after {card.convert or 'no conversion'})")


def _converted_from(path: Path) -> dict[str, Any]:
    """The metadata of a converted file; empty when it is unreadable (it is then converted again)."""
    try:
        with safe_open(str(path), "pt") as f:
            return json.loads((f.metadata() or {}).get("ganbench", "{}"))
    except Exception:  # safetensors raises its own SafetensorError for damaged files
        return {}


def fetch(card: str | ModelCard, download: bool = True) -> FetchedWeights:
    """Bring a weight set into ganbench's cache as verified, converted safetensors.

    Args:
        card: "arch.tag", or a parsed card.
        download: Allow the Hub and http(s) URLs to download (``False``: local sources and caches only).

    Raises:
        CardError: No such card, or it is invalid.
        WeightsMismatch: The file a source provides has another sha256 than the card's.
        FileNotFoundError: No source is available.
        ganbench.zoo.safe_load.UnsafeCheckpointError: The file would run code when unpickled.
        ValueError: The converted tensors do not fit the architecture.
    """
    card = load_card(card) if isinstance(card, str) else card
    target = converted_path(card)
    if target.is_file() and _converted_from(target).get("source_sha256") == card.sha256:
        return FetchedWeights(card, target, file_sha256(target), "cache")
    raw, src, cleanup = resolve_source(card, download)
    state = convert_state(card, load_checkpoint(raw))
    entry, config = _architecture(card)
    net = _build_strict(entry, config, state, f"the weights of {card.name} from {src.describe()}")
    # one metadata key, as Generator.save writes it: the bytes (and so the hash) of a conversion are reproducible
    meta = {"ganbench": json.dumps({"format": GENERATOR_FORMAT, "model": entry.name,
                                    "config": dataclasses.asdict(config), "card": card.name,
                                    "source_sha256": card.sha256}, sort_keys=True)}
    with atomic_path(target) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata=meta)
    if isinstance(src, UrlSource):
        cleanup(raw)  # the .part download is not needed once its conversion is in the cache
    return FetchedWeights(card, target, file_sha256(target), src.describe())


def load_weights(card: str | ModelCard, download: bool = True) -> Generator:
    """The generator of a weight set (fetched first when needed), with the sampling contract of its task.

    ``weights_sha256`` is the card's (the source file's) hash, which names the upstream file a result came from.
    """
    fetched = fetch(card, download)
    entry, config = _architecture(fetched.card)
    net = _build_strict(entry, config, load_file(str(fetched.path)), f"{str(fetched.path)!r}")
    cls = ConditionalGenerator if entry.task == "class-conditional" else Generator
    return cls(entry, config, net, fetched.card.sha256, name=fetched.card.name)


# --------------------------------------------------------------------------------------------------------------
# Status, for `ganbench ls models`


def weights_status(card: ModelCard) -> WeightsStatus:
    """Where the weights of ``card`` are, without hashing or downloading anything."""
    if converted_path(card).is_file():
        return WeightsStatus(card.name, "local", f"cached {str(converted_path(card))}")
    remote, installable = [], []
    for src in card.sources:
        if isinstance(src, FileSource) and src.resolved().is_file():
            return WeightsStatus(card.name, "local", src.describe())
        if isinstance(src, PypiSource):
            try:
                importlib.metadata.distribution(src.package)
                return WeightsStatus(card.name, "local", f"{src.describe()} (installed)")
            except importlib.metadata.PackageNotFoundError:
                installable.append(src)
        if isinstance(src, HubSource):
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(src.repo, src.filename, cache_dir=_hub_cache(), revision=src.revision)
            if isinstance(hit, str):
                return WeightsStatus(card.name, "local", f"{src.describe()} (in the Hub cache)")
            remote.append(src)
        if isinstance(src, UrlSource):
            if src.url.startswith("file://") and Path(urllib.request.url2pathname(src.url[7:])).is_file():
                return WeightsStatus(card.name, "local", src.describe())
            remote.append(src)
    if remote:
        return WeightsStatus(card.name, "fetchable", remote[0].describe())
    if installable:
        return WeightsStatus(card.name, "pip-installable", installable[0].install_hint())
    return WeightsStatus(card.name, "missing", "; ".join(s.describe() for s in card.sources))


def weight_sets_by_arch() -> dict[str, list[WeightsStatus]]:
    """Every card's status, grouped by architecture name; a card that does not parse is listed as "invalid"."""
    from ganbench.zoo.cards import card_names

    out: dict[str, list[WeightsStatus]] = {}
    for name in card_names():
        try:
            card = load_card(name)
        except CardError as e:
            out.setdefault(name.split(".")[0], []).append(WeightsStatus(name, "invalid", str(e)))
            continue
        out.setdefault(card.arch, []).append(weights_status(card))
    return out


__all__ = ["FetchedWeights", "SourceUnavailable", "WeightsStatus", "convert_state", "converted_path", "download_dir",
           "fetch", "load_weights", "resolve_source", "weight_sets_by_arch", "weights_status"]
