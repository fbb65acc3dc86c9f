"""From HJ 212 frames to readings: MN, PW, units, flags, DataTime, statistics kept apart."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from contracts.readings import Quality, ReadingBatch
from drivers.hj212.codec import Frame, FrameError, encode, parse
from drivers.hj212.config import Hj212DeviceConfig
from drivers.hj212.mapping import DataloggerMap
from drivers.hj212.session import Hj212Counters, Session
from tests.test_hj212_codec import FRAMES

REALTIME_NG = FRAMES[7]  # LXHB0CS0306310: particulates in ng/m³
MINUTE = FRAMES[1]  # JLYP01_AIR01_0001: CN 2051


def _device(**overrides: object) -> Hj212DeviceConfig:
    entry: dict[str, object] = {
        "id": "dust-02",
        "driver": "hj212",
        "mn": "LXHB0CS0306310",
        "pw": "123456",
        "channels": [
            {"id": "pm25", "code": "a34004", "unit": "µg/m³", "scale": 0.001},
            {"id": "pm10", "code": "a34002", "unit": "µg/m³", "scale": 0.001},
            {"id": "noise", "code": "LA", "unit": "dB(A)"},
        ],
    }
    entry.update(overrides)
    return Hj212DeviceConfig.model_validate(entry)


def _batch(raw: bytes, device: Hj212DeviceConfig) -> ReadingBatch:
    mapping = DataloggerMap([device])
    frame = parse(raw)
    batch = mapping.to_batch(frame, mapping.authenticate(frame, "test"), received=0.0)
    assert batch is not None
    return batch


def test_real_time_values_are_scaled_to_the_configured_unit_and_stamped_in_beijing_time() -> None:
    batch = _batch(REALTIME_NG, _device())
    assert batch.device == "dust-02"
    assert batch.channels == ("pm25", "pm10", "noise")
    assert batch.values.tolist() == pytest.approx([75.6, 140.6, 57.9])
    assert list(batch.quality) == [Quality.OK] * 3
    when = datetime(2018, 4, 27, 4, 58, 9, tzinfo=timezone.utc).timestamp()  # 12:58:09 +08:00
    assert batch.ts.tolist() == [when] * 3


def test_the_time_zone_is_configurable() -> None:
    batch = _batch(REALTIME_NG, _device(time_zone="UTC"))
    assert batch.ts[0] == datetime(2018, 4, 27, 12, 58, 9, tzinfo=timezone.utc).timestamp()


def test_minute_statistics_get_their_own_channel_names() -> None:
    device = _device(
        mn="JLYP01_AIR01_0001",
        channels=[
            {"id": "pm10", "code": "a34002", "unit": "µg/m³"},
            {"id": "pm25", "code": "a34004", "unit": "µg/m³"},
        ],
    )
    batch = _batch(MINUTE, device)
    assert batch.channels == ("pm10.minute_avg", "pm25.minute_avg")
    assert batch.values.tolist() == [31.0, 14.0]


def _frame(cp: str, *, mn: str = "LXHB0CS0306310", pw: str = "123456", cn: str = "2011") -> bytes:
    header = (("QN", "20240101120000000"), ("ST", "39"), ("CN", cn), ("PW", pw), ("MN", mn), ("Flag", "5"))
    items = tuple(
        tuple((key, value) for key, _, value in (f.partition("=") for f in item.split(",")))
        for item in cp.split(";")
    )
    return encode(Frame(header, items))


@pytest.mark.parametrize(
    ("flag", "quality"),
    [
        ("N", Quality.OK),
        ("D", Quality.DEVICE_FAULT),
        ("C", Quality.CALIBRATING),
        ("M", Quality.MAINTENANCE),
        ("T", Quality.OVER_RANGE),
        ("B", Quality.COMMS_FAULT),
        ("F", Quality.STOPPED),
        ("S", Quality.MANUAL),
        ("P", Quality.DEVICE_FAULT),
    ],
)
def test_data_flags_map_to_quality(flag: str, quality: Quality) -> None:
    raw = _frame(f"DataTime=20240101120000;a34002-Rtd=90,a34002-Flag={flag}")
    assert _batch(raw, _device()).quality.tolist() == [quality]


def test_hour_statistics_and_a_bad_number() -> None:
    cp = "DataTime=20240101110000;a34002-Avg=80000,a34002-Max=95000,a34002-Min=x"
    raw = _frame(cp, cn="2061")
    batch = _batch(raw, _device())
    assert batch.channels == ("pm10.hour_avg", "pm10.hour_min", "pm10.hour_max")
    assert batch.quality.tolist() == [Quality.OK, Quality.DEVICE_FAULT, Quality.OK]


def test_a_bad_data_time_is_rejected() -> None:
    with pytest.raises(FrameError, match="datatime"):
        _batch(_frame("DataTime=20241301120000;a34002-Rtd=1"), _device())


def test_unknown_mns_and_wrong_passwords_are_refused_counted_and_not_answered() -> None:
    batches: list[ReadingBatch] = []
    counters = Hj212Counters()
    session = Session("peer", DataloggerMap([_device()]), batches.append, counters)
    answers = session.feed(
        _frame("a34002-Rtd=1", mn="SOMEONE-ELSE")
        + _frame("a34002-Rtd=1", pw="guess")
        + _frame("a34002-Rtd=1", mn="SOMEONE-ELSE")
    )
    assert answers == [] and batches == []
    assert counters.rejected == {"unknown_mn": 2, "bad_pw": 1}
    assert counters.unknown_mns == {"SOMEONE-ELSE": 2}
    answers = session.feed(_frame("DataTime=20240101120000;a34002-Rtd=90000"))
    assert [parse(a).cn for a in answers] == ["9014"]
    assert batches[0].values.tolist() == [90.0] and counters.frames == 1


def test_a_2005_style_frame_without_qn_or_flag_maps_with_its_millisecond_data_time() -> None:
    device = _device(
        mn="NJGDKYYC202101q0001w0001",
        channels=[
            {"id": "ele01", "code": "ele01", "unit": "kW"},
            {"id": "ele02", "code": "ele02", "unit": "kW"},
        ],
    )
    batch = _batch(FRAMES[6], device)  # ST=32;CN=2011;...;DataTime=20210305003817000
    assert batch.channels == ("ele01", "ele02") and batch.values.tolist() == [1.0, 0.0]
    assert batch.ts[0] == datetime(2021, 3, 4, 16, 38, 17, tzinfo=timezone.utc).timestamp()
