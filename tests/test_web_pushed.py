"""A datalogger that pushes HJ 212 frames is on the status page and in the metrics with its latest frame."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import aiohttp

from drivers.simulators.hj212_datalogger import Hj212Datalogger
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from tests.helpers import Subscriber, running_gateway
from tests.test_hj212_end_to_end import MN, _site


async def test_a_pushed_device_shows_its_latest_frame_values_with_units(
    broker: LocalBroker, subscriber: Subscriber, topic_prefix: str, tmp_path: Path
) -> None:
    listen_port, web_port = free_port(), free_port()
    text = _site(broker.port, listen_port, tmp_path / "state", topic_prefix) + f"\n[web]\nport = {web_port}\n"
    # One real-time frame, then nothing for minutes: what the page shows is that frame.
    datalogger = Hj212Datalogger(mn=MN, pw="123456", interval_s=600, minute_s=6000, seed=3)
    url = f"http://127.0.0.1:{web_port}"
    async with running_gateway(parse_config(text)), aiohttp.ClientSession() as http:
        sending = asyncio.create_task(datalogger.run("127.0.0.1", listen_port), name="datalogger")
        try:
            telemetry = await subscriber.wait_for(
                lambda m: m.topic.endswith("/telemetry/dust-hj-01") and "pm10" in m.payload["readings"],
                timeout=20,
            )
            async with http.get(f"{url}/devices/dust-hj-01") as response:
                assert response.status == 200
                page = await response.text()
            async with http.get(f"{url}/") as response:
                overview = await response.text()
            async with http.get(f"{url}/api/status") as response:
                status = await response.json()
            async with http.get(f"{url}/metrics") as response:
                metrics = await response.text()
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
    readings = telemetry.payload["readings"]
    for channel, unit in (("pm10", "µg/m³"), ("tsp", "µg/m³"), ("noise", "dB(A)")):
        shown = f"<td>{channel}</td><td class=num>{readings[channel]:.4g}</td><td>{unit}</td>"
        assert shown in page, (shown, page)
    assert "last frame" in page and "s ago" in page and "hj212" in page
    assert '<a href="/devices/dust-hj-01">dust-hj-01</a>' in overview and "pushed" in overview
    (device,) = [d for d in status["devices"] if d["id"] == "dust-hj-01"]
    assert device["pushed"] and device["read_at"] == telemetry.payload["ts"]
    read_at = re.search(
        r'^gridgate_device_read_timestamp_seconds\{device="dust-hj-01"\} (\S+)$', metrics, re.M
    )
    assert read_at is not None and float(read_at.group(1)) > 0
