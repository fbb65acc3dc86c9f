"""Compiled kernels go to a writable cache directory, never next to the installed source."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from gateway.detect.cache import sources_digest

ROOT = Path(__file__).resolve().parent.parent

WARM_UP = (
    "import os, numba; from gateway.detect.engine import DetectionEngine;"
    " DetectionEngine([]).warm_up(every_kind=True); print(os.environ['NUMBA_CACHE_DIR'])"
)


def _run(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    result = subprocess.run(
        [sys.executable, "-c", "import gateway; " + WARM_UP],
        env={**clean, **env},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_default_cache_is_under_the_users_cache_directory(tmp_path: Path) -> None:
    cache_dir = _run({"XDG_CACHE_HOME": str(tmp_path)})
    assert Path(cache_dir).parent == tmp_path / "gridgate" / "numba"
    assert list(Path(cache_dir).rglob("*.nbi")), "no kernel index written to the cache"
    assert not list((ROOT / "gateway").rglob("*.nbi")), "kernel cache written next to the source"


def test_numba_cache_dir_from_the_environment_wins(tmp_path: Path) -> None:
    chosen = tmp_path / "unit-cache"
    assert Path(_run({"NUMBA_CACHE_DIR": str(chosen)})).parent == chosen
    assert list(chosen.rglob("*.nbi"))


def test_kernels_compiled_against_other_detection_sources_are_not_loaded(tmp_path: Path) -> None:
    """Numba checks only a kernel's own file; a constant it imports from another may have changed."""
    chosen = tmp_path / "unit-cache"
    folder = Path(_run({"NUMBA_CACHE_DIR": str(chosen)}))
    assert folder.name == f"kernels-{sources_digest(ROOT / 'gateway' / 'detect')}"
    release = tmp_path / "detect"
    shutil.copytree(ROOT / "gateway" / "detect", release)
    spike = release / "spike.py"
    spike.write_text(spike.read_text().replace("HAMPEL_W = ", "HAMPEL_W = 2 * "))
    assert sources_digest(release) != sources_digest(ROOT / "gateway" / "detect")
    assert _run({"NUMBA_CACHE_DIR": str(folder)}) == str(folder)  # a child handed the folder keeps it
