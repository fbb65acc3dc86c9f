"""Figures of signed config bundles: push → committed, rollback, and a staged rollout with a bad canary.

N gateways run in this process (each a full daemon with its own outbox and
two Modbus TCP dust monitors, all on one local Mosquitto). A good bundle that
changes a rule goes to one gateway (push → committed, as the maintainer sees
it; the whole runtime restarts); one that changes only dust-02's register map
goes to it (piecewise: only that device's poller restarts), and for both the
longest gap in dust-01's telemetry around the apply is measured on the
broker, with its statuses and the uplink's connections; a bundle that points
dust-01 at a dead port goes to one (push → rolled back, piecewise, which
includes the health window); then a broken bundle is rolled out to all N,
canary first (it stops there), and a good one to all N.

    .venv/bin/python -m benchmarks.remote_bench [--gateways 10] [--window-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.simulators.dust_monitor import CHANNELS
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.broker_target import BrokerTarget
from firmware_tools.fleet import push, rollout
from firmware_tools.local_broker import LocalBroker, free_port
from gateway.config import parse_config
from gateway.remote.bundles import sign_bundle
from gateway.remote.signing import public_key_text
from gateway.service.daemon import Daemon

PREFIX = "bench/v1"


def _shared(
    broker: int,
    device: int,
    key: Ed25519PrivateKey,
    window_s: float,
    *,
    high: float = 150.0,
    dust02: int | None = None,
    scale: float = 1.0,
) -> str:
    def channels(scale: float) -> str:
        return ",\n".join(
            f'{{ id = "{c.id}", address = {c.address}, type = "{c.type}", scale = {scale} }}'
            for c in CHANNELS
        )

    second = (
        '[[devices]]\nid = "dust-02"\ndriver = "modbus_tcp"\nhost = "127.0.0.1"\n'
        f"port = {dust02 or device}\npoll_interval_s = 0.2\ntimeout_s = 0.3\nretry_max_s = 0.5\n"
        f"channels = [\n{channels(scale)}\n]\n"
    )
    return second + (
        f'[uplink]\nhost = "127.0.0.1"\nport = {broker}\ntopic_prefix = "{PREFIX}"\nreconnect_min_s = 0.1\n'
        f"[commands]\napply_window_s = {window_s}\ngroups = ['bench']\n"
        f'[commands.keys.maint]\npublic_key = "{public_key_text(key.public_key())}"\nrole = "maintainer"\n'
        '[[devices]]\nid = "dust-01"\ndriver = "modbus_tcp"\nhost = "127.0.0.1"\n'
        f"port = {device}\npoll_interval_s = 0.2\ntimeout_s = 0.3\nretry_max_s = 0.5\n"
        f"channels = [\n{channels(1.0)}\n]\n"
        f'[[rules]]\ndevice = "dust-01"\nchannel = "pm10"\nhigh = {high}\ncategory = "env.dust.pm10"\n'
    )


def _bundle(config: str, version: int, key: Ed25519PrivateKey) -> bytes:
    body = {
        "format": 1,
        "version": version,
        "expires": int(time.time()) + 3600,
        "targets": {"groups": ["bench"]},
        "config": config,
        "profiles": {},
    }
    return json.dumps(sign_bundle(body, key, "maint")).encode()


class _Watch:
    """What a command center sees of one gateway during an apply: dust-01's readings and status, births."""

    def __init__(self, broker: int, gateway: str) -> None:
        self._client = aiomqtt.Client("127.0.0.1", broker)
        self._root = f"{PREFIX}/{gateway}"
        self.readings: list[float] = []  # dust-01's telemetry timestamps
        self.not_online = 0
        self.births = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Watch:
        await self._client.__aenter__()
        await self._client.subscribe(f"{self._root}/#", qos=1)
        self._task = asyncio.create_task(self._collect())
        await asyncio.sleep(0.5)  # retained messages in, readings before the push
        self.not_online = self.births = 0
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._client.__aexit__(None, None, None)

    async def _collect(self) -> None:
        async for message in self._client.messages:
            topic = str(message.topic)
            if not isinstance(message.payload, bytes) or not message.payload:
                continue
            body = json.loads(message.payload)
            if topic == f"{self._root}/telemetry/dust-01":
                self.readings.append(datetime.fromisoformat(body["ts"].replace("Z", "+00:00")).timestamp())
            elif topic == f"{self._root}/devices/dust-01/status" and body["state"] != "online":
                self.not_online += 1
            elif topic == f"{self._root}/state" and body.get("state") == "online" and not message.retain:
                self.births += 1

    def longest_gap(self) -> float:
        ts = sorted(self.readings)
        return max((b - a for a, b in itertools.pairwise(ts)), default=float("nan"))


async def _start(root: Path, gateway: str, shared: str) -> tuple[Daemon, asyncio.Task[None]]:
    storage = root / gateway
    storage.mkdir()
    text = (
        f'[gateway]\nid = "{gateway}"\nsite = "bench"\ngrid_cell = "C1"\n[storage]\ndirectory = "{storage}"\n'
    )
    path = storage / "site.toml"
    path.write_text(text + shared)
    daemon = Daemon(parse_config(path.read_text()), config_digest="bench", config_path=path, flush_s=0.5)
    task = asyncio.create_task(daemon.run(), name=gateway)
    await asyncio.wait_for(daemon.ready.wait(), 120)
    return daemon, task


async def bench(gateways: int, window_s: float) -> None:
    key = Ed25519PrivateKey.generate()
    device = SimulatedModbusDevice(CHANNELS)
    for channel in device.channels:
        device.set(channel, 20.0)
    await device.serve_tcp("127.0.0.1", free_port())
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as scratch:
        target = BrokerTarget("127.0.0.1", broker.port, prefix=PREFIX)
        good = _shared(broker.port, device.port, key, window_s, high=120.0)
        rescaled = _shared(broker.port, device.port, key, window_s, high=120.0, scale=0.1)
        dead = _shared(broker.port, free_port(), key, window_s, high=120.0, dust02=device.port, scale=0.1)
        names = [f"gw-{i:03d}" for i in range(gateways)]
        started = time.monotonic()
        running = [
            await _start(Path(scratch), n, _shared(broker.port, device.port, key, window_s)) for n in names
        ]
        print(f"{gateways} gateways ready in {time.monotonic() - started:.1f} s")
        await asyncio.sleep(2.0)  # every device polled once: online before the first apply
        try:
            first = running[0][0]
            for version, config, what in (
                (1, good, "a rule changed"),
                (2, rescaled, "dust-02's register map"),
            ):
                async with _Watch(broker.port, names[0]) as watch:
                    uplink = first.uplink
                    t0 = time.monotonic()
                    outcome = await push(
                        target, _bundle(config, version, key), names[:1], version=version, timeout_s=60
                    )
                    elapsed = time.monotonic() - t0
                    await asyncio.sleep(1.5)  # dust-01's readings after the apply reach the broker
                state = outcome[names[0]]
                apply = state.get("apply", {})
                kept = "kept" if first.uplink is uplink else "rebuilt"
                print(
                    f"push → {state['state']} on one gateway ({what}; {apply.get('path')}, restarted "
                    f"{apply.get('restarted') or 'everything'}): {elapsed:.2f} s (gateway's own figure "
                    f"{state.get('seconds')} s); dust-01: longest telemetry gap {watch.longest_gap():.2f} s "
                    f"(poll every 0.2 s), {watch.not_online} status(es) not online; "
                    f"uplink client {kept}, births {watch.births}"
                )
            t0 = time.monotonic()
            outcome = await push(target, _bundle(dead, 3, key), names[:1], version=3, timeout_s=60)
            state = outcome[names[0]]
            print(
                f"push → {state['state']} (dust-01 dead, {state.get('apply', {}).get('path')}, window "
                f"{window_s:g} s): {time.monotonic() - t0:.2f} s"
            )
            t0 = time.monotonic()
            broken = await rollout(target, _bundle(dead, 4, key), names, canary=1, timeout_s=60)
            pushed = sum(o["state"] != "not_pushed" for o in broken.outcomes.values())
            print(
                f"rollout of a bad bundle to {gateways}: stopped by {broken.stopped_by} "
                f"after {pushed} pushed, {time.monotonic() - t0:.2f} s"
            )
            t0 = time.monotonic()
            fine = await rollout(target, _bundle(good, 5, key), names, canary=1, timeout_s=120)
            committed = sum(o["state"] == "committed" for o in fine.outcomes.values())
            print(
                f"rollout of a good bundle to {gateways} (canary, then the rest): {committed}/{gateways} "
                f"committed in {time.monotonic() - t0:.2f} s"
            )
        finally:
            for daemon, _ in running:
                daemon.stop()
            await asyncio.gather(*(task for _, task in running), return_exceptions=True)
    await device.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateways", type=int, default=10)
    parser.add_argument("--window-s", type=float, default=3.0, help="[commands] apply_window_s")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(bench(args.gateways, args.window_s))


if __name__ == "__main__":
    main()
