"""The rules regulations and field crews use, through the engine, the events layer and a restart."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from contracts.errors import ConfigError
from contracts.readings import ReadingBatch
from gateway.config import parse_config
from gateway.config.events import EventPolicy
from gateway.config.models import GatewayIdentity
from gateway.config.rules import (
    AnomalyCheck,
    Clause,
    CrossRule,
    HealthCheck,
    MultivariateRule,
    RateCheck,
    ThresholdRule,
    WindowCheck,
)
from gateway.detect.engine import DetectionEngine, Transition
from gateway.detect.layout import rule_subject
from gateway.detect.persist import load_state, save_state
from gateway.detect.spike import S_CODE, SPIKE
from gateway.events import AlarmBook
from gateway.events.alarms import alarm_key
from gateway.events.lifecycle import EventDesk
from gateway.outbox import Outbox
from tests.conftest import gateway_toml

# 2026-11-22 00:00 in Asia/Shanghai (UTC+8) is 2026-11-21 16:00 UTC.
SHANGHAI_MIDNIGHT = datetime(2026, 11, 21, 16, tzinfo=timezone.utc).timestamp()


def _feed(engine: DetectionEngine, t: float, **values: float) -> list[Transition]:
    return engine.evaluate(ReadingBatch.at("d", tuple(values), list(values.values()), t))


def _said(transitions: list[Transition]) -> list[str]:
    return [
        f"{'+' if t.raised else '-'}{t.facet}:{t.level if t.facet == 'level' else t.condition}"
        for t in transitions
    ]


def test_levels_escalate_and_fall_back_past_the_hysteresis() -> None:
    rule = ThresholdRule(
        device="d", channel="c", warning_high=100, high=150, critical_high=300, hysteresis=10
    )
    engine = DetectionEngine([rule])
    assert _said(_feed(engine, 0, c=120)) == ["+level:warning"]
    assert _said(_feed(engine, 1, c=320)) == ["-level:warning", "+level:critical"]
    assert _said(_feed(engine, 2, c=295)) == []  # inside the hysteresis band
    assert _said(_feed(engine, 3, c=200)) == ["-level:critical", "+level:alarm"]
    assert _said(_feed(engine, 4, c=50)) == ["-level:alarm"]


def test_clear_hold_keeps_an_alarm_until_the_value_stayed_normal() -> None:
    engine = DetectionEngine([ThresholdRule(device="d", channel="c", high=10, clear_hold_s=60)])
    assert _said(_feed(engine, 0, c=11)) == ["+level:alarm"]
    assert _said(_feed(engine, 30, c=5)) == []
    assert _said(_feed(engine, 91, c=5)) == ["-level:alarm"]


def _hebei_pm10() -> ThresholdRule:
    """PM10 hourly means above 80 µg/m³ at most twice a day; a mean above 150 is an alarm."""
    window = WindowCheck(bucket_s=3600, high=150, daily_limit=80, daily_max=2)
    return ThresholdRule(device="d", channel="pm10", window=window, category="env.dust.pm10")


def _hour(engine: DetectionEngine, start: float, value: float) -> list[str]:
    said: list[str] = []
    for minute in range(0, 60, 10):
        said += _said(_feed(engine, start + minute * 60, pm10=value))
    return said


def test_window_means_and_the_third_exceedance_of_a_local_day(tmp_path: Path) -> None:
    engine = DetectionEngine([_hebei_pm10()])
    said = []
    for hour, value in enumerate([90, 50, 160, 40, 85, 30]):
        said += _hour(engine, SHANGHAI_MIDNIGHT + hour * 3600, value)
    # Means are judged when their hour is over: 160 raises the window alarm, 40 clears it;
    # 90, 160 and 85 are three exceedances of 80 in one day.
    assert said == ["+window:window_mean", "-window:window_mean", "+daily:daily_exceedances"]
    assert _hour(engine, SHANGHAI_MIDNIGHT + 86_400, 30) == ["-daily:daily_exceedances"]


def test_a_restart_does_not_forget_todays_exceedances(tmp_path: Path) -> None:
    engine = DetectionEngine([_hebei_pm10()])
    for hour, value in enumerate([90, 95, 20]):
        _hour(engine, SHANGHAI_MIDNIGHT + hour * 3600, value)
    save_state(tmp_path, engine)

    restarted = DetectionEngine([_hebei_pm10()])
    assert load_state(tmp_path, restarted) == 1
    restarted.restore([])
    assert _hour(restarted, SHANGHAI_MIDNIGHT + 3 * 3600, 99) == []
    assert _hour(restarted, SHANGHAI_MIDNIGHT + 4 * 3600, 20) == ["+daily:daily_exceedances"]

    changed = _hebei_pm10().model_copy(update={"window": WindowCheck(bucket_s=3600, daily_limit=70)})
    assert load_state(tmp_path, DetectionEngine([changed])) == 0  # a changed rule starts afresh


def test_rate_of_change_per_minute() -> None:
    rule = ThresholdRule(device="d", channel="level", rate=RateCheck(rise_per_min=0.5, span_s=60))
    engine = DetectionEngine([rule])
    assert _said(_feed(engine, 0, level=1.0)) == []
    assert _said(_feed(engine, 60, level=1.2)) == []
    assert _said(_feed(engine, 120, level=2.0)) == ["+rate:rising_too_fast"]
    assert _said(_feed(engine, 180, level=2.1)) == ["-rate:rising_too_fast"]


def test_sensor_health_is_a_fault_never_an_alarm() -> None:
    health = HealthCheck(min=0, max=1000, stuck_s=600, missing_s=300)
    engine = DetectionEngine([ThresholdRule(device="d", channel="c", high=150, health=health)])
    assert _said(_feed(engine, 0, c=5000)) == ["+fault:out_of_range"]
    assert _said(_feed(engine, 10, c=160)) == ["-fault:out_of_range", "+level:alarm"]
    assert _said(_feed(engine, 20, c=math.nan)) == []
    assert _said(_feed(engine, 330, c=math.nan)) == ["+fault:missing"]
    assert _said(_feed(engine, 340, c=20)) == ["-fault:missing", "-level:alarm"]
    assert _said(_feed(engine, 900, c=20)) == []
    assert _said(_feed(engine, 940, c=20)) == ["+fault:stuck"]


def test_anomalies_are_found_and_can_be_switched_off() -> None:
    rng = np.random.default_rng(7)
    normal = 50 + rng.normal(0, 1, 400)
    for enabled, expected in [(True, ["+anomaly:ewma_spike", "-anomaly:ewma_spike"]), (False, [])]:
        anomaly = AnomalyCheck(enabled=enabled, warmup=100)
        engine = DetectionEngine([ThresholdRule(device="d", channel="c", anomaly=anomaly)])
        said: list[str] = []
        for i, v in enumerate(normal):
            said += _said(_feed(engine, i * 60.0, c=float(v)))
        assert said == []
        said += _said(_feed(engine, 401 * 60.0, c=80.0))
        said += _said(_feed(engine, 402 * 60.0, c=50.0))  # quiet since now: cleared after clear_s of it
        said += _said(_feed(engine, 403 * 60.0, c=50.0))
        assert said == expected


def test_a_faulty_reading_is_a_fault_and_never_an_anomaly() -> None:
    rng = np.random.default_rng(7)
    health = HealthCheck(max=1000)
    engine = DetectionEngine(
        [ThresholdRule(device="d", channel="c", health=health, anomaly=AnomalyCheck(warmup=100))]
    )
    said: list[str] = []
    for i, v in enumerate(50 + rng.normal(0, 1, 400)):
        said += _said(_feed(engine, i * 60.0, c=float(v)))
    said += _said(_feed(engine, 401 * 60.0, c=5000.0))  # the sensor's error value
    said += _said(_feed(engine, 402 * 60.0, c=50.0))
    said += _said(_feed(engine, 403 * 60.0, c=80.0))  # the baseline did not learn the 5000: still a spike
    assert said == ["+fault:out_of_range", "-fault:out_of_range", "+anomaly:ewma_spike"]


def test_a_burst_of_spikes_is_one_anomaly_not_a_flicker() -> None:
    rng = np.random.default_rng(8)
    engine = DetectionEngine([ThresholdRule(device="d", channel="c", anomaly=AnomalyCheck(warmup=100))])
    said: list[tuple[int, str]] = []
    readings = [*(50 + rng.normal(0, 1, 400)), 80.0, 50.0, 80.0, 50.0, 50.0, 80.0, *([50.0] * 30)]
    for t, v in enumerate(readings):
        said += [(t, s) for s in _said(_feed(engine, float(t), c=float(v)))]
    assert said == [(400, "+anomaly:ewma_spike"), (416, "-anomaly:ewma_spike")]  # quiet from 406 for 10 s


def test_cross_channel_rules_on_one_device() -> None:
    fan_without_purifier = CrossRule(
        device="d",
        category="env.fume.purifier_off",
        hold_s=30,
        all=(
            Clause(channel="fan", op=">", value=0.5),
            Clause(channel="purifier", op="<", value=0.5),
        ),
    )
    impossible = CrossRule(
        device="d",
        category="sensor.pm25_above_pm10",
        kind="fault",
        all=(Clause(channel="pm25", op=">", than="pm10"),),
    )
    engine = DetectionEngine([], [fan_without_purifier, impossible])
    assert _said(_feed(engine, 0, fan=1, purifier=0, pm25=30, pm10=50)) == []
    assert _said(_feed(engine, 31, fan=1, purifier=0, pm25=30, pm10=50)) == ["+cross:cross_channel"]
    assert _said(_feed(engine, 40, fan=1, purifier=1)) == ["-cross:cross_channel"]
    faults = _feed(engine, 50, pm25=80)
    assert [(t.event_class, t.raised, t.rule) for t in faults] == [("fault", True, 1)]


def test_hotelling_finds_a_broken_relation_between_normal_looking_channels() -> None:
    rng = np.random.default_rng(3)
    detector = MultivariateRule(
        device="d", channels=("flow", "current"), method="hotelling", learn_samples=200, limit=40
    )
    engine = DetectionEngine([], [], [detector])
    said: list[str] = []
    for i in range(400):
        flow = float(rng.normal(10, 2))
        said += _said(_feed(engine, i, flow=flow, current=2 * flow + float(rng.normal(0, 0.1))))
    assert said == []
    # Each channel alone is well inside its usual range; together they are not.
    assert _said(_feed(engine, 500, flow=12.0, current=20.0)) == ["+multivariate:hotelling_t2"]
    assert _said(_feed(engine, 501, flow=10.0, current=20.0)) == ["-multivariate:hotelling_t2"]


def test_faults_and_anomalies_are_published_as_their_own_classes(tmp_path: Path) -> None:
    rule = ThresholdRule(
        device="d",
        channel="c",
        high=150,
        severity="urgent",
        health=HealthCheck(max=1000),
        anomaly=AnomalyCheck(warmup=8),
    )
    engine = DetectionEngine([rule])
    outbox = Outbox(tmp_path, "gw")
    try:
        identity = GatewayIdentity(id="gw", site="s", grid_cell="1")
        facets = [engine.facet_names(i) for i in range(len(engine.subjects))]
        book = AlarmBook(identity, engine.subjects, facets, {("d", "c"): "µg/m³"}, outbox)
        desk = EventDesk(book, engine.rules, EventPolicy(flap_window_s=0))
        for t, v in enumerate([1.0, 2.0] * 10 + [5000.0, 100.0, 1.0, 160.0]):
            for transition in _feed(engine, float(t), c=v):
                desk.handle(transition)
        published = [json.loads(m.payload) for m in outbox.peek(100) if m.topic == "events"]
        raised = {(m["class"], m["condition"]): m["severity"] for m in published if m["state"] == "raised"}
        assert raised == {
            ("fault", "out_of_range"): "normal",
            ("anomaly", "ewma_spike"): "normal",
            ("alarm", "above_limit"): "urgent",
        }
        # A restarted gateway knows which facets are open, whatever the saved state says.
        reopened = AlarmBook(identity, engine.subjects, facets, {}, outbox)
        fresh = DetectionEngine([rule])
        fresh.restore_events(reopened.restore())
        assert fresh.state[0, 0] == 2  # level "alarm", high
        spike, i = fresh.kind_of(len(fresh.subjects) - 1)  # type: ignore[misc]
        assert spike.facet == "anomaly" and spike.snapshot(i)["state"][S_CODE] == SPIKE  # still open
        # an anomaly event keeps the name it had when the rule's own kernel ran the spike check
        assert alarm_key(fresh.subjects[-1], "anomaly") == alarm_key(rule_subject(rule), "anomaly")
    finally:
        outbox.close()


def test_config_accepts_every_rule_kind_and_names_wrong_channels() -> None:
    rules = """
[detection]
timezone = "Asia/Shanghai"

[[rules]]
device = "dust-01"
channel = "pm10"
warning_high = 80.0
high = 150.0
critical_high = 300.0
category = "env.dust.pm10"
window = { bucket_s = 3600, high = 150.0, daily_limit = 80.0, daily_max = 2 }
health = { min = 0.0, max = 1000.0, stuck_s = 3600, missing_s = 600 }
anomaly = { z_limit = 6.0, hampel_k = 6.0 }

[[cross_rules]]
device = "dust-01"
category = "sensor.pm25_above_pm10"
kind = "fault"
all = [{ channel = "pm25", op = ">", than = "pm10" }]

[[multivariate]]
device = "dust-01"
channels = ["pm25", "pm10", "tsp"]
"""
    config = parse_config(
        gateway_toml(broker_port=1, modbus_port=2, storage=Path("/tmp/x"), prefix="gg/v1", rules=rules)
    )
    assert config.rules[0].window is not None and config.multivariate[0].channels[2] == "tsp"
    broken = rules.replace('than = "pm10"', 'than = "pm100"').replace('"Asia/Shanghai"', '"Mars/Olympus"')
    with pytest.raises(ConfigError) as caught:
        parse_config(
            gateway_toml(broker_port=1, modbus_port=2, storage=Path("/tmp/x"), prefix="gg/v1", rules=broken)
        )
    assert caught.value.problems == [
        "detection.timezone: unknown time zone 'Mars/Olympus' (use an IANA name like Asia/Shanghai)"
    ]
    with pytest.raises(ConfigError) as caught:
        parse_config(
            gateway_toml(
                broker_port=1,
                modbus_port=2,
                storage=Path("/tmp/x"),
                prefix="gg/v1",
                rules=rules.replace('than = "pm10"', 'than = "pm100"'),
            )
        )
    assert caught.value.problems[0].startswith("cross_rules[0].all[0].than: no channel 'pm100' on device")


def test_a_channel_that_sends_nothing_is_a_missing_data_fault() -> None:
    health = HealthCheck(missing_s=300)
    engine = DetectionEngine([ThresholdRule(device="d", channel="c", high=150, health=health)])
    _feed(engine, 1000.0, c=160)
    assert _said(engine.silent_channels(1200.0)) == []
    assert _said(engine.silent_channels(1300.0)) == ["+fault:missing"]
    assert _said(engine.silent_channels(1400.0)) == []  # raised once
    assert _said(_feed(engine, 1500.0, c=20)) == ["-fault:missing", "-level:alarm"]
