"""HJ 212 listener under a flood of slow connections: how many real dataloggers still get in.

The listener (in this process, ``max_connections`` 60 as in the field config
the issue quotes) is first filled by slow clients that send one byte of a
frame every 5 s and reconnect 0.5 s after being closed; then N real dataloggers
connect, each from its own address, and send a real-time frame a second
asking for an answer. Printed per scenario: the dataloggers that got at
least one 9014 answer, the answers, and what the listener counted.

Scenarios: the slow clients all from one address; each from its own address.

    python benchmarks/hj212_flood_bench.py [--slow 200] [--dataloggers 20] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from drivers.hj212.codec import Frame  # noqa: E402
from drivers.hj212.config import Hj212DeviceConfig, Hj212Listener  # noqa: E402
from drivers.hj212.framing import FrameSplitter  # noqa: E402
from drivers.hj212.stream import Hj212Stream  # noqa: E402
from drivers.simulators.hj212_datalogger import Hj212Datalogger  # noqa: E402
from firmware_tools.local_broker import free_port  # noqa: E402

MAX_CONNECTIONS = 60
ZONE = ZoneInfo("Asia/Shanghai")


async def slow_client(port: int, address: str, stop: asyncio.Event) -> None:
    """One byte every 5 s, forever; reconnects 0.5 s after the gateway closes or refuses it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        except OSError:
            await asyncio.sleep(0.5)
            continue
        try:
            for byte in b"##0101QN=20160801085857223;ST=32;CN=2011;" * 100:
                if stop.is_set() or reader.at_eof():
                    break
                writer.write(bytes([byte]))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(reader.read(1), 5.0)  # b"" when the gateway closes it
        except OSError:
            pass
        finally:
            writer.close()
        await asyncio.sleep(0.5)


async def real_datalogger(port: int, address: str, logger: Hj212Datalogger, stop: asyncio.Event) -> int:
    """Send a real-time frame a second (reconnecting when cut off); the 9014 answers received."""
    answers = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        except OSError:
            await asyncio.sleep(1.0)
            continue
        splitter = FrameSplitter()
        try:
            while not stop.is_set():
                due = loop.time() + 1.0
                writer.write(logger.realtime_frame(loop.time() - started, datetime.now(ZONE)))
                await writer.drain()
                with contextlib.suppress(asyncio.TimeoutError):
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                    if not data:
                        break
                    answers += sum(isinstance(f, Frame) and f.cn == "9014" for f in splitter.feed(data))
                await asyncio.sleep(max(0.0, due - loop.time()))
        except OSError:
            pass
        finally:
            writer.close()
        await asyncio.sleep(1.0)
    return answers


async def scenario(name: str, slow: int, n: int, seconds: float, one_address: bool) -> None:
    port = free_port()
    devices = [
        Hj212DeviceConfig.model_validate(
            {
                "id": f"dust-{i:02d}",
                "driver": "hj212",
                "mn": f"REAL{i:04d}",
                "pw": "123456",
                "channels": [{"id": "pm10", "code": "a34002", "unit": "µg/m³"}],
            }
        )
        for i in range(n)
    ]
    listener = Hj212Listener(host="127.0.0.1", port=port, max_connections=MAX_CONNECTIONS)
    stream = Hj212Stream(devices, listener=listener)
    stop = asyncio.Event()
    async with stream:
        running = asyncio.create_task(stream.run(lambda batch: None), name="hj212-under-flood")
        attackers = [
            asyncio.create_task(
                slow_client(port, "127.0.2.1" if one_address else f"127.0.2.{i % 250 + 1}", stop),
                name=f"slow-{i}",
            )
            for i in range(slow)
        ]
        await asyncio.sleep(3.0)  # the flood fills the listener first
        held = len(stream.links)
        loggers = [Hj212Datalogger(mn=f"REAL{i:04d}", pw="123456", seed=i) for i in range(n)]
        real = [
            asyncio.create_task(real_datalogger(port, f"127.0.1.{i + 1}", lg, stop), name=f"real-{i}")
            for i, lg in enumerate(loggers)
        ]
        await asyncio.sleep(seconds)
        stop.set()
        answers = await asyncio.gather(*real)
        for task in [*attackers, running]:
            task.cancel()
        await asyncio.gather(*attackers, running, return_exceptions=True)
    c = stream.counters
    admitted = sum(a > 0 for a in answers)
    print(f"{name}: {slow} slow clients, {n} real dataloggers, {seconds:.0f} s")
    print(f"  slow connections holding slots when the dataloggers came: {held} of {MAX_CONNECTIONS}")
    print(f"  real dataloggers answered: {admitted} of {n}; 9014 answers {sum(answers)}")
    refused = c.refused_connections
    refused_text = dict(refused) if isinstance(refused, dict) else refused
    evicted, late = getattr(c, "evicted_connections", "-"), getattr(c, "first_frame_timeouts", "-")
    print(f"  listener: refused {refused_text}, evicted {evicted}, first-frame timeouts {late}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--dataloggers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for name, one in (("flood from one address", True), ("flood from many addresses", False)):
        asyncio.run(scenario(name, args.slow, args.dataloggers, args.seconds, one))


if __name__ == "__main__":
    main()
