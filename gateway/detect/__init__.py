"""Detection: channel state as arrays, one Numba kernel call per batch.

``gateway/__init__`` imports :mod:`gateway.detect.cache` first, so Numba's
cache goes to a writable directory (``NUMBA_CACHE_DIR``) whatever imports
Numba later.
"""
