"""``gridgate alarm-test``: trigger a real condition on site and see the alarm reach the broker.

The technician presses the smoke panel's test button or tilts the cover; the
tool, subscribed at the command center's broker as the command center is,
waits for the gateway's ``raised`` event from that device, which proves the
event left the box and got through. Optionally it acknowledges the test alarm
(so nobody is dispatched by its escalation) and waits for the clear once the
condition is restored. Each test is appended to a results file that the
commissioning report lists.

Exit status: 0 passed, 1 failed (nothing came in time), 2 wrong options,
3 broker unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt

from firmware_tools.broker_target import BrokerTarget
from firmware_tools.command_client import Signer, ask
from gateway.timestamps import iso_utc


@dataclass
class AlarmTestResult:
    """One alarm test, as recorded for the report."""

    gateway: str
    device: str
    category: str | None
    started_at: str
    result: str  # "pass" or "fail"
    detail: str
    event_id: str | None = None
    raised_at: str | None = None
    received_at: str | None = None
    latency_s: float | None = None
    acknowledged_by: str | None = None
    cleared_at: str | None = None
    technician: str | None = None


async def alarm_test(
    target: BrokerTarget,
    *,
    gateway: str,
    device: str,
    category: str | None = None,
    timeout_s: float = 120.0,
    clear_timeout_s: float = 0.0,
    ack_as: str | None = None,
    signer: Signer | None = None,
    say: Callable[[str], None] = print,
) -> AlarmTestResult:
    """Wait for a fresh ``raised`` event from ``device``; then ack it and wait for its clear if asked."""
    started = time.time()
    result = AlarmTestResult(gateway, device, category, iso_utc(started), "fail", "")
    topic = f"{target.prefix}/{gateway}/events"
    async with target.client() as client:
        await client.subscribe(f"{target.prefix}/{gateway}/state", qos=1)
        await client.subscribe(topic, qos=1)
        what = f"{device}" + (f" ({category})" if category else "")
        say(f"trigger the alarm on {what} now; waiting up to {timeout_s:g} s for it at {target.where()}")
        raised = await _first(client, timeout_s, lambda p: _fresh_raise(p, device, category, started), say)
        if raised is None:
            result.detail = f"no alarm from {what} reached the broker within {timeout_s:g} s"
            say(f"FAIL: {result.detail}")
            return result
        received = time.time()
        result.result, result.event_id = "pass", str(raised["event_id"])
        result.category = str(raised.get("category"))
        result.raised_at, result.received_at = str(raised.get("raised_at")), iso_utc(received)
        result.latency_s = round(received - _unix(result.raised_at), 3)
        result.detail = _reading(raised)
        say(
            f"PASS: {raised.get('class')} {result.category} {result.detail} reached the broker "
            f"{result.latency_s:.2f} s after it was raised (id {result.event_id})"
        )
        if ack_as:
            answer = await ask(
                target,
                {"command": "ack", "event_id": result.event_id, "operator": ack_as},
                gateway=gateway,
                signer=signer,
            )
            if answer.get("ok"):
                result.acknowledged_by = str(answer["result"].get("acknowledged_by", ack_as))
                say(f"acknowledged as {result.acknowledged_by}")
        if clear_timeout_s > 0:
            say(f"now restore normal on {device}; waiting up to {clear_timeout_s:g} s for the clear")
            cleared = await _first(
                client,
                clear_timeout_s,
                lambda p: p.get("event_id") == result.event_id and p.get("state") == "cleared",
                say,
            )
            if cleared is None:
                result.result = "fail"
                result.detail += f"; not cleared within {clear_timeout_s:g} s"
                say(f"FAIL: the alarm did not clear within {clear_timeout_s:g} s")
            else:
                result.cleared_at = str(cleared.get("cleared_at"))
                say(f"cleared at {result.cleared_at}: {cleared.get('reason', '')}")
    return result


def record(result: AlarmTestResult, path: Path) -> None:
    """Append ``result`` to the JSON list in ``path`` (created when missing)."""
    tests: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    tests.append(asdict(result))
    path.write_text(json.dumps(tests, ensure_ascii=False, indent=2) + "\n")


def load_results(path: Path) -> list[AlarmTestResult]:
    return [AlarmTestResult(**entry) for entry in json.loads(path.read_text())]


async def _first(
    client: aiomqtt.Client,
    timeout_s: float,
    match: Callable[[dict[str, Any]], bool],
    say: Callable[[str], None],
) -> dict[str, Any] | None:
    async def wait() -> dict[str, Any]:
        async for message in client.messages:
            try:
                payload = json.loads(bytes(message.payload))
            except (ValueError, TypeError):
                continue
            if not isinstance(payload, dict):
                continue
            if str(message.topic).endswith("/state") and payload.get("state") != "online":
                say(f"note: the gateway is {payload.get('state')} ({payload.get('reason', '')})")
            elif match(payload):
                return payload
        raise aiomqtt.MqttError("the connection closed")

    with contextlib.suppress(asyncio.TimeoutError):
        return await asyncio.wait_for(wait(), timeout_s)
    return None


def _fresh_raise(payload: dict[str, Any], device: str, category: str | None, started: float) -> bool:
    """A raise from ``device`` that is live (not replayed) and newer than the test."""
    if payload.get("state") != "raised" or payload.get("device") != device or payload.get("historical"):
        return False
    if category is not None and payload.get("category") != category:
        return False
    return _unix(str(payload.get("raised_at"))) >= started - 1.0


def _reading(event: dict[str, Any]) -> str:
    where = f"{event.get('device')}/{event.get('channel') or event.get('condition')}"
    if event.get("value") is None:
        return where
    unit = f" {event['unit']}" if event.get("unit") else ""
    return f"{where} = {event['value']}{unit} (limit {event.get('limit')})"


def _unix(stamp: str | None) -> float:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
