"""The supervisor: one TaskGroup with a named task per poller and one for the uplink."""

from __future__ import annotations

import asyncio
import logging

from drivers import registry
from gateway import __version__
from gateway._compat import TaskGroup
from gateway.config.models import GatewayConfig
from gateway.detect.engine import DetectionEngine
from gateway.events import AlarmBook
from gateway.outbox import Outbox
from gateway.poll import DevicePoller
from gateway.service.pipeline import Pipeline
from gateway.service.systemd import notify
from gateway.uplink import UplinkClient

log = logging.getLogger(__name__)


class Daemon:
    """Runs the gateway until :meth:`stop`; then flushes the outbox for up to ``flush_s``."""

    def __init__(self, config: GatewayConfig, *, config_digest: str, flush_s: float = 5.0) -> None:
        self.config = config
        self.config_digest = config_digest
        self.flush_s = flush_s
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.uplink: UplinkClient | None = None
        self.pollers: list[DevicePoller] = []

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        cfg = self.config
        outbox = Outbox(cfg.storage.directory, cfg.gateway.id, max_bytes=cfg.storage.max_bytes)
        try:
            await self._run(outbox)
        finally:
            outbox.close()

    async def _run(self, outbox: Outbox) -> None:
        cfg = self.config
        engine = DetectionEngine(cfg.rules)
        log.info("detection: %d rule(s), kernels ready in %.2f s", len(cfg.rules), engine.warm_up())
        units = {(d.id, ch.id): ch.unit for d in cfg.devices for ch in d.channels}
        alarms = AlarmBook(cfg.gateway, cfg.rules, units, outbox)
        engine.restore(alarms.restore())
        pipeline = Pipeline(
            engine, alarms, outbox, telemetry_commit_s=cfg.storage.telemetry_commit_s
        )
        self.uplink = UplinkClient(
            cfg.uplink, cfg.gateway, outbox, version=__version__, config_digest=self.config_digest
        )
        self.pollers = [DevicePoller(registry.create(d), pipeline.accept) for d in cfg.devices]
        async with TaskGroup() as tasks:
            flushing = asyncio.Event()  # set once nothing more will be enqueued
            uplink = tasks.create_task(self.uplink.run(flushing), name="uplink")
            polls = [tasks.create_task(p.run(), name=f"poll:{p.device}") for p in self.pollers]
            commits = tasks.create_task(pipeline.telemetry.run(), name="telemetry-commit")
            log.info(
                "gateway %s: %d device(s), %d open alarm(s), %d message(s) waiting",
                cfg.gateway.id, len(self.pollers), len(alarms.open_alarms), outbox.pending(),
            )
            notify("READY=1")
            self.ready.set()
            await self._stopping.wait()
            notify("STOPPING=1")
            for poll in polls:
                poll.cancel()
            commits.cancel()
            await asyncio.wait([*polls, commits])  # last telemetry committed before the flush
            flushing.set()
            await asyncio.wait([uplink], timeout=self.flush_s)
            if not uplink.done():
                log.warning("stop: %d message(s) left on disk for the next start", outbox.pending())
                uplink.cancel()
