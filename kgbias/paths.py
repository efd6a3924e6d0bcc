"""Where things live. Nothing else in kgbias hard-codes a path.

Environment variables override the defaults:

- ``KGBIAS_MIRROR``: a local directory holding the upstream data files under their upstream
  names (CI points it at ``../shared/data``); looked up first.
- ``KGBIAS_CACHE``: where downloaded data is kept (default ``~/.cache/kgbias``).
- ``KGBIAS_RESULTS``: where run folders go (default ``<repo>/results``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "figures"


def mirror_dir() -> Path | None:
    value = os.environ.get("KGBIAS_MIRROR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    value = os.environ.get("KGBIAS_CACHE")
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(base).expanduser() / "kgbias"


def results_dir() -> Path:
    value = os.environ.get("KGBIAS_RESULTS")
    return Path(value).expanduser() if value else ROOT / "results"


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


UMASK = _umask()


def temporary_beside(path: Path) -> tuple[int, str]:
    """``tempfile.mkstemp`` beside ``path`` (for an atomic rename onto it), with the permissions a
    plain ``open`` would give (mkstemp's are 0600: owner only)."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(name, 0o666 & ~UMASK)
    return handle, name
