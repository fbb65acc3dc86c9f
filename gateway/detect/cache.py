"""Choose Numba's cache directory before Numba is imported.

Numba caches compiled kernels next to the source by default, which is
read-only once installed. Unless ``NUMBA_CACHE_DIR`` is set (systemd sets it
to the unit's cache directory), use ``$XDG_CACHE_HOME/gridgate/numba``.

Kernels go to a folder named after the detection sources: Numba checks only
the file a kernel is defined in, so a kernel compiled against another value of
a constant it imports (a window length, a state column) would be loaded and
write past its arrays.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gridgate" / "numba"


def sources_digest(folder: Path) -> str:
    """A short digest of every Python source under ``folder``."""
    digest = hashlib.sha256()
    for source in sorted(folder.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


_chosen = Path(os.environ.get("NUMBA_CACHE_DIR") or default_cache_dir())
_folder = f"kernels-{sources_digest(Path(__file__).resolve().parent)}"
if _chosen.name != _folder:  # a child process inherits the folder already chosen
    os.environ["NUMBA_CACHE_DIR"] = str(_chosen / _folder)


def kernel_cache_dir() -> Path:
    return Path(os.environ["NUMBA_CACHE_DIR"])


def has_compiled_kernels() -> bool:
    """Whether this cache already holds compiled kernels (Numba's ``*.nbi`` index files or modules)."""
    return any(kernel_cache_dir().rglob("*.nbi")) or (kernel_cache_dir() / "compiled").is_dir()
