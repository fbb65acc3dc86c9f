"""The status page and metrics of a running gateway, used over HTTP as a technician and a scraper would."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config.passwords import hash_password
from gateway.service.daemon import Daemon
from tests.helpers import Subscriber, running_gateway
from tests.png import read_png

PASSWORD = "cabinet-42"
SECRET = "broker-secret-do-not-show"


@dataclass
class Site:
    url: str
    daemon: Daemon
    subscriber: Subscriber
    dust_monitor: SimulatedModbusDevice


@pytest.fixture
async def site(
    broker: LocalBroker,
    dust_monitor: SimulatedModbusDevice,
    subscriber: Subscriber,
    make_config,  # type: ignore[no-untyped-def]
) -> AsyncIterator[Site]:
    port = free_port()
    web = f'[web]\nport = {port}\nsession_ttl_s = 2\nusers = {{ tech = "{hash_password(PASSWORD)}" }}\n'
    config = make_config(broker.port, dust_monitor.port, extra=web)
    config = config.model_copy(update={"uplink": config.uplink.model_copy(update={"password": SECRET})})
    async with running_gateway(config) as daemon:
        assert daemon.web is not None
        for _ in range(100):
            if daemon.web.port is not None:
                break
            await asyncio.sleep(0.05)
        yield Site(f"http://127.0.0.1:{port}", daemon, subscriber, dust_monitor)


async def _text(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        assert response.status == 200, url
        return await response.text()


async def _login(http: aiohttp.ClientSession, site: Site, password: str = PASSWORD) -> int:
    form = {"user": "tech", "password": password, "next": "/events"}
    async with http.post(f"{site.url}/login", data=form, allow_redirects=False) as response:
        return response.status


async def test_anyone_sees_the_gateway_and_live_values_but_no_secret(site: Site) -> None:
    site.dust_monitor.set("pm10", 37.5)
    async with aiohttp.ClientSession() as http:
        for _ in range(50):
            overview = await _text(http, f"{site.url}/")
            if "connected to 127.0.0.1" in overview and 'class="online">online' in overview:
                break
            await asyncio.sleep(0.1)
        assert "gw-test-01" in overview and "330106001001" in overview
        assert 'class="online">online' in overview and "connected to 127.0.0.1" in overview
        for _ in range(50):
            device = await _text(http, f"{site.url}/devices/dust-01")
            if "<td>pm10</td><td class=num>37.5</td><td>µg/m³</td>" in device:
                break
            await asyncio.sleep(0.1)
        assert "<td>pm10</td><td class=num>37.5</td><td>µg/m³</td>" in device, device
        status = await _text(http, f"{site.url}/api/status")
        for page in (overview, device, status):
            assert SECRET not in page
        async with http.get(f"{site.url}/log", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/login?next=/log"
        async with http.get(f"{site.url}/devices/no-such") as response:
            assert response.status == 404


async def test_login_is_rate_limited_and_acknowledge_needs_the_session_and_its_csrf_token(site: Site) -> None:
    site.dust_monitor.set("pm10", 400.0)
    raised = await site.subscriber.wait_for(
        lambda m: (
            m.topic.endswith("/events") and m.payload["state"] == "raised" and m.payload["facet"] == "level"
        )
    )
    event_id = raised.payload["event_id"]
    ack_url = f"{site.url}/events/{event_id}/ack"
    async with (
        aiohttp.ClientSession() as stranger,
        stranger.post(ack_url, data={"csrf": "x"}, allow_redirects=False) as response,
    ):
        assert response.status == 401, "nobody logged in"

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as tech:
        assert await _login(tech, site) == 303
        events = await _text(tech, f"{site.url}/events")
        csrf = re.search(r'name="csrf" value="([^"]+)"', events)
        assert csrf is not None and event_id in events
        async with tech.post(ack_url, data={"csrf": "forged"}, allow_redirects=False) as response:
            assert response.status == 403
        cross_site = {"Origin": "http://evil.example"}
        async with tech.post(
            ack_url, data={"csrf": csrf.group(1)}, headers=cross_site, allow_redirects=False
        ) as response:
            assert response.status == 403
        async with tech.post(ack_url, data={"csrf": csrf.group(1)}, allow_redirects=False) as response:
            assert response.status == 303
        acked = await site.subscriber.wait_for(
            lambda m: m.topic.endswith("/events") and m.payload["state"] == "acknowledged"
        )
        assert acked.payload["event_id"] == event_id and acked.payload["acknowledged_by"] == "tech"
        assert "acknowledged by tech" in await _text(tech, f"{site.url}/events")
        assert "Recent log" in await _text(tech, f"{site.url}/log")

        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as guesser:  # from the same address as the technician
            assert [await _login(guesser, site, "guess") for _ in range(5)] == [401] * 5
            assert await _login(guesser, site) == 429, (
                "locked out after five failures, even with the password"
            )
        assert "acknowledged by tech" in await _text(tech, f"{site.url}/events"), "a session goes on"

        await asyncio.sleep(2.2)  # session_ttl_s = 2 without use
        async with tech.post(ack_url, data={"csrf": csrf.group(1)}, allow_redirects=False) as response:
            assert response.status == 401, "the session expired"


async def test_a_page_left_open_follows_the_gateway_through_the_live_stream(site: Site) -> None:
    async def until_the_new_value_arrives(stream: aiohttp.ClientResponse) -> None:
        async for line in stream.content:
            if line.startswith(b"data: ") and b"<td>noise</td><td class=num>91.5</td>" in line:
                return
        raise AssertionError("the stream ended without the new value")

    async with aiohttp.ClientSession() as http, http.get(f"{site.url}/live?page=/devices/dust-01") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        site.dust_monitor.set("noise", 91.5)
        await asyncio.wait_for(until_the_new_value_arrives(stream), timeout=10)


async def test_metrics_for_the_operations_team(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(50):
            text = await _text(http, f"{site.url}/metrics")
            acked = re.search(r"^gridgate_uplink_published_total ([0-9.e+]+)$", text, re.M)
            online = re.search(r'^gridgate_device_up\{device="dust-01",state="online"\} 1.0$', text, re.M)
            if acked and float(acked.group(1)) > 0 and online:
                break
            await asyncio.sleep(0.1)
    polls = re.search(r'^gridgate_device_polls_total\{device="dust-01"\} ([0-9.e+]+)$', text, re.M)
    assert polls is not None and float(polls.group(1)) > 0
    assert online, text
    assert re.search(r"^gridgate_uplink_connected 1.0$", text, re.M)
    for name in (
        "gridgate_device_poll_seconds_total",
        "gridgate_outbox_messages",
        "gridgate_uplink_puback_seconds_total",
        "gridgate_detection_seconds_total",
        "gridgate_storage_free_bytes",
        "gridgate_process_resident_bytes",
    ):
        assert re.search(rf"^{name}(\{{[^}}]*\}})? [0-9.e+-]+$", text, re.M), name


def test_a_plain_password_in_the_config_is_refused_with_the_way_to_hash_it() -> None:
    from contracts.errors import ConfigError
    from gateway.config import parse_config

    text = '[gateway]\nid = "g"\nsite = "s"\ngrid_cell = "C"\n[uplink]\nhost = "h"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text + '[web]\nusers = { tech = "hunter2" }\n')
    assert caught.value.problems == [
        "web.users: user 'tech': not a password hash: make one with `gridgate web-password`"
    ]


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
HEADER = (29, 53, 87)
BACKGROUND = (244, 245, 247)
ONLINE_GREEN = (26, 127, 55)


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 800)], ids=["phone", "laptop"])
async def test_the_page_in_a_real_browser_fits_phone_and_laptop_widths(
    site: Site, tmp_path: Path, width: int, height: int
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Chromium comes from the distribution (firmware_tools/bootstrap.sh test installs it)"
    async with aiohttp.ClientSession() as http:
        for _ in range(50):
            if 'class="online">online' in await _text(http, f"{site.url}/"):
                break
            await asyncio.sleep(0.1)
    shot = tmp_path / "page.png"
    browser = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={width},{height}",
        f"--screenshot={shot}",
        f"{site.url}/",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await asyncio.wait_for(browser.wait(), timeout=60) == 0
    pixels = read_png(shot.read_bytes())
    assert pixels.shape == (height, width, 3)
    header_row = pixels[5]
    assert (header_row == HEADER).all(axis=1).mean() > 0.95, "the header spans the width"
    right_edge = pixels[150:, width - 4]
    assert (right_edge == BACKGROUND).all(), "nothing runs past the right edge"
    body = pixels[130:]
    assert (body.sum(axis=2) < 200).sum() > 500, "text is drawn"
    assert (body == ONLINE_GREEN).all(axis=2).any(), "the device shows as online, in green"


async def test_health_carries_the_summary_the_metrics_endpoint_exports(site: Site) -> None:
    site.dust_monitor.set("pm10", 400.0)
    health = (
        await site.subscriber.wait_for(
            lambda m: (
                m.topic.endswith("/health")
                and m.payload["events"]["alarm"].get("raised", 0) >= 1
                and m.payload["uplink"]["puback_ms"] is not None
                and m.payload["detection"]["ms_per_batch"] is not None
            ),
            timeout=20,
        )
    ).payload
    async with aiohttp.ClientSession() as http:
        text = await _text(http, f"{site.url}/metrics")

    def sample(name: str) -> float:
        found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
        assert found, name
        return float(found.group(1))

    uplink, detection = health["uplink"], health["detection"]
    assert uplink["connected"] and uplink["connections"] == sample("gridgate_uplink_connections_total") == 1
    assert uplink["reconnects"] == 0
    assert 0 < uplink["published"] <= sample("gridgate_uplink_published_total")
    assert uplink["published_per_s"] > 0 and uplink["puback_ms"] > 0
    assert 0 < detection["batches"] <= sample("gridgate_detection_batches_total")
    assert detection["ms_per_batch"] > 0
    assert health["process"]["cpu_percent"] is not None
    open_events = re.findall(r"^gridgate_open_events\{(.*)\} (\S+)$", text, re.M)
    raised = [
        float(n) for labels, n in open_events if 'class="alarm"' in labels and 'state="raised"' in labels
    ]
    assert raised == [1.0], text
    assert health["events"] == {"alarm": {"raised": 1}, "fault": {}, "anomaly": {}}


DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"


async def test_the_grafana_dashboard_queries_what_the_endpoint_exports_and_all_of_it(site: Site) -> None:
    async with aiohttp.ClientSession() as http:
        text = await _text(http, f"{site.url}/metrics")
    exported = set(re.findall(r"^# TYPE (gridgate_\w+) ", text, re.M))
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    queried = {
        name: p["title"]
        for p in panels
        for target in p["targets"]
        for name in re.findall(r"\bgridgate_\w+", target["expr"])
    }
    variables = {
        name
        for v in dashboard["templating"]["list"]
        for name in re.findall(r"\bgridgate_\w+", v["definition"])
    }
    missing = {name: title for name, title in queried.items() if name not in exported}
    assert not missing, f"panels query metrics the gateway does not export: {missing}"
    assert variables <= exported, variables - exported
    assert exported <= set(queried), f"no panel shows {sorted(exported - set(queried))}"


LEAN_SERVER = """
import asyncio, sys
from gateway.web import server
client = {"aiohttp.client", "aiohttp.client_reqrep", "aiohttp.connector", "aiohttp.cookiejar"}
loaded = sorted(m for m in sys.modules if m in client or m.startswith("prometheus_client"))
assert not loaded, loaded
web = server.web

async def hello(request):
    return web.Response(text="served")

async def main():
    runner = web.AppRunner(web.Application())
    runner.app.router.add_get("/", hello)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    import aiohttp  # another user of aiohttp in the process gets the whole library
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as response:
        print(response.status, await response.text(), aiohttp.web.Application is web.Application)
    await runner.cleanup()

asyncio.run(main())
"""


async def test_the_server_loads_without_aiohttp_s_client_and_the_client_still_works_after() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LEAN_SERVER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().split() == ["200", "served", "True"]
