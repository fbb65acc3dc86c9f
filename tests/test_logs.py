"""Logs: priorities journald can filter on, levels from config, environment and flag, JSON, throttling."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config.models import LoggingSettings
from gateway.service import logs


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("gateway.uplink", "gateway.poll"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _site(tmp_path: Path, logging_table: str = "") -> Path:
    site = tmp_path / "site.toml"
    site.write_text(
        '[gateway]\nid = "gw-logs"\nsite = "x"\ngrid_cell = "C1"\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = 9\nreconnect_min_s = 0.1\nreconnect_max_s = 0.2\n'
        f'[storage]\ndirectory = "{tmp_path / "state"}"\n{logging_table}'
    )
    return site


def _run_until(site: Path, stderr: Path, wanted: str, env: dict[str, str]) -> str:
    """Run the gateway with stderr into a file until ``wanted`` appears in it; its log."""
    with stderr.open("w") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(site)],
            stderr=out,
            env={**os.environ, **env},
        )
        try:
            deadline = time.monotonic() + 30
            while wanted not in stderr.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            gateway.terminate()
            gateway.wait(timeout=20)
    return stderr.read_text()


def test_under_journald_lines_carry_a_priority_and_no_timestamp_of_their_own(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr"
    stderr.touch()
    info = os.stat(stderr)
    text = _run_until(
        _site(tmp_path),
        stderr,
        "retrying",
        {"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"},  # stderr is "the journal"
    )
    lines = text.splitlines()
    assert any(line.startswith("<6>gateway.service.daemon: detection:") for line in lines), text
    warning = next(line for line in lines if "broker 127.0.0.1:9 unavailable" in line)
    assert warning.startswith("<4>gateway.uplink.client: uplink:"), "journalctl -p warning shows it"
    assert all(line[:1] == "<" and line[2:3] == ">" for line in lines), "every line has a priority"
    assert not any(line[3:7].isdigit() for line in lines), "journald stamps the time itself"


def test_on_a_terminal_or_a_file_lines_keep_their_timestamp(tmp_path: Path) -> None:
    text = _run_until(_site(tmp_path), tmp_path / "stderr", "retrying", {"JOURNAL_STREAM": "1:1"})
    first = text.splitlines()[0]
    assert first[:4].isdigit() and " INFO gateway.service.daemon: " in first


def test_level_and_format_come_from_the_config_and_the_environment_beats_it(tmp_path: Path) -> None:
    site = _site(tmp_path, '[logging]\nlevel = "WARNING"\nformat = "json"\n')
    text = _run_until(site, tmp_path / "stderr", "unavailable", {})
    entries = [json.loads(line) for line in text.splitlines()]
    assert entries and all(e["level"] in ("WARNING", "ERROR") for e in entries), entries
    assert {"ts", "level", "logger", "message"} <= set(entries[0])

    text = _run_until(site, tmp_path / "stderr", "kernels ready", {"GRIDGATE_LOG_LEVEL": "info"})
    assert any(json.loads(line)["level"] == "INFO" for line in text.splitlines())


def test_a_wrong_level_in_the_environment_is_named(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--config", str(_site(tmp_path))],
        capture_output=True,
        text=True,
        env={**os.environ, "GRIDGATE_LOG_LEVEL": "LOUD"},
        timeout=30,
    )
    assert done.returncode == 2
    assert "GRIDGATE_LOG_LEVEL: 'LOUD' is not a log level; use DEBUG, INFO" in done.stderr


def test_per_module_levels() -> None:
    out = io.StringIO()
    logs.configure(
        LoggingSettings(level="WARNING", modules={"gateway.uplink": "DEBUG"}, format="text"), stream=out
    )
    logging.getLogger("gateway.uplink.client").debug("connected to %s", "broker")
    logging.getLogger("gateway.poll.poller").info("device online")
    assert "connected to broker" in out.getvalue() and "device online" not in out.getvalue()


def test_repeated_lines_are_throttled_with_a_count_of_what_was_suppressed() -> None:
    now = [0.0]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.Throttle(burst=5, window_s=60, clock=lambda: now[0]))
    log = logging.getLogger("test.throttle")
    log.addHandler(handler)
    log.propagate = False
    try:
        for attempt in range(26):  # one warning per reconnect attempt in an outage
            now[0] = attempt * 1.4
            log.warning("uplink: broker %s unavailable (attempt %d)", "cc:8883", attempt)
        log.warning("device %s: offline", "dust-01")  # another kind of line is not held back
        now[0] = 61.0
        log.warning("uplink: broker %s unavailable (attempt %d)", "cc:8883", 44)
    finally:
        log.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[:5] == [f"uplink: broker cc:8883 unavailable (attempt {i})" for i in range(5)]
    assert lines[5] == "device dust-01: offline"
    assert lines[6] == (
        "uplink: broker cc:8883 unavailable (attempt 44) (21 similar line(s) suppressed in the last 60 s)"
    )
    assert len(lines) == 7
