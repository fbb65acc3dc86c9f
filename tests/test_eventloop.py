"""The daemon's event loop: uvloop when installed, asyncio's own on request or where it is not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.service import eventloop


def test_the_choice_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.chosen() == "asyncio"
    monkeypatch.delenv(eventloop.ENV)
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert eventloop.chosen() == "asyncio", "without uvloop the daemon still runs"
    else:
        assert eventloop.chosen() == "uvloop"
    monkeypatch.setenv(eventloop.ENV, "tokio")
    with pytest.raises(ValueError, match="'tokio' is not one of auto, uvloop, asyncio"):
        eventloop.chosen()


def test_both_loops_run_a_coroutine_to_the_end() -> None:
    ran: list[str] = []

    async def main() -> None:
        import asyncio

        await asyncio.sleep(0)
        ran.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    pytest.importorskip("uvloop")
    for kind in ("asyncio", "uvloop"):
        eventloop.run(main(), kind)
    assert ran == ["asyncio", "uvloop"]


def test_a_wrong_loop_in_the_environment_is_named(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        '[gateway]\nid = "gw-1"\nsite = "bench"\ngrid_cell = "1"\n\n[uplink]\nhost = "127.0.0.1"\n\n'
        f'[storage]\ndirectory = "{tmp_path / "state"}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(site)],
        capture_output=True,
        text=True,
        env={**os.environ, eventloop.ENV: "tokio"},
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "GRIDGATE_EVENT_LOOP: 'tokio' is not one of auto, uvloop, asyncio" in done.stderr
