"""The bridge against a real Mosquitto standing in for the platform: what comes out, what is dropped."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from contracts.readings import Quality
from drivers.platform import PlatformConnection, PlatformDeviceConfig, PlatformStream
from drivers.simulators.platform_devices import (
    ALARM,
    HEARTBEAT,
    OPEN,
    REPORT,
    SMOKE,
    chirpstack_up,
    cover_payload,
    smoke_report,
)
from firmware_tools.local_broker import LocalBroker
from tests.platform_support import fixture, profile_device, publish, running_bridge, until
from tests.uplink_peers import password_tls_broker

EUI = "a84041000181c772"
IMEI = "860374051096202"
T0 = datetime.fromisoformat("2026-12-02T10:10:10+00:00").timestamp()


def _lora(port: int, prefix: str, **entry: Any) -> PlatformConnection:
    return PlatformConnection.model_validate(
        {
            "id": "lora",
            "host": "127.0.0.1",
            "port": port,
            "format": "chirpstack_v4",
            "topics": [f"{prefix}/application/+/device/+/event/up"],
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.3,
            **entry,
        }
    )


def _aep(port: int, prefix: str) -> PlatformConnection:
    return PlatformConnection.model_validate(
        {
            "id": "aep",
            "host": "127.0.0.1",
            "port": port,
            "format": "nbiot_json",
            "topics": [f"{prefix}/aep/#"],
        }
    )


def _cover(match: str = EUI, device_id: str = "cover-07") -> PlatformDeviceConfig:
    return profile_device("lora-manhole-cover", id=device_id, platform="lora", match=match)


def _detector() -> PlatformDeviceConfig:
    return profile_device("nbiot-smoke-detector", id="smoke-3f", platform="aep", match=IMEI)


def _up(prefix: str, f_cnt: int, data: bytes, ts: float, eui: str = EUI) -> tuple[str, bytes]:
    topic, payload = chirpstack_up(eui, f_cnt, data, ts=ts)
    return f"{prefix}/{topic}", payload


async def test_chirpstack_and_nbiot_messages_become_batches_with_their_values_and_times(
    broker: LocalBroker, topic_prefix: str
) -> None:
    async with (
        running_bridge(_lora(broker.port, topic_prefix), [_cover()]) as lora,
        running_bridge(_aep(broker.port, topic_prefix), [_detector()]) as aep,
    ):
        cover_topic = f"{topic_prefix}/application/9a1f/device/{EUI}/event/up"
        await publish(
            broker.port,
            (cover_topic, fixture("chirpstack_v4_up_cover.json")),
            (f"{topic_prefix}/aep/dataReport", fixture("ctwing_aep_data_report_smoke.json")),
        )
        await until(lambda: len(lora.batches) == 1 and len(aep.batches) == 1)
        assert lora.batches[0].device == "cover-07"
        assert lora.values()["tilt_deg"] == pytest.approx(35.2) and lora.values()["cover_open"] == 1
        assert lora.batches[0].ts[0] == pytest.approx(T0 + 0.457927819)
        assert aep.batches[0].device == "smoke-3f"
        assert aep.values()["smoke_alarm"] == 1 and aep.batches[0].ts[0] == T0
        assert lora.stream.status_fields("cover-07")["counters"] == {
            "messages": 1,
            "decoded": 1,
            "heartbeats": 0,
            "duplicates": 0,
            "late": 0,
            "clock_ahead": 0,
            "errors": {},
        }


async def test_a_heartbeat_tells_seen_and_gives_no_batch(broker: LocalBroker, topic_prefix: str) -> None:
    async with running_bridge(_aep(broker.port, topic_prefix), [_detector()]) as aep:
        topic = f"{topic_prefix}/aep/dataReport"
        await publish(
            broker.port, (topic, smoke_report(IMEI, 7, ts=T0)), (topic, smoke_report(IMEI, SMOKE, ts=T0 + 1))
        )
        await until(lambda: len(aep.batches) == 1)
        assert aep.seen == [("smoke-3f", T0)]
        assert aep.stream.counters["smoke-3f"].heartbeats == 1


async def test_duplicates_from_a_platform_reconnect_produce_nothing(
    broker: LocalBroker, topic_prefix: str
) -> None:
    async with (
        running_bridge(_lora(broker.port, topic_prefix), [_cover()]) as lora,
        running_bridge(_aep(broker.port, topic_prefix), [_detector()]) as aep,
    ):
        first = _up(topic_prefix, 10, cover_payload(ALARM, OPEN, tilt_deg=30), T0)
        # ChirpStack re-sent: same fCnt and bytes under a new deduplicationId and a later time.
        resent = _up(topic_prefix, 10, cover_payload(ALARM, OPEN, tilt_deg=30), T0 + 5)
        nb = (f"{topic_prefix}/aep/dataReport", smoke_report(IMEI, SMOKE, ts=T0))
        after = _up(topic_prefix, 11, cover_payload(REPORT, 0, tilt_deg=0.5), T0 + 60)
        await publish(broker.port, first, first, resent, nb, nb, nb, after)
        await until(lambda: len(lora.batches) == 2 and aep.stream.counters["smoke-3f"].messages == 3)
        assert [v["tilt_deg"] for v in (lora.values(0), lora.values(1))] == pytest.approx([30.0, 0.5])
        assert lora.stream.counters["cover-07"].duplicates == 2
        assert len(aep.batches) == 1 and aep.stream.counters["smoke-3f"].duplicates == 2


async def test_a_message_older_than_the_last_one_is_passed_on_flagged_late(
    broker: LocalBroker, topic_prefix: str
) -> None:
    async with running_bridge(_lora(broker.port, topic_prefix), [_cover()]) as lora:
        await publish(
            broker.port,
            _up(topic_prefix, 21, cover_payload(REPORT, 0, tilt_deg=0.5), T0 + 60),
            _up(topic_prefix, 20, cover_payload(ALARM, OPEN, tilt_deg=33), T0),
            _up(topic_prefix, 22, cover_payload(HEARTBEAT, 0), T0 + 30),  # a late heartbeat: no sign of life
        )
        await until(lambda: lora.stream.counters["cover-07"].late == 2)
        assert len(lora.batches) == 2 and lora.batches[1].ts[0] == T0
        assert [b.late for b in lora.batches] == [False, True]
        assert lora.seen == []


async def test_bad_input_is_counted_by_device_and_reason_while_good_messages_keep_flowing(
    broker: LocalBroker, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = cover_payload(REPORT, 0, tilt_deg=1.0)
    async with running_bridge(_lora(broker.port, topic_prefix, max_message_bytes=2048), [_cover()]) as lora:
        topic = f"{topic_prefix}/application/9a1f/device/{EUI}/event/up"
        garbage = (topic, b"\x00\x01 not json")
        short = _up(topic_prefix, 2, b"\x01\x00", T0 + 2)
        oversized = (topic, b"{" + b" " * 4096 + b"}")
        unknown = _up(topic_prefix, 3, good, T0 + 3, eui="0000000000000bad")
        status = _up(topic_prefix, 4, cover_payload(9, 0), T0 + 4)
        await publish(
            broker.port,
            _up(topic_prefix, 1, good, T0 + 1),
            garbage,
            garbage,
            short,
            oversized,
            unknown,
            status,
            _up(topic_prefix, 5, good, T0 + 5),
        )
        await until(lambda: len(lora.batches) == 2 and lora.stream.counters["cover-07"].messages == 7)
        counters = lora.stream.status_fields("cover-07")["counters"]
        assert counters["errors"] == {
            "undecodable": 2,
            "missing_field": 1,
            "oversized": 1,
            "unknown_status": 1,
        }
        assert lora.stream.status() == {
            "connected": True,
            "connects": 1,
            "unmatched": {"unknown_device": 1},
        }
        assert [b.ts[0] for b in lora.batches] == [T0 + 1, T0 + 5]
    lines = [r.getMessage() for r in caplog.records if "undecodable" in r.getMessage()]
    assert len(lines) == 1 and "cover-07" in lines[0]  # the second one is counted, not logged


async def test_the_bridge_reconnects_after_the_platform_broker_restarts(own_broker: LocalBroker) -> None:
    async with running_bridge(_lora(own_broker.port, "p"), [_cover()]) as lora:
        await publish(own_broker.port, _up("p", 1, cover_payload(REPORT, 0, tilt_deg=1), T0))
        await until(lambda: len(lora.batches) == 1)
        own_broker.stop()
        await until(lambda: not lora.stream.connected)
        own_broker.start()
        await until(lambda: lora.stream.connected and lora.stream.connects == 2)
        await publish(own_broker.port, _up("p", 2, cover_payload(ALARM, OPEN, tilt_deg=40), T0 + 10))
        await until(lambda: len(lora.batches) == 2)
        assert lora.values()["cover_open"] == 1


async def test_the_bridge_uses_tls_and_a_password_file(tmp_path: Path) -> None:
    broker, tls_port, certs = password_tls_broker(tmp_path, "bridge")
    with broker:
        connection = _lora(
            tls_port,
            "p",
            tls={"ca_file": str(certs["ca"])},
            username="bridge",
            password_file=str(tmp_path / "password.txt"),
        )
        async with running_bridge(connection, [_cover()]) as lora:
            topic, payload = _up("p", 1, cover_payload(REPORT, 0, tilt_deg=2), T0)
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, username="bridge", password="s3cret"
            ) as client:
                await client.publish(topic, payload, qos=1)
            await until(lambda: len(lora.batches) == 1)
            assert lora.values()["tilt_deg"] == pytest.approx(2.0)


def test_a_fault_message_reaches_the_batch_as_device_fault() -> None:
    # Through handle() alone: the broker adds nothing to what quality a status gives.
    stream = PlatformStream(_lora(1883, "p"), [_cover()])
    out: list[Any] = []
    stream.on_batch = out.append
    topic, payload = _up("p", 1, cover_payload(4, 0), T0)
    stream.handle(topic, payload)
    assert set(out[0].quality.tolist()) == {Quality.DEVICE_FAULT}


async def test_the_simulated_devices_alarm_tilt_and_fall_silent_as_their_profiles_read_them(
    broker: LocalBroker, topic_prefix: str
) -> None:
    from drivers.simulators import platform_devices as sim

    eui = EUI.replace("c772", "0001")
    async with (
        running_bridge(_lora(broker.port, topic_prefix), [_cover(eui, "cover-sim")]) as lora,
        running_bridge(_aep(broker.port, topic_prefix), [_detector()]) as aep,
        aiomqtt.Client("127.0.0.1", broker.port) as client,
    ):
        prefixed = _Prefixed(client, topic_prefix)
        run = sim.publish_forever(
            prefixed,  # type: ignore[arg-type]
            smoke=[sim.SmokeDetector(IMEI)],
            covers=[sim.Cover(eui)],
            interval_s=0.02,
            alarm_every=4,
            silent_after=8,
        )
        task = asyncio.create_task(run, name="simulated-devices")
        try:
            await until(lambda: aep.stream.counters["smoke-3f"].messages >= 12)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert any(dict(zip(b.channels, b.values, strict=True))["smoke_alarm"] == 1 for b in aep.batches)
    assert aep.seen  # its heartbeats
    opened = [dict(zip(b.channels, b.values, strict=True))["cover_open"] for b in lora.batches]
    assert 1 in opened and 0 in opened
    counters = lora.stream.counters["cover-sim"]
    assert counters.messages == 8 and counters.heartbeats >= 1 and not counters.errors


class _Prefixed:
    """The simulator's client, publishing under this test's topic prefix."""

    def __init__(self, client: aiomqtt.Client, prefix: str) -> None:
        self._client, self._prefix = client, prefix

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        await self._client.publish(f"{self._prefix}/{topic}", payload, qos=qos)
