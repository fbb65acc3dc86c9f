"""`gridgate run` as a process: SIGTERM stops it cleanly, and the command center hears it."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from tests.conftest import gateway_toml
from tests.helpers import Subscriber

ROOT = Path(__file__).resolve().parent.parent


async def test_sigterm_flushes_publishes_offline_and_exits_0(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    tmp_path: Path,
    topic_prefix: str,
) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        gateway_toml(
            broker_port=broker.port,
            modbus_port=dust_monitor.port,  # type: ignore[attr-defined]
            storage=tmp_path / "state",
            prefix=topic_prefix,
        )
    )
    gateway = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "run",
        "--config",
        str(config),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        online = await subscriber.wait_for(lambda m: m.payload.get("state") == "online", timeout=60)
        await subscriber.wait_for(lambda m: "/telemetry/" in m.topic)
    finally:
        gateway.send_signal(signal.SIGTERM)
        _, log = await asyncio.wait_for(gateway.communicate(), 30)
    assert gateway.returncode == 0, log.decode()
    offline = await subscriber.wait_for(lambda m: m.payload.get("state") == "offline")
    assert offline.topic == online.topic == f"{topic_prefix}/gw-test-01/state"
    assert offline.payload["reason"] == "shutdown" and offline.payload["bd_seq"] == online.payload["bd_seq"]
    # The offline takes the seq reserved for the Last Will, which the broker then drops: no hole.
    seqs = {m.payload["seq"] for m in subscriber.received}
    assert seqs == set(range(1, max(seqs) + 1)), "every seq from the first on was published"
    assert b"Traceback" not in log
