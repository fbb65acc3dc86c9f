"""GridGate: an edge gateway for city grid-management command centers."""

# Before anything can import Numba: point its cache at a writable directory.
from gateway.detect import cache as _numba_cache  # noqa: F401

__version__ = "0.1.0"
