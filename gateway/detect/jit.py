"""How the detection kernels are loaded: one compiled module from the cache, or Numba's JIT.

Numba's JIT keeps LLVM and its typing context in the daemon for as long as it
runs: about 110 MB of memory, more than all the rest of the gateway (a program
of numpy, Numba and one cached kernel has 139 MB resident). ``gridgate warm``
therefore also compiles every entry kernel ahead of time, with Numba's own
compiler, into extension modules in the kernel cache directory (one per kernel:
compiled together, some kernels' local types interfere)
(:mod:`gateway.detect.compiled`). A process that finds the modules built from
exactly these kernel sources, this Numba and this Python imports them and never
imports Numba; otherwise the kernels load through the JIT as before. The
kernels are the same code either way, and their twin tests run against
whichever this machine loads.

Kernel modules decorate entry points (called from Python) with :func:`kernel`
and the functions they call with :func:`njit`. ``GRIDGATE_KERNELS=jit`` forces
the JIT.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from gateway.detect.cache import kernel_cache_dir

F = TypeVar("F", bound=Callable[..., Any])

MODE_VARIABLE = "GRIDGATE_KERNELS"
_SOURCES = Path(__file__).resolve().parent


def sources_digest() -> str:
    """What a compiled module is valid for: the detection sources, Numba's and Python's versions."""
    digest = hashlib.sha256()
    for path in sorted(_SOURCES.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(importlib.metadata.version("numba").encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def compiled_dir(cache: Path | None = None) -> Path:
    """Where the compiled kernels for these sources live: one extension module per entry kernel."""
    return (cache or kernel_cache_dir()) / f"kernels-{sources_digest()}"


def export_name(function: Callable[..., Any]) -> str:
    return f"gk_{function.__module__.rsplit('.', 1)[-1]}_{function.__name__}"


def _compiled() -> Path | None:
    if os.environ.get(MODE_VARIABLE, "auto") == "jit":
        return None
    directory = compiled_dir()
    return directory if directory.is_dir() else None


def _import(directory: Path, name: str) -> ModuleType:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    spec = importlib.util.spec_from_file_location(name, directory / f"{name}{suffix}")
    if spec is None or spec.loader is None:
        raise ImportError(f"{directory}: no compiled kernel {name}; run `gridgate warm`")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMPILED: Path | None = _compiled()
ENTRIES: list[Any] = []  # the JIT dispatchers of every entry kernel, for the ahead-of-time build


class _Helper:
    """A function only kernels call, as the compiled module has it built in: its twins use ``py_func``."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.py_func = function

    def __call__(self, *args: Any) -> Any:
        return self.py_func(*args)


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A function the kernels call: Numba's ``njit`` with the kernels' options under the JIT.

    Either way it has ``py_func``, which the twins call.
    """

    def wrap(function: Callable[..., Any]) -> Any:
        if COMPILED is not None:
            return _Helper(function)
        import numba

        return numba.njit(cache=True, nogil=True, **options)(function)

    return wrap


def kernel(function: F) -> F:
    """An entry kernel, called from Python: the compiled module's, or jitted."""
    if COMPILED is not None:
        name = export_name(function)
        return getattr(_import(COMPILED, name), name)  # type: ignore[no-any-return]
    import numba

    dispatcher = numba.njit(cache=True, nogil=True)(function)
    ENTRIES.append(dispatcher)
    return dispatcher  # type: ignore[return-value]
