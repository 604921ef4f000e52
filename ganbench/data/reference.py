"""References: what samples are compared with, named by one string (REF).

- a registered dataset, with an optional split: ``cifar10``, ``cifar10:test``, ``hf:OWNER/NAME[:split]``;
- a folder of images (recursive; PNG, JPEG, WebP, BMP) or a ``.zip`` of them, as clean-fid and torch-fidelity
  accept;
- a statistics file: an ``.npz`` with float64 ``mu`` (D,) and ``sigma`` (D, D), as pytorch-fid
  (``save_fid_stats``) and clean-fid (``make_custom_stats``) write them, or ganbench's own (``ganbench stats``),
  which adds its metadata as one JSON string under the key ``ganbench`` (extractor and weights sha256, resize mode,
  sample count, data hash, protocol). pytorch-fid's ``calculate_frechet_distance`` and clean-fid read ganbench's
  files unchanged: they read ``mu`` and ``sigma`` and ignore the rest. Against a statistics file only the metrics
  that need nothing but the reference's Gaussian (FID, FID-infinity) can run.

Statistics files are read with ``allow_pickle=False``: an ``.npz`` is data, never code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganbench.registry import DATASETS

STATS_FORMAT = "ganbench.stats/1"


@dataclass(frozen=True)
class ReferenceSpec:
    """A parsed REF."""

    kind: str  # "dataset", "folder" or "stats"
    text: str  # the REF as given
    dataset: str | None = None  # dataset kind: registry name or "hf:OWNER/NAME"
    split: str | None = None  # dataset kind: the split named after ":" (None: the protocol's)
    path: Path | None = None  # folder and stats kinds


@dataclass(frozen=True)
class StatsReference:
    """A reference given as its Gaussian statistics only."""

    mu: np.ndarray  # float64 (D,)
    sigma: np.ndarray  # float64 (D, D)
    meta: dict[str, Any]  # ganbench's metadata, empty for a pytorch-fid or clean-fid file
    path: Path
    sha256: str  # of the file's bytes

    @property
    def n(self) -> int:
        """Samples the statistics were computed from (0 when the file does not say)."""
        return int(self.meta.get("n", 0) or 0)

    # what results and tables record of a reference, as a Split offers it
    @property
    def dataset(self) -> str:
        return f"stats:{self.path.name}"

    @property
    def split(self) -> str:
        return str(self.meta.get("split", "statistics"))

    @property
    def resize(self) -> str:
        return str(self.meta.get("resize", "unknown"))

    @property
    def source(self) -> str:
        return str(self.path.resolve())

    @property
    def kind(self) -> str:
        return "stats"

    def __len__(self) -> int:
        return self.n


def parse_reference(ref: str) -> ReferenceSpec:
    """What a REF names.

    Raises:
        ValueError: For a REF that is none of a registered dataset (with a "did you mean"), a folder or .zip of
            images, or an .npz statistics file.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError(f"a reference must be a dataset name, a folder of images or a statistics .npz, got {ref!r}")
    path = Path(ref).expanduser()
    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".zip"):
        return ReferenceSpec("folder", ref, path=path)
    if path.is_file() and path.suffix.lower() == ".npz":
        return ReferenceSpec("stats", ref, path=path)
    if path.exists():
        raise ValueError(f"reference {ref!r} is a file ganbench does not read as a reference: give a folder or a .zip "
                         f"of images, or an .npz with mu and sigma")
    if ref.startswith("hf:"):
        spec = ref[3:]
        name, _, split = spec.partition(":")
        return ReferenceSpec("dataset", ref, dataset=f"hf:{name}", split=split or None)
    name, _, split = ref.partition(":")
    if name in DATASETS:
        return ReferenceSpec("dataset", ref, dataset=name, split=split or None)
    looks_like_path = "/" in ref or ref.startswith(".") or ref.endswith((".npz", ".zip"))
    if looks_like_path:
        raise ValueError(f"reference {ref!r} does not exist (expected a folder of images, a .zip of them, or an .npz "
                         f"with mu and sigma)")
    raise ValueError(f"reference {ref!r} is neither a folder, a .zip, an .npz nor a registered dataset: "
                     + DATASETS._unknown_message(name))


def load_dataset_split(dataset: str, split: str, resolution: int | None = None, **kwargs: Any) -> Any:
    """A split of a registered dataset or a Hub spec (``hf:OWNER/NAME``)."""
    if dataset.startswith("hf:"):
        from ganbench.data.standard import load_hub_dataset

        return load_hub_dataset(dataset, split, resolution, **kwargs)
    return DATASETS.get(dataset)(split=split, resolution=resolution, **kwargs)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_stats(path: str | Path) -> StatsReference:
    """A statistics file, checked: ``mu`` (D,), ``sigma`` (D, D) symmetric, both finite; metadata when ganbench's.

    Raises:
        ValueError: Naming the file and what is wrong (not an npz, a key missing, shapes, non-finite values).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            if not {"mu", "sigma"} <= keys:
                raise ValueError(f"statistics file {str(path)!r} has keys {sorted(keys)}; it needs 'mu' and 'sigma' "
                                 f"(as pytorch-fid and clean-fid write them)")
            mu, sigma = np.asarray(f["mu"], dtype=np.float64), np.asarray(f["sigma"], dtype=np.float64)
            meta = json.loads(str(f["ganbench"])) if "ganbench" in keys else {}
    except (OSError, ValueError, EOFError) as e:
        if isinstance(e, ValueError) and str(e).startswith("statistics file"):
            raise
        raise ValueError(f"statistics file {str(path)!r} is not a readable .npz: {e}") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)) or len(mu) == 0:
        raise ValueError(f"statistics file {str(path)!r}: mu has shape {mu.shape} and sigma {sigma.shape}; expected "
                         f"(D,) and (D, D)")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"statistics file {str(path)!r} holds non-finite values")
    if not np.allclose(sigma, sigma.T, rtol=1e-6, atol=1e-8 * max(1.0, float(np.abs(sigma).max()))):
        raise ValueError(f"statistics file {str(path)!r}: sigma is not symmetric, so it is not a covariance")
    if not isinstance(meta, dict):
        raise ValueError(f"statistics file {str(path)!r}: its 'ganbench' metadata is not a JSON object")
    return StatsReference(mu, sigma, meta, path, file_hash(path))


def write_stats(path: str | Path, mu: np.ndarray, sigma: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write float64 ``mu`` and ``sigma`` (readable by pytorch-fid and clean-fid) and ganbench's metadata,
    atomically."""
    from ganbench.results.store import atomic_path

    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"a statistics file is an .npz, got {str(path)!r}")
    doc = json.dumps({"format": STATS_FORMAT, **meta}, sort_keys=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to the temporary's name
            np.savez(f, mu=np.asarray(mu, dtype=np.float64), sigma=np.asarray(sigma, dtype=np.float64),
                     ganbench=np.array(doc))
    return path


__all__ = ["ReferenceSpec", "STATS_FORMAT", "StatsReference", "load_dataset_split", "load_stats", "parse_reference",
           "write_stats"]
