"""Under systemd: READY, WATCHDOG pings that stop when the loop or the work is stuck; SIGTERM in a compile."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from gateway.service.watchdog import poller_check, uplink_check
from tests.helpers import running_gateway


class NotifySocket:
    """A stand-in for systemd's notify socket: every datagram, with when it arrived."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self.received: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, name="notify-socket")
        self._thread.start()

    def _collect(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            self.received.append((time.monotonic(), data.decode()))

    def times(self, state: str) -> list[float]:
        return [at for at, text in self.received if state in text.split("\n")]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify")
    try:
        yield sock
    finally:
        sock.close()


async def _until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_ready_then_regular_watchdog_pings_which_stop_while_the_loop_is_wedged(
    notify_socket: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    make_config,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # pings every 0.2 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        await _until(lambda: len(notify_socket.times("WATCHDOG=1")) >= 5)
        [ready] = notify_socket.times("READY=1")
        pings = notify_socket.times("WATCHDOG=1")
        assert ready <= pings[0], "pings start once the gateway is ready"
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps) < 0.4, f"a ping at least every watchdog interval: {gaps}"

        before = len(notify_socket.times("WATCHDOG=1"))
        wedged_at = time.monotonic()
        time.sleep(1.5)  # the event loop is stuck: nothing may tell systemd all is well
        unwedged_at = time.monotonic()
        await _until(lambda: len(notify_socket.times("WATCHDOG=1")) >= before + 3)
        during = [t for t in notify_socket.times("WATCHDOG=1") if wedged_at < t < unwedged_at]
        assert during == [], "no ping while the loop was wedged"
    assert notify_socket.times("STOPPING=1")


def test_a_poller_or_uplink_that_makes_no_progress_stops_the_pings() -> None:
    now = 1000.0
    poller = SimpleNamespace(device="dust-01", interval=1.0, retry_max_s=60.0, attempted_at=now - 100)
    assert poller_check(poller)(now) is None, "within twice the longest wait plus slack"
    poller.attempted_at = now - 200
    assert poller_check(poller)(now) == "device dust-01: no poll for 200 s"

    uplink = SimpleNamespace(progress_at=now - 500, idle=True)
    assert uplink_check(uplink, limit_s=120)(now) is None, "nothing to send is not being stuck"
    uplink.idle = False
    stuck = uplink_check(uplink, limit_s=120)(now)
    assert stuck == "uplink: no connect attempt or acknowledged publish for 500 s"


def test_sigterm_while_the_kernels_compile_stops_the_gateway_within_2_s(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        '[gateway]\nid = "gw-cold"\nsite = "x"\ngrid_cell = "C1"\n'
        f'[uplink]\nhost = "127.0.0.1"\nport = 9\n[storage]\ndirectory = "{tmp_path / "state"}"\n'
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty-cache"), "PYTHONUNBUFFERED": "1"}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(site)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert gateway.stderr is not None
    first = gateway.stderr.readline()
    assert "compiling detection kernels" in first and "first start only" in first
    time.sleep(0.3)
    sent = time.monotonic()
    gateway.send_signal(signal.SIGTERM)
    try:
        rc = gateway.wait(timeout=10)
    finally:
        gateway.kill()
        gateway.wait()
    took = time.monotonic() - sent
    rest = gateway.stderr.read()
    gateway.stderr.close()
    assert rc == 0 and took < 2.0, f"rc {rc} after {took:.2f} s: {rest}"
    assert "stopped while the kernels compiled" in rest
