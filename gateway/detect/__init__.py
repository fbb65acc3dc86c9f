"""Detection: channel state as arrays, one Numba kernel call per batch.

Importing this package points Numba's cache at a writable directory before
Numba itself is imported (``NUMBA_CACHE_DIR``; see :mod:`gateway.detect.cache`).
"""

from gateway.detect import cache as _cache  # noqa: F401  (must run before numba is imported)
