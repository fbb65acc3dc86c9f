"""The daemon: one TaskGroup of named tasks (pollers, streams, uplink, background), each supervised.

A task that fails is restarted with backoff and a batch that fails is counted
for its device (see ``supervisor``): one fault never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt

from contracts.compat import TaskGroup
from gateway import __version__
from gateway.config.models import GatewayConfig
from gateway.detect import jit
from gateway.detect.cache import has_compiled_kernels, kernel_cache_dir
from gateway.detect.engine import DetectionEngine
from gateway.detect.persist import load_state, save_state
from gateway.events import AlarmBook
from gateway.events.correlate import Correlator, cells_of
from gateway.events.lifecycle import EventDesk
from gateway.evidence.desk import evidence_desk
from gateway.outbox import Outbox
from gateway.poll import PollPacing
from gateway.poll.availability import Availability
from gateway.remote.apply import BUNDLE_TOPIC, ApplyResult, ConfigApplier
from gateway.remote.auth import Authoriser
from gateway.remote.commands import CommandHandler, event_commands
from gateway.remote.evidence import evidence_commands
from gateway.remote.maintenance import MaintenanceHooks, maintenance_commands
from gateway.remote.relay import relay_commands
from gateway.service.changes import ConfigChanges, changes_between
from gateway.service.devices import DeviceStates
from gateway.service.diagnostics import LogTail, diagnostics_bundle
from gateway.service.health import HEALTH_TOPIC, MISSED_BEFORE_STALE, HealthReport
from gateway.service.outputs import Outputs, RuleOutputs
from gateway.service.piecewise import Reconfigurable, UnitTasks, channel_units
from gateway.service.pipeline import Pipeline
from gateway.service.runners import Running, Unit, UnitRun, build_unit, heard, units_of
from gateway.service.supervisor import Supervisor
from gateway.service.systemd import notify
from gateway.service.watchdog import Check, feed_watchdog, poller_check, uplink_check, watchdog_interval_s
from gateway.uplink import UplinkClient
from gateway.uplink.connection import CONNECT_TIMEOUT_S

if TYPE_CHECKING:
    from gateway.web.server import StatusServer

log = logging.getLogger(__name__)

SILENCE_CHECK_S = 1.0
WRITE_BACK_S = 1.0


class Daemon:
    """Runs the gateway until :meth:`stop`; then flushes the outbox for up to ``flush_s``."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_digest: str,
        flush_s: float = 5.0,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path  # given: signed bundles may replace it (gateway.remote.apply)
        self.config_digest = config_digest
        self.flush_s = flush_s
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.uplink: UplinkClient | None = None
        self.running = Running()
        self.web: StatusServer | None = None  # when [web] is configured
        self.outbox: Outbox | None = None
        self.supervisor = Supervisor()
        self.log_tail = LogTail()  # the recent log, for the log_tail and diagnostics commands
        self.applier: ConfigApplier | None = None
        self._next_config: GatewayConfig | None = None  # set: the runtime restarts with it
        self._fallback: GatewayConfig | None = None  # while an apply is watched: the config before it
        self._live: Reconfigurable | None = None  # while a runtime runs: what takes a change in place
        self._stop_requested = False
        self._applying: set[asyncio.Task[ApplyResult]] = set()

    def stop(self) -> None:
        self._stop_requested = True
        self._stopping.set()

    async def restart_with(self, config: GatewayConfig) -> None:
        """Stop the runtime and start it again with ``config``; the outbox stays open."""
        self._next_config = config
        self.ready.clear()
        self._stopping.set()
        await self.ready.wait()

    async def apply_config(self, config: GatewayConfig) -> ConfigChanges:
        """Put ``config`` in force: piecewise where only devices, driver sections or trust changed.

        Otherwise the whole runtime restarts with it. Until :meth:`settle`, a
        runtime that fails with the new config goes back to the one before.
        """
        changes = changes_between(self.config, config)
        if self._fallback is None:  # a rollback keeps the config from before the apply
            self._fallback = self.config
        live = self._live
        if changes.whole or live is None:
            await self.restart_with(config)
        elif changes.changed:
            await live.apply(config, changes.removed)
            self.config = config
        log.info("config: %s", changes.describe())
        return changes

    def settle(self) -> None:
        """The apply is committed or rolled back: a failure from now on is not the new config's."""
        self._fallback = None

    def online_devices(self) -> set[str]:
        return {d.device for d in self.running.availability if d.state == "online"}

    def uplink_connected(self) -> bool:
        return self.uplink is not None and self.uplink.connected.is_set()

    def task_restarts(self) -> dict[str, int]:
        return dict(self.supervisor.restarts)

    def opening(self) -> set[str]:
        """Streams started and not open yet (a listener binding its port)."""
        return set() if self._live is None else set(self._live.tasks.opening)

    def last_failure(self, task: str) -> str:
        return self.supervisor.last_failure.get(task, "")

    def reload(self) -> None:
        """SIGHUP: apply the edited config file the way a bundle is applied (window, rollback)."""
        if self.applier is None:
            log.warning("reload: this daemon was started without a config file; restart it instead")
            return
        self._start_apply(self.applier.apply_local())

    async def _take_bundle(self, client: object, message: aiomqtt.Message) -> None:
        assert self.applier is not None
        payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
        self._start_apply(self.applier.apply_bundle(payload))

    def _start_apply(self, apply: Coroutine[Any, Any, ApplyResult]) -> None:
        task = asyncio.create_task(apply, name="config-apply")
        self._applying.add(task)  # outlives the runtime it restarts; the lock queues a burst
        task.add_done_callback(self._applying.discard)

    async def run(self) -> None:
        cfg = self.config
        outbox = Outbox(cfg.storage.directory, cfg.gateway.id, max_bytes=cfg.storage.max_bytes)
        self.outbox = outbox
        logging.getLogger().addHandler(self.log_tail)
        if self.config_path is not None:
            self.applier = ConfigApplier(self, outbox, config_path=self.config_path)
        try:
            while True:
                try:
                    await self._run(outbox)
                except Exception as exc:
                    if self._fallback is None or self._stop_requested:
                        raise
                    self._fall_back(exc)
                if self._next_config is None or self._stop_requested:
                    break
                self.config, self._next_config = self._next_config, None
                self._stopping.clear()
        finally:
            for task in self._applying:
                task.cancel()
            logging.getLogger().removeHandler(self.log_tail)
            outbox.close()

    def _fall_back(self, exc: Exception) -> None:
        """The runtime failed with a config under apply: start the one before, and count the failure."""
        assert self._fallback is not None
        why = f"{type(exc).__name__}: {exc}"
        log.error("config: the runtime failed with the new config (%s); starting the one before", why)
        self.supervisor.failed("runtime", why)
        self._next_config, self._fallback = self._fallback, None
        self._stopping.clear()

    async def _run(self, outbox: Outbox) -> None:
        cfg = self.config
        engine = DetectionEngine(
            cfg.rules, cfg.cross_rules, cfg.multivariate, timezone_name=cfg.detection.timezone
        )
        compile_s = await self._warm_up(engine)
        if compile_s is None:
            return
        log.info("detection: %d subject(s), kernels ready in %.2f s", len(engine.subjects), compile_s)
        units = channel_units(cfg)  # updated in place by a piecewise apply, as are the cells
        cells = cells_of(cfg)
        facets = [engine.facet_names(i) for i in range(len(engine.subjects))]
        alarms = AlarmBook(cfg.gateway, engine.subjects, facets, units, outbox)
        desk = EventDesk(alarms, engine.rules, cfg.events)
        evidence = evidence_desk(cfg, alarms)
        Correlator(cfg.correlations, alarms, cells=cells, default_cell=cfg.gateway.grid_cell)
        restored = load_state(cfg.storage.directory, engine)
        engine.restore_events(desk.restore())
        log.info("detection: state of %d subject(s) restored", restored)
        pipeline = Pipeline(
            engine,
            desk,
            outbox,
            telemetry_commit_s=cfg.storage.telemetry_commit_s,
            telemetry_coalesce_s=cfg.storage.telemetry_coalesce_s,
        )
        supervisor = self.supervisor
        states = DeviceStates(cfg.gateway, outbox, [d.id for d in cfg.devices], supervisor)
        commands = CommandHandler(
            event_commands(desk, states.events),
            authoriser=Authoriser(cfg.commands, gateway_id=cfg.gateway.id, store=outbox),
            topic_prefix=cfg.uplink.topic_prefix,
        )
        if evidence.store is not None:
            commands.register(evidence_commands(evidence.store, chunk_bytes=cfg.evidence.chunk_bytes))
        self.uplink = client = UplinkClient(
            cfg.uplink,
            cfg.gateway,
            outbox,
            version=__version__,
            config_digest=self.config_digest,
            commands=commands,
        )
        polled_batch = supervisor.guard(pipeline.accept)
        pacing = PollPacing(client.behind)

        def build(unit: Unit) -> UnitRun:
            run = build_unit(unit, polled_batch, states.changed, pacing=pacing)
            for stream in run.runners.streams:
                stream.picture = evidence.picture
            return run

        self.running = running = Running()
        for unit in units_of(cfg).values():
            running.add(build(unit))
        running.reindex(cfg)
        devices = running.availability
        outputs = Outputs(running.pollers)  # the list a piecewise change updates in place
        rule_outputs = RuleOutputs(alarms, engine.subjects, [*cfg.rules, *cfg.cross_rules], outputs)
        commands.register(relay_commands(outputs.switch, roles=cfg.commands.relay_roles))
        health = HealthReport(
            outbox,
            devices,
            cfg.storage.directory,
            supervisor,
            uplink=client,
            pipeline=pipeline,
            open_events=lambda: [*alarms.open_alarms, *states.events.open_events],
            every_s=cfg.uplink.health_s,
            streams=running.streams,
            pacing=pacing,
        )
        tail = self.log_tail
        commands.register(
            maintenance_commands(
                MaintenanceHooks(
                    pollers=running.pollers,
                    restart_device=self._restart_device,
                    rebirth=client.rebirth,
                    log_lines=tail.lines,
                    diagnostics=lambda: diagnostics_bundle(
                        config=self.config,  # a piecewise apply replaces it
                        config_digest=self.config_digest,
                        outbox=outbox,
                        pollers=devices,
                        supervisor=supervisor,
                        health=health.body,
                        log_tail=tail,
                    ),
                )
            )
        )
        if self.applier is not None:
            client.subscribe(BUNDLE_TOPIC, self._take_bundle)
        client.on_connect(lambda: states.publish_all(devices))
        client.on_connect(health.publish)
        client.expire_after(HEALTH_TOPIC, MISSED_BEFORE_STALE * cfg.uplink.health_s)
        # Every batch of a stream is a heartbeat; a stream that answers its devices (HJ 212 CN 9014)
        # hands each batch on only once it is on disk, the others join the telemetry's group commit.
        stored = heard(running.heartbeats, supervisor.guard(pipeline.accept_committed))
        grouped = heard(running.heartbeats, supervisor.guard(pipeline.accept))
        keep = supervisor.keep_running
        on_config: list[Callable[[GatewayConfig], None]] = [
            lambda new: commands.trust(Authoriser(new.commands, gateway_id=new.gateway.id, store=outbox)),
            lambda new: commands.register(relay_commands(outputs.switch, roles=new.commands.relay_roles)),
        ]

        def removed(device: Availability) -> None:
            states.removed(device)
            pipeline.latest.pop(device.device, None)

        try:
            async with TaskGroup() as tasks:
                flushing = asyncio.Event()  # set once nothing more will be enqueued
                uplink = tasks.create_task(keep("uplink", lambda: client.run(flushing)), name="uplink")
                unit_tasks = UnitTasks(
                    tasks, supervisor, build=build, feed_for=lambda s: stored if s.answers else grouped
                )
                for run in running.units.values():
                    unit_tasks.start(run)
                background = [
                    tasks.create_task(keep(name, start), name=name)
                    for name, start in (
                        ("events", lambda: desk.run(self._stopping)),
                        ("evidence", evidence.run),
                        ("outputs", rule_outputs.run),
                        ("detection-state", lambda: self._save_detection(engine)),
                        ("detection-silence", lambda: self._watch_silence(pipeline)),
                        ("device-states", lambda: states.refresh(devices)),
                        ("heartbeats", running.heartbeats.run),
                        ("health", health.run),
                        ("outbox-write-back", lambda: self._write_back(outbox)),
                    )
                ]
                commits = tasks.create_task(
                    keep("telemetry-commit", pipeline.telemetry.run), name="telemetry-commit"
                )
                if cfg.web is not None:
                    from gateway.web.server import StatusServer  # aiohttp loads only when the page is on
                    from gateway.web.view import GatewayView

                    view = GatewayView(
                        config=cfg,
                        outbox=outbox,
                        watches=devices,
                        alarms=alarms,
                        device_events=states.events,
                        pipeline=pipeline,
                        uplink=self.uplink,
                        buses=running.buses,
                    )
                    self.web = StatusServer(cfg.web, view, commands)
                    on_config.append(view.reconfigure)
                    background.append(tasks.create_task(self.web.run(self._stopping), name="web"))
                watchdog_s = watchdog_interval_s()
                if watchdog_s is not None:
                    background.append(
                        tasks.create_task(feed_watchdog(watchdog_s, self._progress_checks()), name="watchdog")
                    )
                log.info(
                    "gateway %s: %d device(s), %d open alarm(s), %d message(s) waiting; event loop %s",
                    cfg.gateway.id,
                    len(cfg.devices),
                    len(alarms.open_alarms),
                    outbox.pending(),
                    type(asyncio.get_running_loop()).__module__.split(".")[0],
                )
                self._live = Reconfigurable(
                    cfg, running, unit_tasks, units=units, cells=cells, removed=removed, on_config=on_config
                )
                notify("READY=1")
                self.ready.set()
                try:
                    await self._stopping.wait()
                finally:
                    self._live = None
                restarting = self._next_config is not None and not self._stop_requested
                notify("RELOADING=1" if restarting else "STOPPING=1")
                for poller in running.pollers:
                    poller.stop()
                feeds = unit_tasks.all()
                for task in (*feeds, *background):
                    task.cancel()
                commits.cancel()
                await asyncio.wait([*feeds, *background, commits])  # last telemetry committed first
                running.close()
                error = save_state(cfg.storage.directory, engine)
                if error is not None:
                    log.warning("stop: detection state not saved (%s); the last saved copy is kept", error)
                outbox.write_back()
                flushing.set()
                await asyncio.wait([uplink], timeout=min(self.flush_s, 1.0) if restarting else self.flush_s)
                if not uplink.done():
                    log.warning("stop: %d message(s) left on disk for the next start", outbox.pending())
                    uplink.cancel()
        except BaseException:  # a runtime that failed: its ports are free for the next one
            running.close()
            raise

    async def _warm_up(self, engine: DetectionEngine) -> float | None:
        """Compile or load the kernels in a thread, so a SIGTERM meanwhile stops the daemon at once.

        None when stopped first: the thread is a daemon thread and dies with the process.
        """
        if jit.COMPILED is not None:
            log.info("detection: kernels compiled ahead of time, from %s", jit.COMPILED)
        elif has_compiled_kernels():
            log.info(
                "detection: loading compiled kernels from %s (JIT; `gridgate warm` compiles them ahead of"
                " time, which saves about 110 MB)",
                kernel_cache_dir(),
            )
        else:
            log.info(
                "detection: compiling detection kernels into %s, first start only; "
                "this takes a while (a minute or more on a Raspberry Pi)",
                kernel_cache_dir(),
            )
            notify("STATUS=compiling detection kernels (first start only)")
        loop = asyncio.get_running_loop()
        compiled: asyncio.Future[float] = loop.create_future()

        def work() -> None:
            try:
                seconds = engine.warm_up()
            except BaseException as exc:  # handed to the loop, raised there
                loop.call_soon_threadsafe(_settle, compiled, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, compiled, seconds, None)

        threading.Thread(target=work, name="kernel-compile", daemon=True).start()
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([compiled, stopping], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
        finally:
            stopping.cancel()
        if not compiled.done():
            log.warning("stop: stopped while the kernels compiled; the next start compiles them again")
            return None
        return compiled.result()

    def _progress_checks(self) -> list[Check]:
        assert self.uplink is not None
        cfg = self.config.uplink
        limit = cfg.reconnect_max_s + CONNECT_TIMEOUT_S + 2 * cfg.keepalive_s + 30
        running = self.running

        def pollers(now: float) -> str | None:  # the pollers running now: a piecewise apply changes them
            return next((r for p in running.pollers if (r := poller_check(p)(now)) is not None), None)

        return [uplink_check(self.uplink, limit_s=limit), pollers]

    async def _restart_device(self, device: str) -> bool:
        """The ``restart`` command for a device a stream receives from: its whole unit restarts."""
        return self._live is not None and await self._live.restart_device(device)

    async def _save_detection(self, engine: DetectionEngine) -> None:
        """Save windows, day counters and baselines now and then, so a crash loses little."""
        failing: OSError | None = None
        while True:
            await asyncio.sleep(self.config.detection.state_save_s)
            error = save_state(self.config.storage.directory, engine)
            if error is not None and failing is None:  # once when it starts failing, once when it stops
                log.warning("detection state not saved (%s); the last saved copy is kept", error)
            elif error is None and failing is not None:
                log.info("detection state saved again")
            failing = error

    async def _write_back(self, outbox: Outbox) -> None:
        """What a full disk refused goes to disk as soon as it takes writes again."""
        while True:
            await asyncio.sleep(WRITE_BACK_S)
            outbox.write_back()

    async def _watch_silence(self, pipeline: Pipeline) -> None:
        """A device that sends nothing sends no NaN either: look for silent channels."""
        while True:
            await asyncio.sleep(SILENCE_CHECK_S)
            pipeline.check_silence(time.time())


def _settle(future: asyncio.Future[float], result: float | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
