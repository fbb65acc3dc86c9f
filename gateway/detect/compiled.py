"""Build the kernels' compiled modules (see :mod:`gateway.detect.jit`); run by ``gridgate warm``.

Each entry kernel is exported with the one signature the engine calls it with
(found by warming every kind up under the JIT), its arrays taken in any
layout, compiled for this CPU. The modules are built in a temporary directory
that is then renamed into the cache, so a daemon starting meanwhile finds all
of them or none.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

from gateway.detect import jit


class BuildError(Exception):
    """The modules could not be built (no C compiler or Python headers, typically)."""


def build(cache: Path | None = None) -> Path:
    """Compile the modules into the kernel cache unless they are there; return their directory."""
    target = jit.compiled_dir(cache)
    if target.is_dir():
        return target
    if jit.COMPILED is not None:  # this process runs them from another cache: copy them
        shutil.copytree(jit.COMPILED, target)
        return target
    from numba.core import types
    from numba.core.typing.templates import signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba.pycc is pending deprecation; it is Numba's AOT compiler
        from numba.pycc import CC  # type: ignore[attr-defined]

    import gateway.detect.kinds  # noqa: F401  every kind's kernels registered
    from gateway.detect.engine import DetectionEngine

    DetectionEngine((), (), ()).warm_up(every_kind=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".build-"))
    try:
        for dispatcher in jit.ENTRIES:
            name = jit.export_name(dispatcher.py_func)
            if len(dispatcher.signatures) != 1:
                raise BuildError(f"{name}: {len(dispatcher.signatures)} signatures after warm-up, not one")
            (arguments,) = dispatcher.signatures
            result = dispatcher.overloads[arguments].signature.return_type
            anywise = [
                types.Array(a.dtype, a.ndim, "A") if isinstance(a, types.Array) else a for a in arguments
            ]
            cc = CC(name)  # type: ignore[no-untyped-call]
            cc.output_dir = str(work)
            cc.target_cpu = "host"
            cc.verbose = False
            exported = signature(result, *anywise)  # type: ignore[no-untyped-call]
            cc.export(name, exported)(dispatcher.py_func)  # type: ignore[no-untyped-call]
            try:
                cc.compile()
            except Exception as exc:  # compiler and distutils errors come in many classes
                raise BuildError(f"{name}: {type(exc).__name__}: {exc}") from exc
        for leftover in work.iterdir():  # the object files pycc leaves beside the modules
            if leftover.is_dir() or not leftover.name.endswith(tuple(_suffixes())):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)  # as a directory made the usual way: the service user reads it
        os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _suffixes() -> list[str]:
    import importlib.machinery

    return importlib.machinery.EXTENSION_SUFFIXES
