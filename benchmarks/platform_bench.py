"""Platform bridge figures: messages mapped per second on one core, 1,000 devices.

Half the devices are LoRa manhole covers behind ChirpStack v4 (base64 bytes
through the cover profile's byte layout and status table), half NB-IoT smoke
detectors behind China Telecom AEP (property paths and the detector's status
table). Each sends ``--messages`` messages with rising counters and times.

Part 1 (no broker): the envelope + decode step alone, then the bridge's whole
per-message path (``PlatformStream.handle``: size check, format, device
lookup, duplicate and late checks, decode, counters, ``on_batch``).
Part 2: Mosquitto stands in for both platforms; a separate process publishes
every message at QoS 1 as fast as the broker takes them, the two bridge
streams (their own QoS 1 subscriptions) run in this process, and the figure
is batches out per wall second and per CPU second of this process.
Part 3: a steady ``--rate`` for ``--seconds``, each message stamped with the
time it is published; the figure is that time to the batch handed on (p50/p99)
and the bridge's share of a core.

    python benchmarks/platform_bench.py [--devices 1000] [--messages 20] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.compat import tomllib  # noqa: E402
from contracts.readings import ReadingBatch  # noqa: E402
from drivers.modbus.profiles import SHIPPED_PROFILES  # noqa: E402
from drivers.platform import (  # noqa: E402
    DeviceDecoder,
    PlatformConnection,
    PlatformDeviceConfig,
    PlatformStream,
    reader,
)
from drivers.simulators.platform_devices import (  # noqa: E402
    ALARM,
    OPEN,
    REPORT,
    SMOKE,
    chirpstack_up,
    cover_payload,
    smoke_report,
)
from firmware_tools.local_broker import LocalBroker  # noqa: E402

PUBLISHER = """
import sys, paho.mqtt.client as mqtt
port, path = int(sys.argv[1]), sys.argv[2]
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.max_inflight_messages_set(256)
client.max_queued_messages_set(0)
client.connect("127.0.0.1", port)
client.loop_start()
infos = []
with open(path, "rb") as f:
    for line in f:
        topic, _, payload = line.rstrip(b"\\n").partition(b"\\t")
        infos.append(client.publish(topic.decode(), payload, qos=1))
for info in infos:
    info.wait_for_publish()
client.loop_stop()
client.disconnect()
"""


PACED = """
import sys, time, paho.mqtt.client as mqtt
sys.path.insert(0, sys.argv[5])
from drivers.simulators.platform_devices import REPORT, chirpstack_up, cover_payload, smoke_report
port, rate, seconds, devices = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
client.connect("127.0.0.1", port)
client.loop_start()
start, n = time.time(), 0
while n < rate * seconds:
    i, r = n % devices, n // devices + 1
    now = time.time()
    if i % 2:
        data = cover_payload(REPORT, tilt_deg=0.5)
        client.publish(*chirpstack_up(f"a8404100{i // 2:08x}", r, data, ts=now), qos=1)
    else:
        client.publish("aep/dataReport", smoke_report(f"8603740{i // 2:08d}", 0, ts=now), qos=1)
    n += 1
    time.sleep(max(0.0, start + n / rate - time.time()))
time.sleep(1.0)
client.loop_stop()
client.disconnect()
"""


def profile_device(name: str, **entry: object) -> PlatformDeviceConfig:
    document = tomllib.loads((SHIPPED_PROFILES / f"{name}.toml").read_text(encoding="utf-8"))
    channels = document.pop("channels")
    document.pop("description")
    return PlatformDeviceConfig.model_validate({**document, **entry, "channels": channels})


def fleet(devices: int) -> tuple[list[PlatformDeviceConfig], list[PlatformDeviceConfig]]:
    covers = [
        profile_device("lora-manhole-cover", id=f"cover-{i:04d}", platform="lora", match=f"a8404100{i:08x}")
        for i in range(devices // 2)
    ]
    smoke = [
        profile_device("nbiot-smoke-detector", id=f"smoke-{i:04d}", platform="aep", match=f"8603740{i:08d}")
        for i in range(devices - devices // 2)
    ]
    return covers, smoke


def messages(covers: int, smoke: int, rounds: int, t0: float) -> list[tuple[str, bytes]]:
    """Round by round, every device once: what the platforms publish."""
    out: list[tuple[str, bytes]] = []
    for r in range(rounds):
        ts = t0 + r * 60.0
        for i in range(covers):
            alarm = r % 10 == 5
            data = cover_payload(
                ALARM if alarm else REPORT, OPEN if alarm else 0, tilt_deg=0.3 + r % 7, water_cm=r
            )
            out.append(chirpstack_up(f"a8404100{i:08x}", r + 1, data, ts=ts))
        for i in range(smoke):
            out.append(
                ("aep/dataReport", smoke_report(f"8603740{i:08d}", SMOKE if r % 10 == 5 else 0, ts=ts))
            )
    return out


def connections(port: int) -> tuple[PlatformConnection, PlatformConnection]:
    lora = PlatformConnection(id="lora", host="127.0.0.1", port=port, format="chirpstack_v4")
    aep = PlatformConnection(id="aep", host="127.0.0.1", port=port, format="nbiot_json", topics=("aep/#",))
    return lora, aep


def decode_only(devices: int, rounds: int) -> tuple[float, float]:
    """Messages/s of format + decode alone, and of the stream's whole handle()."""
    covers, smoke = fleet(devices)
    lora, aep = connections(1883)
    batch = messages(len(covers), len(smoke), rounds, time.time() - 86_400)
    read = {"lora": reader(lora), "aep": reader(aep)}
    decoders = {d.match_key: DeviceDecoder(d) for d in covers + smoke}
    started = time.process_time()
    for topic, payload in batch:
        envelope = read["aep" if topic.startswith("aep") else "lora"](topic, payload)
        decoders[envelope.ids[0]].decode(envelope, envelope.time or 0.0)
    decode_rate = len(batch) / (time.process_time() - started)
    streams = {"lora": PlatformStream(lora, covers), "aep": PlatformStream(aep, smoke)}
    out: list[ReadingBatch] = []
    for stream in streams.values():
        stream.on_batch = out.append
    started = time.process_time()
    for topic, payload in batch:
        streams["aep" if topic.startswith("aep") else "lora"].handle(topic, payload)
    handle_rate = len(batch) / (time.process_time() - started)
    assert len(out) == len(batch), f"{len(out)} batches for {len(batch)} messages"
    return decode_rate, handle_rate


async def through_broker(devices: int, rounds: int) -> None:
    covers, smoke = fleet(devices)
    batch = messages(len(covers), len(smoke), rounds, time.time() - 86_400)
    # Mosquitto drops QoS 1 messages for a subscriber past 1,000 queued (its default); here
    # the publisher outruns the bridge on purpose, so the queue may hold the whole run.
    queue = f"max_queued_messages {len(batch)}\n"
    with LocalBroker(extra_config=queue) as broker, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messages.tsv"
        path.write_bytes(b"".join(topic.encode() + b"\t" + payload + b"\n" for topic, payload in batch))
        lora, aep = connections(broker.port)
        streams = [PlatformStream(lora, covers), PlatformStream(aep, smoke)]
        count = 0
        done = asyncio.Event()
        first: list[float] = []

        def on_batch(_: ReadingBatch) -> None:
            nonlocal count
            if not first:
                first.append(time.perf_counter())
            count += 1
            if count == len(batch):
                done.set()

        async def feed(stream: PlatformStream) -> None:
            async with stream:
                await stream.run(on_batch)

        tasks = [asyncio.create_task(feed(s), name=s.name) for s in streams]
        while not all(s.connected for s in streams):
            await asyncio.sleep(0.05)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISHER, str(broker.port), str(path)
        )
        try:
            await asyncio.wait_for(done.wait(), 120)
        except asyncio.TimeoutError:
            print(f"  only {count:,} of {len(batch):,} batches came out in 120 s")
        finally:
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            await publisher.wait()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        dropped = sum(sum(c.errors.values()) + c.duplicates for s in streams for c in s.counters.values())
        print(f"through Mosquitto, QoS 1, {devices} devices × {rounds} messages = {len(batch):,} messages:")
        print(f"  batches out {count:,} (refused {dropped}) in {wall:.2f} s wall, {cpu:.2f} s CPU here")
        print(
            f"  {count / wall:,.0f} messages/s wall, {count / cpu:,.0f} messages per CPU-second of the bridge"
        )


async def latency(devices: int, rate: float, seconds: float) -> None:
    """Platform message time (stamped when published) to the batch handed on, at a steady rate."""
    covers, smoke = fleet(devices)
    with LocalBroker() as broker:
        lora, aep = connections(broker.port)
        streams = [PlatformStream(lora, covers), PlatformStream(aep, smoke)]
        delays: list[float] = []
        streams_cpu = time.process_time()

        def on_batch(batch: ReadingBatch) -> None:
            delays.append(time.time() - float(batch.ts[0]))

        async def feed(stream: PlatformStream) -> None:
            async with stream:
                await stream.run(on_batch)

        tasks = [asyncio.create_task(feed(s), name=s.name) for s in streams]
        while not all(s.connected for s in streams):
            await asyncio.sleep(0.05)
        streams_cpu, wall0 = time.process_time(), time.perf_counter()
        args = [str(broker.port), str(rate), str(seconds), str(devices), str(ROOT)]
        publisher = await asyncio.create_subprocess_exec(sys.executable, "-c", PACED, *args)
        await publisher.wait()
        cpu, wall = time.process_time() - streams_cpu, time.perf_counter() - wall0
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    ms = sorted(d * 1000 for d in delays)
    q = statistics.quantiles(ms, n=100) if len(ms) > 1 else ms * 99
    print(f"steady {rate:,.0f} messages/s for {seconds:.0f} s over {devices} devices: {len(ms):,} batches")
    print(f"  platform message → batch: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, max {ms[-1]:.1f} ms")
    print(f"  bridge CPU {100 * cpu / wall:.0f} % of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20, help="messages per device")
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s for the latency part")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency part")
    args = parser.parse_args()
    decode_rate, handle_rate = decode_only(args.devices, args.messages)
    print(f"format + decode to a batch, no broker: {decode_rate:,.0f} messages/s (CPU)")
    print(f"whole bridge path (handle: lookup, duplicate/late checks, decode): {handle_rate:,.0f} messages/s")
    asyncio.run(through_broker(args.devices, args.messages))
    asyncio.run(latency(args.devices, args.rate, args.seconds))


if __name__ == "__main__":
    main()
