"""Live readings for the report from the broker, while the gateway runs and holds the serial ports.

The last telemetry of each device and its retained ``devices/{id}/status``
(state and wire counters) are what the command center sees; they are taken
as the device's reading, checked against the channels' plausible ranges.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from drivers.modbus.registers import ModbusChannel
from firmware_tools.broker_target import BrokerTarget
from firmware_tools.probe import ChannelCheck, Sample, plausibility


async def broker_samples(
    target: BrokerTarget, gateway: str, devices: Mapping[str, Sequence[ModbusChannel]], listen_s: float
) -> dict[str, Sample]:
    """A sample per device from what the broker carries within ``listen_s``; failed ones say why."""
    telemetry: dict[str, dict[str, Any]] = {}
    status: dict[str, dict[str, Any]] = {}
    root = f"{target.prefix}/{gateway}"
    async with target.client() as client:
        await client.subscribe(f"{root}/telemetry/+", qos=1)
        await client.subscribe(f"{root}/devices/+/status", qos=1)

        async def collect() -> None:
            async for message in client.messages:
                levels = str(message.topic).split("/")
                try:
                    payload = json.loads(bytes(message.payload))
                except (ValueError, TypeError):
                    continue
                if levels[-2] == "telemetry":
                    telemetry[levels[-1]] = payload
                elif levels[-1] == "status":
                    status[levels[-2]] = payload
                if devices.keys() <= telemetry.keys():
                    return

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(collect(), listen_s)
    return {
        d: _sample(channels, telemetry.get(d), status.get(d), listen_s) for d, channels in devices.items()
    }


def _sample(
    channels: Sequence[ModbusChannel],
    reading: dict[str, Any] | None,
    state: dict[str, Any] | None,
    listen_s: float,
) -> Sample:
    counters = dict((state or {}).get("counters") or {})
    if reading is None:
        why = f"no telemetry within {listen_s:g} s"
        if state is not None and state.get("state") != "online":
            why += f"; the gateway has it {state.get('state')} ({state.get('reason', '')})"
        return Sample(0.0, (), counters, why)
    values = reading.get("readings") or {}
    quality = reading.get("quality") or {}
    checks = []
    for ch in channels:
        value = values.get(ch.id)
        if not isinstance(value, (int, float)):
            checks.append(ChannelCheck(ch.id, None, ch.unit, "missing"))
            continue
        notes = (f"quality {quality[ch.id]}",) if ch.id in quality else ()
        checks.append(ChannelCheck(ch.id, float(value), ch.unit, plausibility(ch, float(value)), notes))
    ts = datetime.fromisoformat(str(reading.get("ts")).replace("Z", "+00:00")).timestamp()
    return Sample(ts, tuple(checks), counters)
