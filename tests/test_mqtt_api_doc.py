"""docs/mqtt-api.md shows exactly the fields the gateway publishes, no more, no fewer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from gateway.outbox import NOTICES_TOPIC, Outbox, Priority
from gateway.outbox.notices import storage_full
from tests.helpers import Received, Subscriber, running_gateway

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt-api.md"


def documented_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def _kind(topic: str, payload: dict[str, Any]) -> str:
    if topic.endswith("/notices") or "notice" in payload:
        return f"notice/{payload['notice']}"
    if topic.endswith("/state") or payload.get("state") in ("online", "offline"):
        return f"state/{payload['state']}"
    if topic.endswith("/events") or "event_id" in payload:
        return f"event/{payload['state']}"
    return "telemetry"


def _shape(payload: dict[str, Any]) -> dict[str, type]:
    return {k: type(v) for k, v in payload.items() if v is not None}


def test_every_example_is_json_with_the_envelope() -> None:
    examples = documented_examples()
    assert len(examples) == 8
    for example in examples:
        assert list(example)[:3] == ["gateway", "seq", "ts"]


async def test_published_messages_match_the_documented_examples(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        dust_monitor.set("pm10", 187.5)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "raised")
        dust_monitor.set("pm10", 20.0)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "cleared")
    await subscriber.wait_for(lambda m: m.payload.get("state") == "offline")
    published: dict[str, Received] = {}
    for message in subscriber.received:
        published.setdefault(_kind(message.topic, message.payload), message)
    documented = {
        _kind("", example): example
        for example in documented_examples()
        if not _kind("", example).startswith("notice/")  # checked in the test below
    }
    assert set(published) == set(documented)
    for kind, example in documented.items():
        assert set(published[kind].payload) == set(example), kind
        assert _shape(published[kind].payload) == _shape(example), kind


def test_notices_match_the_documented_examples(tmp_path: Path) -> None:
    (tmp_path / "outbox.sqlite3").write_bytes(b"not SQLite" * 100)
    box = Outbox(tmp_path, "gw-1", max_bytes=64 * 1024)
    for n in range(100):
        box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n, "pad": "x" * 1000})
    notices = [json.loads(m.payload) for m in box.peek(1000) if m.topic == NOTICES_TOPIC]
    notices.append(json.loads(box.envelope(storage_full("database or disk is full", 0), 1)))
    box.close()
    published = {_kind(NOTICES_TOPIC, notice): notice for notice in notices}
    documented = {
        _kind("", example): example
        for example in documented_examples()
        if _kind("", example).startswith("notice/")
    }
    assert set(published) == set(documented)
    for kind, example in documented.items():
        assert list(published[kind]) == list(example), kind
        assert _shape(published[kind]) == _shape(example), kind
