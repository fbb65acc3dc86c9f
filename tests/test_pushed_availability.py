"""Pushed devices have availability too: heard from → online, silent too long → offline and a comms event."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from drivers.hj212 import Hj212DeviceConfig
from drivers.simulators.hj212_datalogger import Hj212Datalogger
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from gateway.poll.heartbeat import HeartbeatWatch
from tests.helpers import Subscriber, running_gateway
from tests.test_hj212_end_to_end import MN, _site


def _logger(heartbeat_s: float | None, missed: int = 2) -> Hj212DeviceConfig:
    return Hj212DeviceConfig.model_validate(
        {
            "id": "dust-hj-01",
            "driver": "hj212",
            "mn": MN,
            "pw": "123456",
            "heartbeat_s": heartbeat_s,
            "missed_heartbeats": missed,
            "channels": [{"id": "pm10", "code": "a34002", "unit": "µg/m³"}],
        }
    )


def test_a_watch_goes_offline_after_the_missed_intervals_and_back_on_the_next_message() -> None:
    changes: list[tuple[str | None, str]] = []
    watch = HeartbeatWatch(
        _logger(60.0, missed=3), on_change=lambda w: changes.append((w.state, w.reason)), now=0
    )
    watch.check(now=179.0)  # two intervals of silence since the start: not yet
    assert watch.state is None and watch.failed_in_row == 2
    watch.check(now=180.0)
    assert watch.state == "offline" and "nothing since the gateway started for 180 s" in watch.reason
    watch.seen(now=200.0)
    assert watch.state == "online" and watch.failed_in_row == 0 and watch.polls == 1
    watch.check(now=379.0)
    assert watch.state == "online"  # 179 s since the last message: two intervals missed
    watch.check(now=380.0)
    assert watch.state == "offline" and "no message for 180 s" in watch.reason
    assert [state for state, _ in changes] == ["offline", "online", "offline"]
    assert watch.failures == 6


def test_a_device_without_a_heartbeat_interval_is_online_when_heard_and_never_judged_silent() -> None:
    watch = HeartbeatWatch(_logger(None), now=0)
    watch.check(now=1e9)
    assert watch.state is None
    watch.seen(now=5.0)
    watch.check(now=1e9)
    assert watch.state == "online"


async def test_a_silent_datalogger_goes_offline_raises_a_comms_event_and_clears_it_when_back(
    broker: LocalBroker, subscriber: Subscriber, topic_prefix: str, tmp_path: Path
) -> None:
    listen_port = free_port()
    text = _site(broker.port, listen_port, tmp_path / "state", topic_prefix).replace(
        'pw = "123456"\n', 'pw = "123456"\nheartbeat_s = 0.5\nmissed_heartbeats = 2\n'
    )
    config = parse_config(text.replace("[uplink]", "[uplink]\nhealth_s = 0.5", 1))

    def status(state: str):  # type: ignore[no-untyped-def]
        return lambda m: m.topic.endswith("/devices/dust-hj-01/status") and m.payload["state"] == state

    def comms(state: str):  # type: ignore[no-untyped-def]
        return lambda m: (
            m.topic.endswith("/events")
            and m.payload["category"] == "device.comms"
            and m.payload["state"] == state
        )

    def sending() -> asyncio.Task[None]:
        logger = Hj212Datalogger(mn=MN, pw="123456", scenario="normal", interval_s=0.2, seed=1)
        return asyncio.create_task(logger.run("127.0.0.1", listen_port), name="datalogger")

    async with running_gateway(config):
        first = sending()
        online = await subscriber.wait_for(status("online"), timeout=20)
        assert online.payload["mode"] == "pushed" and online.payload["poll_interval_s"] == 0.5
        assert online.payload["counters"]["linked"] == 1
        await subscriber.wait_for(
            lambda m: m.topic.endswith("/health") and m.payload["devices"]["online"] == 1, timeout=10
        )
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        stopped = len(subscriber.received)
        offline = await subscriber.wait_for(status("offline"), timeout=10, after=stopped)
        raised = await subscriber.wait_for(comms("raised"), timeout=10, after=stopped)
        assert raised.payload["device"] == "dust-hj-01" and raised.payload["condition"] == "offline"
        assert "no message for" in offline.payload["reason"]
        await subscriber.wait_for(
            lambda m: m.topic.endswith("/health") and m.payload["devices"]["offline"] == 1, timeout=10
        )
        back = len(subscriber.received)
        again = sending()
        try:
            cleared = await subscriber.wait_for(comms("cleared"), timeout=20, after=back)
            await subscriber.wait_for(status("online"), timeout=10, after=back)
        finally:
            again.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await again
    assert cleared.payload["event_id"] == raised.payload["event_id"]
