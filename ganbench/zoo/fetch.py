"""Fetching a named weight set: a card's sources become one request to ``ganbench.weights``, and the verified file is
converted into ganbench's module and cached as safetensors.

Finding, downloading and checking a file is ``ganbench.weights.resolve``, the resolver every weights file goes
through, in its one fixed order: local files (the card's ``file``, then the file inside an installed PyPI
distribution), ganbench's download cache, the Hugging Face Hub (its cache, or a download), and URLs (``file://``
read in place, ``http(s)://`` downloaded with a resumable ``.part`` and the card's ``size`` as a hard limit). A
source that is not there passes to the next; a source that is there but whose bytes do not have the card's sha256
and size stops the fetch with both hashes in the message, before anything is unpickled. timm's ``_builder.py``
(``_resolve_pretrained_source``) fixes an order too but checks no hash; this is the difference.

What is card-specific lives here: which sources a card lists and how each becomes a candidate (a ``file`` source or
``file://`` URL only inside the zoo directory or ganbench's cache; a PyPI distribution's file found through
``importlib.metadata``, so the package's own code is never imported or run, and only inside that distribution),
the conversion, and the cache of converted files. The verified file is read without executing it
(``ganbench.weights.load_checkpoint``), reduced to a flat ``{name: tensor}`` dict and mapped onto ganbench's module
by the card's registered converter (``ganbench.zoo.convert``), loaded strictly into the architecture (every tensor
name and shape must match), and written atomically as safetensors to
``cache_dir()/weights/<arch.tag>-<sha256[:16]>.safetensors`` with the metadata of ``Generator.save`` (so ``ganbench
eval`` reads it too). Nothing is left half-written: a download lives in a ``.part`` file until it verifies, a
refused download is deleted (and so is a refused Hub cache entry, its snapshot link and blob), a local file or an
installed package's file is refused but left alone, and the verified download itself is deleted once converted.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ganbench.paths import cache_dir
from ganbench.registry import UnknownNameError
from ganbench.results.store import atomic_path, file_sha256
from ganbench.weights import (HubFile, LocalFile, ResolvedWeights, SourceUnavailable, Unavailable, WeightsRequest,
                              check_relative_path, download_dir, hf_hub_cache, load_checkpoint, resolve)
from ganbench.zoo import GENERATOR_FORMAT, Generator, get_model
from ganbench.zoo.cards import (CARD_NAME, SHA256, CardError, FileSource, HubSource, ModelCard, PypiSource, UrlSource,
                                load_card)
from ganbench.zoo.convert import CONVERTERS, convert_checkpoint


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
    # or "invalid" (the card does not parse, or names a source it may not)
    detail: str  # where it is, or what would get it, or why the card is invalid


def converted_path(card: ModelCard) -> Path:
    """Where the converted safetensors of ``card`` lives: keyed by the source hash, so a new file gets a new name."""
    return cache_dir() / "weights" / f"{card.name}-{card.sha256[:16]}.safetensors"


def download_path(card: ModelCard) -> Path:
    """Where an http(s) download of ``card``'s file is kept from its verification until its conversion (its
    ``.part`` beside it while it transfers)."""
    return download_dir() / f"{card.name}-{card.sha256[:16]}"


def _card_context(card: ModelCard, key: str, error: Exception) -> CardError:
    return CardError(f"model card {str(card.path)!r}: key {key!r}: {error}")


def _check_identity(card: ModelCard) -> None:
    """The name and hash that cache paths are built from, and the converter, must be what ``parse_card`` allows (a
    ``ModelCard`` can be built without it); checked before any file is read."""
    if not CARD_NAME.match(card.name):
        raise _card_context(card, "name", ValueError(f"{card.name[:200]!r} is not 'arch.tag'"))
    if not SHA256.match(card.sha256):
        raise _card_context(card, "sha256", ValueError(f"{card.sha256[:200]!r} is not 64 lowercase hex digits"))
    if card.convert is not None:
        try:
            CONVERTERS.entry(card.convert)  # a lookup: nothing is imported
        except UnknownNameError as e:
            raise _card_context(card, "convert", e) from None


# --------------------------------------------------------------------------------------------------------------
# A card's sources as the resolver's candidates


def _pypi_candidate(src: PypiSource) -> LocalFile | Unavailable:
    """The file inside an installed distribution, found from its metadata (the package is never imported)."""
    try:
        dist = importlib.metadata.distribution(src.package)
    except importlib.metadata.PackageNotFoundError:
        return Unavailable(src.describe(), f"package {src.package!r} is not installed ({src.install_hint()})")
    listed = {str(f).replace("\\", "/") for f in (dist.files or [])}
    if listed and src.path not in listed:
        return Unavailable(src.describe(), f"{src.package} {dist.version} does not contain {src.path!r} (its RECORD "
                                           f"does not list it; the card names version {src.version or 'unspecified'})")
    root = Path(str(dist.locate_file(""))).resolve()
    path = Path(str(dist.locate_file(src.path)))
    if not path.resolve().is_relative_to(root):
        return Unavailable(src.describe(), f"{src.path!r} leads outside the installed distribution")
    if not path.is_file():
        return Unavailable(src.describe(), f"{src.package} {dist.version} lists {src.path!r} but {str(path)!r} is "
                                           f"missing (reinstall: {src.install_hint()})")
    return LocalFile(path, src.describe(), hint=f" Reinstall it: {src.install_hint()}.")


def card_request(card: ModelCard) -> WeightsRequest:
    """The resolver's request for ``card``'s source file: its sha256 and size, and its sources as candidates.

    Raises:
        CardError: A local source lies outside the zoo directory and ganbench's cache, or a Hub or package name
            could leave its cache or distribution (nothing about such a file is read or reported).
    """
    _check_identity(card)
    local: list[LocalFile | Unavailable] = []
    hub: list[HubFile] = []
    urls: list[str] = []
    for src in card.sources:
        if isinstance(src, FileSource):
            try:
                local.append(LocalFile(src.resolved(), src.describe()))
            except CardError as e:
                raise _card_context(card, "sources.file", e) from None
        elif isinstance(src, PypiSource):
            try:
                check_relative_path(src.path, "package file path")
            except ValueError as e:
                raise _card_context(card, "sources.pypi.path", e) from None
            local.append(_pypi_candidate(src))
        elif isinstance(src, HubSource):
            try:
                hub.append(HubFile(src.repo, src.filename, src.revision).check())
            except ValueError as e:
                raise _card_context(card, "sources.hub", e) from None
        elif isinstance(src, UrlSource) and src.is_local:
            try:
                urls.append(src.local_path().as_uri())  # the checked real path, not the one the card spelled
            except CardError as e:
                raise _card_context(card, "sources.url", e) from None
        elif isinstance(src, UrlSource):
            urls.append(src.url)
    return WeightsRequest(
        label=card.name, sha256=card.sha256, size=card.size, expected_by=f"the card {str(card.path)!r}",
        local=tuple(local), cache=(download_path(card),), owns_cache=True, hub=tuple(hub), urls=tuple(urls),
        download_to=download_path(card),
        missing_hint=f"(every source of the card {str(card.path)!r} was tried, in the order file, pypi, ganbench's "
                     "download cache, hub, url)")


def resolve_source(card: ModelCard, download: bool = True) -> ResolvedWeights:
    """The first source of ``card`` that has the file, verified against the card's sha256 and size.

    Raises:
        CardError: A source names a place a card may not (see ``card_request``).
        WeightsMismatch: A source had the file with another hash (it was removed if it was a download).
        FileNotFoundError: No source has the file; the message says why for each.
    """
    return resolve(card_request(card), download=download)


# --------------------------------------------------------------------------------------------------------------
# Conversion and loading


def _architecture(card: ModelCard) -> tuple[Any, Any]:
    """(model entry, config) of the card's architecture."""
    try:
        entry = get_model(card.arch)
    except UnknownNameError as e:
        raise _card_context(card, "arch", e) from None
    try:
        config = entry.make_config(**card.config)
    except (TypeError, ValueError) as e:
        raise _card_context(card, "config", e) from None
    return entry, config


def _build_strict(card: ModelCard, entry: Any, config: Any, state: dict[str, torch.Tensor],
                  what: str) -> torch.nn.Module:
    """The generator with exactly ``state`` (names and shapes checked).

    It is built on the meta device first, so no random initialisation is spent on weights that are overwritten;
    an architecture with tensors outside its state dict (non-persistent buffers) is built again on the CPU, after
    the file's tensors (whose sizes the file bounds) have fitted.
    """
    try:
        with torch.device("meta"):
            net = entry.build_generator(config)
    except (TypeError, ValueError, RuntimeError, OverflowError) as e:  # a config no network can be built from
        raise _card_context(card, "config", ValueError(f"{entry.name} cannot be built from {config}: {e}")) from None
    try:
        net.load_state_dict(state, strict=True, assign=True)
        if any(t.is_meta for t in (*net.parameters(), *net.buffers())):
            net = entry.build_generator(config)
            net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{what} do not fit {entry.name} {config}: {e}") from None
    return net.eval()


def convert_state(card: ModelCard, checkpoint: Any, what: str | None = None) -> dict[str, torch.Tensor]:
    """The card's converter applied to a loaded checkpoint (the identity without one).

    The converter is only ever given a flat ``{name: tensor}`` dict (see ``ganbench.zoo.convert``).

    Raises:
        CardError: The card names no registered converter (nothing is imported or called).
        ValueError: The checkpoint, or the converter's output, is not a flat dict of tensors.
    """
    try:
        return convert_checkpoint(card.convert, checkpoint, what or f"the checkpoint of {card.name}")
    except UnknownNameError as e:
        raise _card_context(card, "convert", e) from None


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
        CardError: No such card, or it is invalid (an unknown architecture or converter, a config the architecture
            cannot be built from, a source outside its place).
        WeightsMismatch: The file a source provides has another sha256 or size than the card's.
        FileNotFoundError: No source is available.
        ganbench.weights.UnsafeCheckpointError: The file would run code when unpickled.
        ValueError: The file is no checkpoint, or its tensors do not fit the architecture.
    """
    card = load_card(card) if isinstance(card, str) else card
    _check_identity(card)
    target = converted_path(card)
    if target.is_file() and _converted_from(target).get("source_sha256") == card.sha256:
        return FetchedWeights(card, target, file_sha256(target), "cache")
    entry, config = _architecture(card)  # before any file is read: an invalid card stops here
    raw = resolve_source(card, download)
    what = f"checkpoint {str(raw.path)!r} of {card.name}"
    state = convert_state(card, load_checkpoint(raw.path), what)
    net = _build_strict(card, entry, config, state, f"the weights of {card.name} from {raw.source}")
    # one metadata key, as Generator.save writes it: the bytes (and so the hash) of a conversion are reproducible
    meta = {"ganbench": json.dumps({"format": GENERATOR_FORMAT, "model": entry.name,
                                    "config": dataclasses.asdict(config), "card": card.name,
                                    "source_sha256": card.sha256}, sort_keys=True)}
    with atomic_path(target) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp), metadata=meta)
    if raw.owned:
        raw.path.unlink(missing_ok=True)  # the download is not needed once its conversion is in the cache
    return FetchedWeights(card, target, file_sha256(target), raw.source)


def load_weights(card: str | ModelCard, download: bool = True) -> Generator:
    """The generator of a weight set (fetched first when needed), with the sampling contract of its task.

    ``weights_sha256`` is the card's (the source file's) hash, which names the upstream file a result came from.
    """
    fetched = fetch(card, download)
    entry, config = _architecture(fetched.card)
    net = _build_strict(fetched.card, entry, config, load_file(str(fetched.path)), f"{str(fetched.path)!r}")
    return entry.wrap(config, net, fetched.card.sha256, name=fetched.card.name)  # the class its task uses


# --------------------------------------------------------------------------------------------------------------
# Status, for `ganbench ls models`


def weights_status(card: ModelCard) -> WeightsStatus:
    """Where the weights of ``card`` are, without hashing or downloading anything.

    Raises:
        CardError: The card names a local file outside the zoo directory and ganbench's cache.
    """
    if converted_path(card).is_file():
        return WeightsStatus(card.name, "local", f"cached {str(converted_path(card))}")
    if download_path(card).is_file():
        return WeightsStatus(card.name, "local", f"downloaded {str(download_path(card))} (not yet converted)")
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

            hit = try_to_load_from_cache(src.repo, src.filename, cache_dir=hf_hub_cache(), revision=src.revision)
            if isinstance(hit, str):
                return WeightsStatus(card.name, "local", f"{src.describe()} (in the Hub cache)")
            remote.append(src)
        if isinstance(src, UrlSource) and src.is_local and src.local_path().is_file():
            return WeightsStatus(card.name, "local", src.describe())
        if isinstance(src, UrlSource) and not src.is_local:
            remote.append(src)
    if remote:
        return WeightsStatus(card.name, "fetchable", remote[0].describe())
    if installable:
        return WeightsStatus(card.name, "pip-installable", installable[0].install_hint())
    return WeightsStatus(card.name, "missing", "; ".join(s.describe() for s in card.sources))


def weight_sets_by_arch() -> dict[str, list[WeightsStatus]]:
    """Every card's status, grouped by architecture name; a card that does not parse, or whose sources may not be
    looked at, is listed as "invalid" with the reason."""
    from ganbench.zoo.cards import card_names

    out: dict[str, list[WeightsStatus]] = {}
    for name in card_names():
        try:
            card = load_card(name)
            status = weights_status(card)
        except (CardError, ValueError, OSError) as e:  # one bad card must not hide the others
            out.setdefault(name.split(".")[0], []).append(WeightsStatus(name, "invalid", str(e)))
            continue
        out.setdefault(card.arch, []).append(status)
    return out


__all__ = ["FetchedWeights", "SourceUnavailable", "WeightsStatus", "card_request", "convert_state", "converted_path",
           "download_dir", "download_path", "fetch", "load_weights", "resolve_source", "weight_sets_by_arch",
           "weights_status"]
