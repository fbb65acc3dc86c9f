"""A datalogger that pushes HJ 212 frames is on the status page and in the metrics with its latest frames."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any

import aiohttp

from drivers.simulators.hj212_datalogger import Hj212Datalogger
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from tests.helpers import Subscriber, running_gateway
from tests.test_hj212_end_to_end import MN, _site

TELEMETRY = "/telemetry/dust-hj-01"


async def test_a_pushed_device_shows_its_latest_values_and_statistics_with_units(
    broker: LocalBroker, subscriber: Subscriber, topic_prefix: str, tmp_path: Path
) -> None:
    listen_port, web_port = free_port(), free_port()
    text = _site(broker.port, listen_port, tmp_path / "state", topic_prefix) + f"\n[web]\nport = {web_port}\n"
    # Real-time values twice a second and a "minute" of statistics every 1.5 s, until stopped.
    datalogger = Hj212Datalogger(mn=MN, pw="123456", interval_s=0.5, minute_s=1.5, seed=3)
    url = f"http://127.0.0.1:{web_port}"
    async with running_gateway(parse_config(text)), aiohttp.ClientSession() as http:
        sending = asyncio.create_task(datalogger.run("127.0.0.1", listen_port), name="datalogger")
        try:
            await subscriber.wait_for(
                lambda m: m.topic.endswith(TELEMETRY) and "pm10.minute_avg" in m.payload["readings"]
            )
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
        await asyncio.sleep(1.0)  # whatever was on its way to the gateway is in
        pages: dict[str, Any] = {}
        for path in ("/devices/dust-hj-01", "/", "/metrics"):
            async with http.get(f"{url}{path}") as response:
                assert response.status == 200, path
                pages[path] = await response.text()
        async with http.get(f"{url}/api/status") as response:
            status = await response.json()
    await asyncio.sleep(2.0)  # and what it published has reached the subscriber
    telemetry = [m.payload for m in subscriber.received if m.topic.endswith(TELEMETRY)]
    instant = next(t for t in reversed(telemetry) if "pm10" in t["readings"])
    minute = next(t for t in reversed(telemetry) if "pm10.minute_avg" in t["readings"])
    page = pages["/devices/dust-hj-01"]
    for channel, value, unit in (
        ("pm10", instant["readings"]["pm10"], "µg/m³"),
        ("noise", instant["readings"]["noise"], "dB(A)"),
        ("pm10.minute_avg", minute["readings"]["pm10.minute_avg"], "µg/m³"),
        ("tsp.minute_max", minute["readings"]["tsp.minute_max"], "µg/m³"),
    ):
        shown = f"<td>{channel}</td><td class=num>{value:.4g}</td><td>{unit}</td>"
        assert shown in page, (shown, page)
    assert page.index("<td>pm10</td>") < page.index("<td>pm10.minute_avg</td>") < page.index("<td>noise</td>")
    assert "last frame" in page and "hj212 (the device sends its data)" in page
    assert '<a href="/devices/dust-hj-01">dust-hj-01</a>' in pages["/"] and "pushed" in pages["/"]
    (device,) = [d for d in status["devices"] if d["id"] == "dust-hj-01"]
    latest = max(instant["ts"], minute["ts"])
    assert device["pushed"] and device["read_at"] == latest
    assert device["state"] == "online" and device["polls"] >= 2  # frames received: it has a heartbeat watch
    series = r'^gridgate_device_read_timestamp_seconds\{device="dust-hj-01"\} (\S+)$'
    read_at = re.search(series, pages["/metrics"], re.M)
    assert read_at is not None and float(read_at.group(1)) > 0
