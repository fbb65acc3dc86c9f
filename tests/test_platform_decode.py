"""Platform messages to readings: each format's real-shaped message, byte layouts, status tables, errors."""

from __future__ import annotations

import json
import struct
from datetime import datetime
from typing import Any

import pytest

from contracts.readings import Quality, ReadingBatch
from drivers.platform import DecodeError, DeviceDecoder, PlatformConnection, PlatformDeviceConfig, Reason
from drivers.platform.formats import Envelope, chirpstack_v4, nbiot_json, parse_time, reader
from drivers.simulators.platform_devices import ALARM, OPEN, cover_payload
from tests.platform_support import fixture, profile_device

COVER_TIME = datetime.fromisoformat("2026-12-02T10:10:10.457927+00:00").timestamp()
SMOKE_TIME = datetime.fromisoformat("2026-12-02T10:10:10+00:00").timestamp()


def values(batch: ReadingBatch | None) -> dict[str, float]:
    assert batch is not None
    return dict(zip(batch.channels, batch.values.tolist(), strict=True))


def device(**entry: Any) -> PlatformDeviceConfig:
    base: dict[str, Any] = {"id": "dev-1", "driver": "platform", "platform": "p", "match": "x"}
    return PlatformDeviceConfig.model_validate({**base, **entry})


def test_a_chirpstack_v4_up_event_gives_the_covers_readings_at_the_event_time() -> None:
    envelope = chirpstack_v4(
        "application/9a1f/device/a84041000181c772/event/up", fixture("chirpstack_v4_up_cover.json")
    )
    assert envelope.ids == ("a84041000181c772",)
    assert envelope.counter == 1842 and envelope.message_id == "3f9c2a4e-7b1d-4e0a-9d2f-5c8e1a6b7d90"
    assert envelope.time is not None and envelope.time == pytest.approx(COVER_TIME + 0.000000819, abs=1e-6)
    cover = profile_device("lora-manhole-cover", id="cover-07", platform="lora", match="A84041000181C772")
    batch = DeviceDecoder(cover).decode(envelope, envelope.time)
    assert values(batch) == pytest.approx(
        {
            "tilt_deg": 35.2,
            "cover_open": 1,
            "water_level": 12,
            "water_alarm": 0,
            "ch4": 0.8,
            "gas_alarm": 0,
            "battery": 3.605,
            "battery_low": 0,
        }
    )
    assert batch is not None and set(batch.ts.tolist()) == {envelope.time}
    assert set(batch.quality.tolist()) == {Quality.OK}


def test_the_decoded_object_of_a_chirpstack_event_maps_by_path() -> None:
    envelope = chirpstack_v4("application/x/device/y/event/up", fixture("chirpstack_v4_up_cover.json"))
    config = device(
        channels=[
            {"id": "tilt", "path": "object.tilt_deg"},
            {"id": "battery", "path": "object.battery_v"},
            {"id": "rssi", "path": "rxInfo[0].rssi"},
        ]
    )
    assert values(DeviceDecoder(config).decode(envelope, 0.0)) == {
        "tilt": 35.2,
        "battery": 3.605,
        "rssi": -97,
    }


def test_an_aep_data_report_gives_the_smoke_detectors_alarm_at_the_platform_timestamp() -> None:
    envelope = nbiot_json("aep/dataReport", fixture("ctwing_aep_data_report_smoke.json"))
    assert envelope.ids == ("860374051096202", "acf7baaee65e431eadfb8f5fe50e8b81")
    assert envelope.time == SMOKE_TIME
    assert envelope.message_id is None  # upPacketSN -1 is no id
    detector = profile_device("nbiot-smoke-detector", id="smoke-3f", platform="aep", match="860374051096202")
    batch = DeviceDecoder(detector).decode(envelope, envelope.time)
    assert values(batch) == {
        "smoke_alarm": 1,
        "silenced": 0,
        "tamper": 0,
        "battery_low": 0,
        "fault": 0,
        "battery": 87,
        "smoke_density": 0.42,
        "rsrp": -95,
    }


def test_an_aep_transparent_report_carries_the_devices_bytes() -> None:
    envelope = nbiot_json("aep/dataReport", fixture("ctwing_aep_transparent_cover.json"))
    assert envelope.raw == cover_payload(
        ALARM, OPEN, tilt_deg=35.2, water_cm=12, ch4_lel=0.8, battery_v=3.605
    )
    cover = profile_device("lora-manhole-cover", id="cover-nb", platform="aep", match="860803030676429")
    assert values(DeviceDecoder(cover).decode(envelope, 0.0))["tilt_deg"] == pytest.approx(35.2)


def test_an_oceanconnect_data_change_uses_its_compact_event_time_and_service_data() -> None:
    envelope = nbiot_json("ocean/push", fixture("oceanconnect_device_data_changed_smoke.json"))
    assert envelope.ids == ("e917e013-044b-4f32-8b53-588ef68c185a",)
    assert envelope.time == SMOKE_TIME
    config = device(
        channels=[
            {"id": "battery", "path": "service.data.electricQuantity", "unit": "%"},
            {"id": "temperature", "path": "service.data.temperature", "scale": 0.1, "unit": "°C"},
        ]
    )
    assert values(DeviceDecoder(config).decode(envelope, 0.0)) == pytest.approx(
        {"battery": 100, "temperature": 21.9}
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20261202T101010Z", SMOKE_TIME),
        (1796206210000, SMOKE_TIME),
        ("1796206210", SMOKE_TIME),
        ("2026-12-02T18:10:10+08:00", SMOKE_TIME),
        ("2026-12-02T10:10:10.5Z", SMOKE_TIME + 0.5),
    ],
)
def test_platform_times_in_each_shape_are_the_same_instant(text: object, expected: float) -> None:
    assert parse_time(text, "t") == pytest.approx(expected)


def test_a_time_without_a_zone_is_refused_not_guessed() -> None:
    with pytest.raises(DecodeError, match="no time zone") as caught:
        parse_time("2026-12-02 10:10:10", "eventTime")
    assert caught.value.reason is Reason.WRONG_TYPE


def test_a_byte_layout_reads_both_endiannesses_signed_types_floats_and_bit_fields() -> None:
    raw = struct.pack(">h", -352) + struct.pack("<H", 3605) + struct.pack(">f", 21.5) + bytes([0b1011_0100])
    config = device(
        layout=[
            {"name": "tilt", "offset": 0, "type": "i16", "scale": 0.1},
            {"name": "battery", "offset": 2, "type": "u16", "endian": "little"},
            {"name": "temp", "offset": 4, "type": "f32"},
            {"name": "tamper", "offset": 8, "bit": 2},
            {"name": "level", "offset": 8, "bit": 4, "bits": 3},
            {"name": "low", "offset": 8, "bit": 0},
        ],
        channels=[
            {"id": "tilt", "field": "tilt"},
            {"id": "battery", "field": "battery", "scale": 0.001},
            {"id": "temp", "field": "temp", "offset": -0.5},
            {"id": "tamper", "field": "tamper"},
            {"id": "level", "field": "level"},
            {"id": "low", "field": "low"},
        ],
    )
    envelope = _json_envelope({"id": "x"}, raw=raw)
    assert values(DeviceDecoder(config).decode(envelope, 0.0)) == pytest.approx(
        {"tilt": -35.2, "battery": 3.605, "temp": 21.0, "tamper": 1, "level": 0b011, "low": 0}
    )


def test_a_payload_too_short_for_its_layout_names_the_field() -> None:
    config = device(
        layout=[{"name": "a", "offset": 0}, {"name": "b", "offset": 1, "type": "u32"}],
        channels=[{"id": "a", "field": "a"}, {"id": "b", "field": "b"}],
    )
    with pytest.raises(DecodeError, match=r"3 bytes; field b needs bytes 1\.\.4") as caught:
        DeviceDecoder(config).decode(_json_envelope({}, raw=b"\x01\x02\x03"), 0.0)
    assert caught.value.reason is Reason.MISSING_FIELD


def _smoke(status: int, **properties: Any) -> Envelope:
    document = json.loads(fixture("ctwing_aep_data_report_smoke.json"))
    document["payload"]["serviceData"].update(alarm_status=status, **properties)
    return nbiot_json("t", json.dumps(document).encode())


DETECTOR = profile_device("nbiot-smoke-detector", id="smoke-3f", platform="aep", match="860374051096202")


@pytest.mark.parametrize(
    ("status", "flag"), [(1, "smoke_alarm"), (2, "silenced"), (3, "battery_low"), (4, "tamper")]
)
def test_each_status_code_raises_its_own_flag_and_clears_the_others(status: int, flag: str) -> None:
    got = values(DeviceDecoder(DETECTOR).decode(_smoke(status), 0.0))
    flags = {k: got[k] for k in ("smoke_alarm", "silenced", "battery_low", "tamper", "fault")}
    assert flags == {k: (1 if k == flag else 0) for k in flags}


def test_a_fault_marks_the_batch_device_fault_and_a_self_test_maintenance() -> None:
    decoder = DeviceDecoder(DETECTOR)
    fault = decoder.decode(_smoke(5), 0.0)
    assert fault is not None and set(fault.quality.tolist()) == {Quality.DEVICE_FAULT}
    assert values(fault)["fault"] == 1
    test = decoder.decode(_smoke(6), 0.0)
    assert test is not None and set(test.quality.tolist()) == {Quality.MAINTENANCE}
    assert values(test)["smoke_alarm"] == 0


def test_a_heartbeat_status_maps_nothing() -> None:
    assert DeviceDecoder(DETECTOR).decode(_smoke(7), 0.0) is None


def test_an_unknown_status_code_is_refused_with_the_known_ones() -> None:
    with pytest.raises(DecodeError, match=r"status 9 is not in the table \(0, 1, 2") as caught:
        DeviceDecoder(DETECTOR).decode(_smoke(9), 0.0)
    assert caught.value.reason is Reason.UNKNOWN_STATUS


def test_an_optional_channel_may_be_absent_a_required_one_may_not() -> None:
    envelope = _smoke(0, smoke_value=None)
    assert "smoke_density" not in values(DeviceDecoder(DETECTOR).decode(envelope, 0.0))
    del envelope.document["payload"]["serviceData"]["battery_level"]
    with pytest.raises(DecodeError, match=r"serviceData\.battery_level: not in the message") as caught:
        DeviceDecoder(DETECTOR).decode(envelope, 0.0)
    assert caught.value.reason is Reason.MISSING_FIELD


def test_numbers_sent_as_text_are_read_and_other_text_is_a_wrong_type() -> None:
    assert values(DeviceDecoder(DETECTOR).decode(_smoke(0, battery_level="060"), 0.0))["battery"] == 60
    with pytest.raises(DecodeError, match="battery_level: text 'full' is not a number") as caught:
        DeviceDecoder(DETECTOR).decode(_smoke(0, battery_level="full"), 0.0)
    assert caught.value.reason is Reason.WRONG_TYPE


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"\xff\xfe not json", Reason.UNDECODABLE, "not JSON"),
        (b"[1, 2]", Reason.UNDECODABLE, "not a JSON object but a list"),
        (b'{"deviceInfo": {"devEui": "a840"}, "data": "%%%"}', Reason.UNDECODABLE, "data: not base64"),
        (
            b'{"deviceInfo": {"devEui": "a840"}, "fCnt": "7"}',
            Reason.WRONG_TYPE,
            "fCnt: '7' is not a frame counter",
        ),
        (b'{"deviceInfo": {}}', Reason.MISSING_FIELD, "no device EUI"),
    ],
)
def test_a_bad_chirpstack_message_says_what_is_wrong(payload: bytes, reason: Reason, words: str) -> None:
    with pytest.raises(DecodeError, match=words) as caught:
        chirpstack_v4("some/topic", payload)
    assert caught.value.reason is reason


def test_a_generic_json_shape_reads_its_id_from_the_topic_and_hex_bytes_from_a_path() -> None:
    connection = PlatformConnection.model_validate(
        {
            "id": "p",
            "host": "h",
            "format": "json",
            "topics": ["site/+/up"],
            "json": {"device_id_topic_level": 1, "time": "ts", "raw": "hex", "raw_encoding": "hex"},
        }
    )
    envelope = reader(connection)("site/Cover-9/up", b'{"ts": 1796206210, "hex": "0a0b"}')
    assert envelope.ids == ("cover-9",) and envelope.time == SMOKE_TIME and envelope.raw == b"\x0a\x0b"


def _json_envelope(document: dict[str, Any], *, raw: bytes | None) -> Envelope:
    return Envelope(("x",), None, None, None, document, raw)
