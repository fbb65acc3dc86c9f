"""Chaos with a real small filesystem and a real process: the disk fills while the broker is down.

The outbox lives on a tmpfs of a few MB, nearly filled by the test, with eight
devices polled at 20 Hz and alarms the test schedules. The gateway must live
through ENOSPC everywhere (outbox, detection state, the copy of open events),
and when the test frees the space and brings the broker back, every alarm that
was due must arrive, with the storage_full notice and the gap reports. Needs
root for the mount (tests run as root in CI); skipped elsewhere, where
tests/test_full_disk.py covers the same with SQLite's max_page_count.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from drivers.simulators.modbus_device import SimulatedModbusDevice
from tests.chaos_tools import (
    AlarmSchedule,
    assert_redeliveries_identical,
    dropped_in_gaps,
    explain_losses,
    losses,
    tally,
)
from tests.test_chaos import ALARMING, _config, daemon
from tests.uplink_peers import DurableSubscriber, persistent_broker

DISK_MB = 6
LEFT_FREE = 600 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill_leaving(disk: Path, free: int) -> Path:
    filler = disk / "filler"
    size = shutil.disk_usage(disk).free - free
    with filler.open("wb") as out:
        out.truncate(0)
        out.write(b"\0" * max(size, 0))  # written, not sparse: tmpfs counts what is written
    return filler


async def _log_says(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the gateway never logged {text!r}"
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _stage(
    what: str, log: Path, cc: DurableSubscriber, schedules: list[AlarmSchedule]
) -> AsyncIterator[None]:
    """A step of the run: when it fails or times out, say which, with what arrived and the log's end."""
    try:
        yield
    except (AssertionError, asyncio.TimeoutError) as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        so_far = tally(cc.received, schedules)
        raise AssertionError(
            f"{what}: {exc!r}; so far {so_far.line()}, exceedances without a raise {so_far.unmatched[:10]},"
            f" {dropped_in_gaps(cc.received)} reported dropped, {len(cc.received)} message(s) in all;"
            f" the gateway's log ends:\n{tail}"
        ) from exc


# Each step below has its own limit, so a stuck one fails with its name and the log, well before this.
@pytest.mark.timeout(420)
async def test_the_disk_fills_in_an_outage_and_nothing_due_is_lost(
    small_disk: Path, tmp_path: Path, dust_monitor: SimulatedModbusDevice, topic_prefix: str
) -> None:
    root = f"{topic_prefix}/gw-test-01"
    with persistent_broker(tmp_path / "broker-db") as broker:
        state = small_disk / "state"
        config = tmp_path / "site.toml"
        extra = "[detection]\nstate_save_s = 1\n"
        config.write_text(_config(broker, dust_monitor.port, state, topic_prefix, extra=extra))
        log = tmp_path / "gateway.log"
        names = tuple(f"dust-{n:02d}" for n in range(1, ALARMING + 1))
        schedule = AlarmSchedule(dust_monitor, names=names, high_s=1.0, low_s=1.0)
        async with DurableSubscriber(broker.port, f"{root}/#") as cc:
            with daemon(config, log) as gateway:
                async with _stage("the gateway's birth", log, cc, []):
                    await cc.wait_until(lambda: cc.seqs("/state"), timeout=60)
                filler = _fill_leaving(small_disk, LEFT_FREE)
                broker.stop()
                async with schedule.running(), _stage("the disk filling", log, cc, [schedule]):
                    await _log_says(log, "refuses writes", timeout=90)
                    await _log_says(log, "detection state not saved", timeout=30)
                    full_at = len(schedule.phases)
                    while len(schedule.phases) < full_at + 3:  # alarms while the disk is full
                        await asyncio.sleep(0.2)
                    await asyncio.sleep(36)  # past the point where the gateway used to die
                    assert gateway.poll() is None, "the gateway is still running"
                assert not (state / "detection-state.tmp").exists(), "nothing half-written is left"
                filler.unlink()
                space_back = time.monotonic()
                broker.start()
                async with _stage("every due alarm raised and cleared", log, cc, [schedule]):
                    await cc.wait_until(
                        lambda: tally(cc.received, [schedule]).cleared == schedule_due(schedule), timeout=60
                    )
                async with _stage("the storage_full and gap notices", log, cc, [schedule]):
                    await cc.wait_until(
                        lambda: _notices(cc, "storage_full") and _notices(cc, "gap"), timeout=30
                    )
                events_in = time.monotonic() - space_back
                async with _stage("every seq hole reported as dropped", log, cc, [schedule]):
                    await cc.wait_until(
                        lambda: len(losses(cc.received)) == dropped_in_gaps(cc.received),
                        why=explain_losses,
                        timeout=60,
                    )
                delivered = time.monotonic() - space_back
            async with _stage("the gateway's goodbye", log, cc, [schedule]):
                await cc.wait_until(
                    lambda: len(tally(cc.received, []).holes) == dropped_in_gaps(cc.received),
                    why=explain_losses,
                    timeout=30,
                )
    result = tally(cc.received, [schedule])
    print(
        f"\nsmall filesystem full in an outage: {result.line()}, {dropped_in_gaps(cc.received)} reported"
        f" dropped; events in {events_in:.1f} s, all backlog {delivered:.1f} s after space and broker"
    )
    assert result.raised == result.due == result.cleared, result.unmatched
    assert_redeliveries_identical(cc.received)
    gaps = _notices(cc, "gap")
    assert {g["kind"] for g in gaps} <= {"telemetry", "state"}, "no event is ever dropped"
    assert "Traceback" not in log.read_text(errors="replace")


def schedule_due(schedule: AlarmSchedule) -> int:
    return len(schedule.phases) * len(schedule.names)


def _notices(cc: DurableSubscriber, kind: str) -> list[dict[str, object]]:
    return [p for t, p in cc.received if t.endswith("/notices") and p["notice"] == kind]
