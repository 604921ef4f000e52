"""Model cards: one TOML file per named weight set ``arch.tag`` under ``zoo/cards/``.

A card says which architecture and configuration the weights belong to, where the file can be had (local file,
Hugging Face Hub, URL, or a file inside a PyPI package), the sha256 and size every copy must have, the licence,
the paper and the training data, how the file's tensor names map onto ganbench's module (``convert``), and the
evaluation protocol with the scores it must reproduce. The layout follows timm's pretrained configs
(``timm/models/_pretrained.py``: one record per ``arch.tag`` naming hub id, file, url, licence, paper), with
the sha256 that timm leaves out.

A card file looks like this (every key is checked; an unknown key is an error, so a typo cannot hide)::

    name = "dcgan.faces64"                  # arch.tag; must equal the file name without .toml
    arch = "dcgan"                          # zoo registry name of the architecture
    description = "..."
    license = "MIT"
    paper = "Radford et al. 2015, arXiv:1511.06434"
    training_data = "DigiFace1M (Bae et al. 2023), 64x64"
    sha256 = "0c3b...771f"                  # of the source file, before conversion
    size = 14322251                         # bytes of the source file
    convert = "ganbench.zoo.dcgan:from_tutorial_checkpoint"   # optional: checkpoint -> ganbench state dict
    classes = ["amber", "blue"]             # optional: label names of a class-conditional generator

    [config]                                # the architecture's config dataclass fields
    resolution = 64

    [sources]                               # tried in the fixed order file, hub, url, pypi
    file = "weights/dcgan.faces64.safetensors"       # relative to the zoo directory, or absolute
    hub = { repo = "org/name", filename = "G.pth", revision = "<commit>" }
    url = "https://example.org/G.pth"
    pypi = { package = "gan-face-generate", version = "1.1.1", path = "gan_face_generate/weights.tar" }

    [protocol]                              # how ``ganbench verify`` scores the weights
    dataset = "digits8"
    extractor = "mnist_cnn"
    n_samples = 200

    [expected]                              # score -> value and absolute tolerance
    ms_ssim = { value = 0.1234, tol = 0.002 }
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganbench.paths import zoo_dir

SOURCE_ORDER = ("file", "hub", "url", "pypi")  # resolution order, fixed like timm's _resolve_pretrained_source
CARD_NAME = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
CONVERTER = re.compile(r"^ganbench(\.[A-Za-z_][A-Za-z0-9_]*)+:[A-Za-z_][A-Za-z0-9_]*$")
HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class CardError(ValueError):
    """A model card that is missing, unreadable, or has a key with a wrong value."""


@dataclass(frozen=True)
class FileSource:
    path: str  # relative to the zoo directory, absolute, or starting with ~

    def resolved(self) -> Path:
        p = Path(self.path).expanduser()
        return p if p.is_absolute() else zoo_dir() / p

    def describe(self) -> str:
        return f"file {str(self.resolved())!r}"


@dataclass(frozen=True)
class HubSource:
    repo: str  # Hugging Face Hub model repository "org/name"
    filename: str  # path of the file inside the repository
    revision: str = "main"  # branch, tag or (best: it cannot move) commit hash

    def describe(self) -> str:
        return f"hub {self.repo}/{self.filename}@{self.revision}"


@dataclass(frozen=True)
class UrlSource:
    url: str  # http(s):// or file:// URL of the file itself

    def describe(self) -> str:
        return f"url {self.url}"


@dataclass(frozen=True)
class PypiSource:
    package: str  # distribution name as pip knows it
    path: str  # the file's path inside the installed distribution, as its RECORD lists it
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
    convert: str | None = None  # "ganbench.module:function" mapping the loaded checkpoint to a state dict
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
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CardError(f"model card {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"model card {str(path)!r} is not valid TOML: {e}") from None
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
    if convert is not None and not CONVERTER.match(convert):
        raise check.fail("convert", f"{convert!r} is not 'ganbench.module:function' (converters live in ganbench, "
                                    "so a card cannot make ganbench import code from elsewhere)")
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
            out.append(FileSource(check.typed(table, "file", str, "sources.")))
        elif kind == "url":
            url = check.typed(table, "url", str, "sources.")
            if not url.startswith(("https://", "http://", "file://")):
                raise check.fail(key, f"{url!r} must start with https://, http:// or file://")
            out.append(UrlSource(url))
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
            if kind == "hub":
                if not HUB_REPO.match(sub["repo"]):
                    raise check.fail(key + ".repo", f"{sub['repo']!r} is not a Hub repository id 'org/name'")
                out.append(HubSource(sub["repo"], sub["filename"], sub.get("revision", "main")))
            else:
                out.append(PypiSource(sub["package"], sub["path"], sub.get("version")))
    return tuple(out)


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
    if not path.is_file():
        valid = card_names()
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise CardError(f"no model card {name!r} in {str(cards_dir())!r}.{hint} "
                        f"Valid weight sets: {', '.join(valid) or '(none)'}")
    return parse_card(path)


def all_cards() -> list[ModelCard]:
    """Every card, parsed (the first invalid one raises)."""
    return [load_card(name) for name in card_names()]


__all__ = ["CardError", "Expected", "FileSource", "HubSource", "ModelCard", "Protocol", "PypiSource", "SOURCE_ORDER",
           "Source", "UrlSource", "all_cards", "card_names", "cards_dir", "load_card", "parse_card"]
