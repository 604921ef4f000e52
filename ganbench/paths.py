"""Where ganbench finds its zoo files and keeps its caches (never inside the installed package)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def zoo_dir() -> Path:
    """Model cards and small checkpoints: ``$GANBENCH_ZOO``, else the checkout's ``zoo/``."""
    return Path(os.environ.get("GANBENCH_ZOO", REPO_ROOT / "zoo"))


def cache_dir() -> Path:
    """Feature and statistics caches: ``$GANBENCH_CACHE``, else ``~/.cache/ganbench``."""
    return Path(os.environ.get("GANBENCH_CACHE", Path.home() / ".cache" / "ganbench"))
