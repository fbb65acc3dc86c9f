"""docs/mqtt-api.md: every example follows its schema, and the gateway publishes what it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker
from gateway.outbox import NOTICES_TOPIC, Outbox, Priority
from gateway.outbox.notices import storage_full
from gateway.uplink.takeover import taken_over_notice
from tests.contract import SCHEMAS, check, validator
from tests.helpers import Subscriber, running_gateway

DOC = Path(__file__).resolve().parent.parent / "docs" / "mqtt-api.md"


def documented_examples() -> list[tuple[str, dict[str, Any]]]:
    """(schema file, example) for every JSON block of the document."""
    text = DOC.read_text()
    blocks = re.findall(r"```json\n", text)
    marked = re.findall(r"<!-- schema: (\S+) -->\n```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(marked) == len(blocks), "every ```json block needs a <!-- schema: NAME --> line above it"
    return [(schema, json.loads(block)) for schema, block in marked]


def test_every_schema_is_valid_and_linked_from_the_document() -> None:
    text = DOC.read_text()
    for path in SCHEMAS.glob("*.json"):
        validator(path.name)
        assert f"(schemas/{path.name})" in text, path.name


def test_every_example_follows_its_schema() -> None:
    examples = documented_examples()
    assert len(examples) >= 13
    for schema, example in examples:
        check(schema, example, where=f"docs/mqtt-api.md example {json.dumps(example)[:60]}")
        if schema != "command-request.json":  # requests come from the command center
            assert list(example)[:3] == ["gateway", "seq", "ts"]


def test_every_documented_event_state_is_an_example() -> None:
    states = {example["state"] for schema, example in documented_examples() if schema == "event.json"}
    enum = json.loads((SCHEMAS / "event.json").read_text())["properties"]["state"]["enum"]
    assert states == set(enum)


async def test_a_gateway_run_publishes_every_basic_kind(
    broker: LocalBroker, dust_monitor: SimulatedModbusDevice, subscriber: Subscriber, make_config
) -> None:
    """The subscriber validates each message against its schema; this checks they all came."""
    async with running_gateway(make_config(broker.port, dust_monitor.port)):
        dust_monitor.set("pm10", 187.5)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "raised")
        dust_monitor.set("pm10", 20.0)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "cleared")
        await subscriber.wait_for(lambda m: m.topic.endswith("/health"))
    await subscriber.wait_for(lambda m: m.payload.get("state") == "offline")
    kinds = {(m.topic.rsplit("/", 1)[-1], m.payload.get("state")) for m in subscriber.received}
    assert {
        ("state", "online"),
        ("state", "offline"),
        ("events", "raised"),
        ("events", "cleared"),
        ("status", "online"),
        ("health", None),
    } <= kinds
    assert any("/telemetry/" in m.topic for m in subscriber.received)


def test_notices_the_outbox_makes_follow_the_schema_and_are_documented(tmp_path: Path) -> None:
    """Gap, reset and disk-full notices, made by a real outbox, against notice.json."""
    (tmp_path / "outbox.sqlite3").write_bytes(b"not SQLite" * 100)
    box = Outbox(tmp_path, "gw-1", max_bytes=64 * 1024)
    for n in range(100):
        box.enqueue(Priority.TELEMETRY, "telemetry/d", {"n": n, "pad": "x" * 1000})
    notices = [json.loads(m.payload) for m in box.peek(1000) if m.topic == NOTICES_TOPIC]
    notices.append(json.loads(box.envelope(storage_full("database or disk is full", 0), 1)))
    taken_over = taken_over_notice(client_id="gw-1", broker="10.0.0.5:1883", evidence="x", retry_in_s=30)
    notices.append(json.loads(box.envelope(taken_over, 2)))
    box.close()
    for notice in notices:
        check("notice.json", notice, where=f"outbox notice {notice['notice']}")
    documented = {e["notice"] for schema, e in documented_examples() if schema == "notice.json"}
    assert (
        {n["notice"] for n in notices}
        == documented
        == {"gap", "outbox_reset", "storage_full", "session_taken_over"}
    )
