"""A datalogger that got its CN 9014 never sends the frame again: killed right after, nothing is lost.

The test is the datalogger: it sends real-time frames asking for an answer,
each with a pm10 value of its own choosing, and kill -9s the gateway the
moment the last answer arrives. After a restart, every answered value must
reach the command center. The values are the ground truth, not the outbox.
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from pathlib import Path

from drivers.hj212.codec import Frame, encode, parse
from firmware_tools.local_broker import LocalBroker, free_port
from tests.helpers import Received, Subscriber
from tests.test_chaos import daemon
from tests.test_hj212_end_to_end import MN, _site

FRAMES = 10


def _frame(n: int, pm10: float) -> bytes:
    now = datetime.now()
    header = (
        ("QN", now.strftime("%Y%m%d%H%M%S") + f"{n:03d}"),
        ("ST", "39"),
        ("CN", "2011"),
        ("PW", "123456"),
        ("MN", MN),
        ("Flag", "5"),
    )
    cp = (
        (("DataTime", now.strftime("%Y%m%d%H%M%S")),),
        (("a34002-Rtd", f"{pm10:.2f}"), ("a34002-Flag", "N")),
    )
    return encode(Frame(header, cp))


async def _connect(port: int, timeout: float = 60.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert time.monotonic() < deadline, "the gateway never listened"
            await asyncio.sleep(0.2)


async def test_readings_answered_with_9014_survive_a_kill_right_after_the_answer(
    broker: LocalBroker, subscriber: Subscriber, topic_prefix: str, tmp_path: Path
) -> None:
    listen_port = free_port()
    config = tmp_path / "site.toml"
    config.write_text(_site(broker.port, listen_port, tmp_path / "state", topic_prefix))
    log = tmp_path / "gateway.log"
    answered: list[float] = []
    latencies: list[float] = []
    with daemon(config, log) as first:
        reader, writer = await _connect(listen_port)
        await subscriber.wait_for(lambda m: m.payload.get("state") == "online", timeout=60)
        try:
            for n in range(FRAMES):
                pm10 = 40.0 + n + 0.25  # a value the gateway cannot have from anywhere else
                sent = time.monotonic()
                writer.write(_frame(n, pm10))
                answer = parse((await asyncio.wait_for(reader.readline(), 10)).rstrip(b"\r\n"))
                latencies.append(time.monotonic() - sent)
                assert answer.cn == "9014"
                answered.append(pm10)
            first.send_signal(signal.SIGKILL)  # at once: the datalogger has its answers
            first.wait()
        finally:
            writer.close()
    with daemon(config, log):
        for pm10 in answered:

            def carries(m: Received, v: float = pm10) -> bool:
                return "/telemetry/" in m.topic and bool(m.payload["readings"].get("pm10") == v)

            await subscriber.wait_for(carries, timeout=60)
    latencies.sort()
    median, worst = latencies[len(latencies) // 2] * 1000, latencies[-1] * 1000
    print(f"\n9014 then kill -9: {len(answered)} answered, all delivered after restart;", end=" ")
    print(f"answer latency median {median:.1f} ms, max {worst:.1f} ms")
