"""Camera figures: receiver throughput, push → event latency, snapshot fetch time, flood bounds.

Part 1 runs the camera receiver alone and N simulated cameras pushing
Hikvision ``EventNotificationAlert`` XML (and, with ``--picture-kb``, a JPEG
of that size as multipart) as fast as they are answered; it prints pushes
accepted per second. Pushers and receiver share this process (one core), so
the figure is a lower bound for the receiver.
Part 2 starts Mosquitto and the gateway (in this process) with one camera and
a rule on its line-crossing channel, pushes active/inactive alarms and prints
the latency from the push being sent to the raised event arriving at an MQTT
subscriber (outbox fsync included), p50/p99.
Part 3 fetches snapshots from the camera simulator with digest auth, p50/p99,
and runs the gateway with a Modbus sensor and a camera in its grid cell: the
time from the sensor's raised event to the ``updated`` event carrying the
camera's snapshot, both at an MQTT subscriber, p50/p99.
Part 4 floods the receiver with pictures into an evidence store bounded at
``--store-mb`` and prints its bytes on disk and this process's RSS.

    python benchmarks/camera_bench.py [--cameras 20] [--seconds 5] [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import aiomqtt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.evidence import SnapshotSource  # noqa: E402
from drivers.camera.config import CameraDeviceConfig, CameraReceiver  # noqa: E402
from drivers.camera.receiver import CameraStream  # noqa: E402
from drivers.modbus.registers import ModbusChannel  # noqa: E402
from drivers.simulators.camera import CameraSimulator, hikvision_alert  # noqa: E402
from drivers.simulators.jpeg import jpeg  # noqa: E402
from drivers.simulators.modbus_device import SimulatedModbusDevice  # noqa: E402
from firmware_tools.local_broker import LocalBroker, free_port  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.evidence.fetch import fetch_snapshot  # noqa: E402
from gateway.evidence.store import EvidenceStore  # noqa: E402
from gateway.service.daemon import Daemon  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def throughput(
    cameras: int, seconds: float, picture_kb: int, store: EvidenceStore | None = None
) -> float:
    devices = [
        CameraDeviceConfig.model_validate({"id": f"cam-{i:03d}", "driver": "camera"}) for i in range(cameras)
    ]
    receiver = CameraReceiver(host="127.0.0.1", port=free_port(), rate_per_s=10_000, burst=10_000)
    stream = CameraStream(devices, receiver=receiver)
    accepted = [0]
    if store is not None:
        keep = store

        def stored(device: str, ts: float, data: bytes) -> None:
            keep.put(device, ts, data)

        stream.picture = stored
    await stream.open()
    runner = asyncio.create_task(stream.run(lambda batch: None))
    picture = jpeg(256, 256, seed=1) if picture_kb else None
    if picture is not None:
        picture = picture + b"\x00" * max(0, picture_kb * 1024 - len(picture))  # padding after EOI
    deadline = time.perf_counter() + seconds

    async def camera(i: int, session: aiohttp.ClientSession) -> None:
        url = f"http://127.0.0.1:{stream.port}/cameras/cam-{i:03d}"
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            body = hikvision_alert("motion", active=n % 2 == 1, count=n)
            if picture is None:
                data: object = body
                headers = {"Content-Type": "application/xml"}
            else:
                form = aiohttp.FormData()
                form.add_field("event", body, content_type="application/xml", filename="event.xml")
                unique = picture + n.to_bytes(4, "big") + i.to_bytes(2, "big")  # every picture its own digest
                form.add_field("picture", unique, content_type="image/jpeg", filename="picture.jpg")
                data, headers = form, {}
            async with session.post(url, data=data, headers=headers) as response:
                await response.read()
                accepted[0] += response.status == 200

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=cameras)) as session:
        await asyncio.gather(*(camera(i, session) for i in range(cameras)))
    elapsed = time.perf_counter() - started
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    await stream.aclose()
    return accepted[0] / elapsed


HEADER = """
[gateway]
id = "gw-bench"
site = "bench"
grid_cell = "330106001001"

[uplink]
host = "127.0.0.1"
port = {broker}
topic_prefix = "bench/cam"

[storage]
directory = "{storage}"

[events]
flap_window_s = 0

[cameras]
host = "127.0.0.1"
port = {receiver}
"""

SITE = (
    HEADER
    + """rate_per_s = 10000
burst = 10000

[[devices]]
id = "cam-01"
driver = "camera"
channels = [{{ id = "line_crossing" }}]

[[rules]]
device = "cam-01"
channel = "line_crossing"
high = 0.5
hysteresis = 0.0
hold_s = 0.0
category = "security.line_crossing"
"""
)


async def latency(events: int) -> list[float]:
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        receiver = free_port()
        config = parse_config(SITE.format(broker=broker.port, storage=tmp, receiver=receiver))
        daemon = Daemon(config, config_digest="bench")
        task = asyncio.create_task(daemon.run())
        await asyncio.wait_for(daemon.ready.wait(), 120)
        assert daemon.uplink is not None
        await asyncio.wait_for(daemon.uplink.connected.wait(), 10)
        url = f"http://127.0.0.1:{receiver}/cameras/cam-01"
        found: list[float] = []
        async with aiomqtt.Client("127.0.0.1", broker.port) as sub, aiohttp.ClientSession() as session:
            await sub.subscribe("bench/cam/gw-bench/events", qos=1)
            messages = sub.messages
            for _ in range(events):
                sent = time.perf_counter()
                async with session.post(url, data=hikvision_alert("line_crossing")) as response:
                    await response.read()
                async for message in messages:
                    payload = json.loads(message.payload)
                    if payload["state"] == "raised":
                        found.append(time.perf_counter() - sent)
                        break
                async with session.post(url, data=hikvision_alert("line_crossing", active=False)) as response:
                    await response.read()
                async for message in messages:
                    if json.loads(message.payload)["state"] == "cleared":
                        break
        daemon.stop()
        await task
    return found


SENSOR_SITE = (
    HEADER
    + """
[[devices]]
id = "smoke-01"
driver = "modbus_tcp"
host = "127.0.0.1"
port = {modbus}
poll_interval_s = 0.05
channels = [{{ id = "alarm", address = 0 }}]

[[devices]]
id = "cam-01"
driver = "camera"
channels = [{{ id = "intrusion" }}]

[devices.snapshot]
url = "{snapshot}"
username = "admin"
password_file = "{secret}"

[[rules]]
device = "smoke-01"
channel = "alarm"
high = 0.5
category = "fire.smoke"
"""
)


async def snapshot_attached(events: int) -> list[float]:
    """Sensor alarm raised → the same event updated with a snapshot, both as the subscriber sees them."""
    sensor = SimulatedModbusDevice([ModbusChannel(id="alarm", address=0)])
    modbus = free_port()
    await sensor.serve_tcp("127.0.0.1", modbus)
    found: list[float] = []
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        secret = Path(tmp) / "cam.pw"
        secret.write_text("camera-pass\n")
        secret.chmod(0o600)
        async with CameraSimulator(width=640, height=480) as camera:
            site = SENSOR_SITE.format(
                broker=broker.port,
                storage=Path(tmp) / "state",
                receiver=free_port(),
                modbus=modbus,
                snapshot=camera.snapshot_url,
                secret=secret,
            )
            daemon = Daemon(parse_config(site), config_digest="bench")
            task = asyncio.create_task(daemon.run())
            await asyncio.wait_for(daemon.ready.wait(), 120)
            assert daemon.uplink is not None
            await asyncio.wait_for(daemon.uplink.connected.wait(), 10)
            async with aiomqtt.Client("127.0.0.1", broker.port) as sub:
                await sub.subscribe("bench/cam/gw-bench/events", qos=1)
                messages = sub.messages
                for _ in range(events):
                    sensor.set("alarm", 1)
                    raised_at = None
                    async for message in messages:
                        payload = json.loads(message.payload)
                        if payload["state"] == "raised":
                            raised_at = time.perf_counter()
                        elif raised_at is not None and any(
                            e.get("kind") == "snapshot" for e in payload.get("evidence", ())
                        ):
                            found.append(time.perf_counter() - raised_at)
                            break
                    sensor.set("alarm", 0)
                    async for message in messages:
                        if json.loads(message.payload)["state"] == "cleared":
                            break
            daemon.stop()
            await task
    await sensor.stop()
    return found


async def fetch_times(n: int) -> list[float]:
    times = []
    async with CameraSimulator(width=640, height=480) as camera:
        with tempfile.NamedTemporaryFile("w", suffix=".pw") as secret:
            secret.write("camera-pass\n")
            secret.flush()
            source = SnapshotSource(
                url=camera.snapshot_url, username="admin", password_file=Path(secret.name)
            )
            for _ in range(n):
                started = time.perf_counter()
                await fetch_snapshot("cam-01", source)
                times.append(time.perf_counter() - started)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--store-mb", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for picture_kb in (0, 100):
        rate = await throughput(args.cameras, args.seconds, picture_kb)
        print(f"receiver, {args.cameras} cameras, picture {picture_kb} KB: {rate:,.0f} pushes/s accepted")
    found = await latency(args.events)
    print(
        f"camera push → raised event at the subscriber ({len(found)} events): "
        f"p50 {_pct(found, 0.5) * 1000:.1f} ms, p99 {_pct(found, 0.99) * 1000:.1f} ms"
    )
    times = await fetch_times(100)
    print(
        f"snapshot fetch, digest auth, 640×480: p50 {_pct(times, 0.5) * 1000:.1f} ms,"
        f" p99 {_pct(times, 0.99) * 1000:.1f} ms"
    )
    attached = await snapshot_attached(min(args.events, 100))
    print(
        f"sensor alarm raised → snapshot attached, at the subscriber ({len(attached)} alarms): "
        f"p50 {_pct(attached, 0.5) * 1000:.1f} ms, p99 {_pct(attached, 0.99) * 1000:.1f} ms"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rss_before = _rss_mb()
        store = EvidenceStore(Path(tmp), max_bytes=args.store_mb * 1024 * 1024, retention_s=86_400)
        rate = await throughput(args.cameras, args.seconds, 200, store)
        on_disk = sum(p.stat().st_size for p in Path(tmp).glob("*.jpg")) / 1024 / 1024
        print(
            f"flood with 200 KB pictures at {rate:,.0f} pushes/s: store {on_disk:.1f} MB on disk "
            f"(bound {args.store_mb} MB, {store.dropped} dropped),"
            f" peak RSS {rss_before:.0f} → {_rss_mb():.0f} MB"
        )


if __name__ == "__main__":
    asyncio.run(main())
