"""Choose Numba's cache directory before Numba is imported.

Numba caches compiled kernels next to the source by default, which is
read-only once installed. Unless ``NUMBA_CACHE_DIR`` is set (systemd sets it
to the unit's cache directory), use ``$XDG_CACHE_HOME/gridgate/numba``.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gridgate" / "numba"


if not os.environ.get("NUMBA_CACHE_DIR"):
    os.environ["NUMBA_CACHE_DIR"] = str(default_cache_dir())


def kernel_cache_dir() -> Path:
    return Path(os.environ["NUMBA_CACHE_DIR"])


def has_compiled_kernels() -> bool:
    """Whether this cache already holds compiled kernels (Numba's ``*.nbi`` index files or modules)."""
    return any(kernel_cache_dir().rglob("*.nbi")) or any(kernel_cache_dir().glob("kernels-*"))
