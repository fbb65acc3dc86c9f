"""Apply a checked config bundle: write it, run with it, watch, then commit or roll back.

The steps, each leaving the box with one whole config in force:

1. The trusted state (``remote/trusted.json``) records that an apply is under
   way and the config text in force now (written atomically, as every file
   here).
2. The new config (and its profiles) replaces the site config file; the
   bundle is kept under ``bundles/`` with the last ``KEEP_BUNDLES``.
3. The daemon puts the new config in force: piecewise when only devices,
   the drivers' shared sections or ``[commands]`` changed (only the runners
   of what changed restart; the uplink, the detection engine and every other
   device run on), else by restarting the whole runtime in-process (the
   outbox stays open, detection state is saved and restored across it).
4. Health window: the uplink is connected, every device online before is
   online again (unless the new config took it out), every stream it started
   is open and no task failed, within ``[commands] apply_window_s``.
5. Commit: one write of the trusted state takes the new version and clears the
   pending apply. Or roll back: the previous config text goes back into the
   file and is put in force the same way (piecewise undoes piecewise), the
   pending apply is cleared, and the status says why.

After a power cut or ``kill -9`` before the commit, :func:`recover` (run before
the config is loaded) finds the apply pending and puts the previous config
back: the old config is in force. After the commit the new one is.
Progress and outcome are published, retained, on ``config/status``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from contracts.errors import ConfigError
from gateway.config.load import parse_config
from gateway.config.models import GatewayConfig
from gateway.outbox import Outbox, Priority
from gateway.remote.bundles import BundleRefused, CheckedBundle, check_bundle
from gateway.remote.trusted_state import (
    TrustedState,
    TrustedStateError,
    load_trusted,
    save_trusted,
    write_atomically,
)
from gateway.timestamps import iso_utc

log = logging.getLogger(__name__)

STATUS_TOPIC = "config/status"
BUNDLE_TOPIC = "config/bundle"
KEPT = "remote/bundles"
KEEP_BUNDLES = 5
HEALTH_POLL_S = 0.1


class Outcome(str, Enum):
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"
    REFUSED = "refused"


@dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    version: int  # the bundle's (0 when it could not be read)
    in_force: int  # the version in force afterwards
    reasons: tuple[str, ...] = ()
    seconds: float = 0.0
    changes: Changes | None = None  # how it was put in force (None: it was not)


class Changes(Protocol):
    """How a config was put in force (gateway.service.changes.ConfigChanges)."""

    def as_status(self) -> dict[str, Any]: ...


class Runtime(Protocol):
    """What the applier needs of the daemon: put a config in force, and see its health."""

    config: GatewayConfig

    async def apply_config(self, config: GatewayConfig) -> Changes: ...
    def settle(self) -> None: ...
    def online_devices(self) -> set[str]: ...
    def uplink_connected(self) -> bool: ...
    def task_restarts(self) -> Mapping[str, int]: ...
    def last_failure(self, task: str) -> str: ...
    def opening(self) -> set[str]: ...


def recover(config_path: Path, storage: Path) -> bool:
    """Undo an apply that did not commit (power cut, kill -9): True if the old config was put back."""
    try:
        state = load_trusted(storage)
    except TrustedStateError as exc:
        log.error("config: %s; the config file is left as it is", exc)
        return False
    if state.previous is None:
        return False
    write_atomically(config_path, state.previous)
    save_trusted(storage, replace(state, previous=None))
    log.warning("config: an apply was cut short before its commit; the config in force before it is back")
    return True


class ConfigApplier:
    """Takes bundles one at a time for a running daemon whose site config is ``config_path``."""

    def __init__(
        self,
        runtime: Runtime,
        outbox: Outbox,
        *,
        config_path: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runtime = runtime
        self._outbox = outbox
        self._path = config_path
        self._storage = runtime.config.storage.directory
        self._clock = clock
        self._lock = asyncio.Lock()
        self._in_force = config_path.read_text(encoding="utf-8")  # what a rollback puts back

    async def apply_local(self) -> ApplyResult:
        """A technician's edit of the config file (SIGHUP): the same validation, window and rollback."""
        async with self._lock:
            started = time.monotonic()
            try:
                current = load_trusted(self._storage)
                text = self._path.read_text(encoding="utf-8")
                config = parse_config(text, source=str(self._path), config_dir=self._path.parent)
            except ConfigError as exc:
                log.warning("config: the edited file is not applied (%s)", exc)
                return self._report(
                    ApplyResult(Outcome.REFUSED, current.version, current.version, ("invalid", *exc.problems))
                )
            except (OSError, TrustedStateError) as exc:
                return self._report(ApplyResult(Outcome.REFUSED, 0, 0, ("unreadable", str(exc))))
            edit = CheckedBundle(
                version=current.version,
                expires=0,
                config=config,
                config_text=text,
                profiles={},
                signed_by=("a local edit",),
                digest=current.digest,
            )
            result = await self._apply(edit, current, started)
            if result.outcome is Outcome.ROLLED_BACK:  # the edit is kept for the technician to fix
                write_atomically(self._path.with_name(self._path.name + ".rejected"), text)
            return self._report(result)

    async def apply_bundle(self, raw: bytes) -> ApplyResult:
        """Check ``raw`` and, if it passes, apply it; the status topic says what happened."""
        async with self._lock:  # a burst of bundles: one after the other, each against the last
            started = time.monotonic()
            try:
                current = load_trusted(self._storage)
                checked = check_bundle(
                    raw,
                    trust=self._runtime.config.commands,
                    local=self._runtime.config,
                    current_version=current.version,
                    now=self._clock(),
                )
                _same_storage(checked.config, self._runtime.config)
            except BundleRefused as exc:
                log.warning("config: bundle refused (%s)", exc)
                version = _claimed_version(raw)
                reasons = (exc.code, *exc.problems)
                return self._report(ApplyResult(Outcome.REFUSED, version, current.version, reasons))
            except TrustedStateError as exc:
                return self._report(ApplyResult(Outcome.REFUSED, 0, 0, ("trusted_state", str(exc))))
            result = await self._apply(checked, current, started)
            return self._report(result)

    async def _apply(self, bundle: CheckedBundle, current: TrustedState, started: float) -> ApplyResult:
        previous_config = self._runtime.config
        previous_text = self._in_force
        online_before = self._runtime.online_devices()
        restarts_before = self._runtime.task_restarts()
        # A stream that could not open before either (its platform's broker is down) is not this
        # apply's fault; one that was open, or is new, must open again.
        not_open_before = self._runtime.opening()
        self._status("applying", bundle.version, current.version, ())
        save_trusted(self._storage, replace(current, previous=previous_text))  # pending, step 1
        self._keep(bundle)
        for name, text in bundle.profiles.items():
            write_atomically(self._path.parent / "profiles" / name, text)
        write_atomically(self._path, bundle.config_text)
        log.info("config: applying version %d (signed by %s)", bundle.version, ", ".join(bundle.signed_by))
        changes = await self._runtime.apply_config(bundle.config)
        kept = {d.id for d in bundle.config.devices}  # a device taken out need not come back
        window_s = bundle.config.commands.apply_window_s
        problems = await self._watch(online_before & kept, restarts_before, not_open_before, window_s)
        if not problems:
            save_trusted(self._storage, TrustedState(version=bundle.version, digest=bundle.digest))  # commit
            self._runtime.settle()
            self._in_force = bundle.config_text
            log.info("config: version %d committed", bundle.version)
            return ApplyResult(
                Outcome.COMMITTED, bundle.version, bundle.version, (), time.monotonic() - started, changes
            )
        log.warning("config: version %d rolled back: %s", bundle.version, "; ".join(problems))
        write_atomically(self._path, previous_text)
        await self._runtime.apply_config(previous_config)
        self._runtime.settle()
        save_trusted(self._storage, current)  # nothing pending, the old version in force
        return ApplyResult(
            Outcome.ROLLED_BACK,
            bundle.version,
            current.version,
            tuple(problems),
            time.monotonic() - started,
            changes,
        )

    async def _watch(
        self,
        online_before: set[str],
        restarts_before: Mapping[str, int],
        not_open_before: set[str],
        window_s: float,
    ) -> list[str]:
        """Wait up to ``window_s`` for health; what is still wrong at the end (nothing: healthy)."""
        deadline = time.monotonic() + window_s
        while True:
            problems = []
            if not self._runtime.uplink_connected():
                problems.append("the uplink is not connected")
            missing = sorted(online_before - self._runtime.online_devices())
            if missing:
                problems.append(f"device(s) online before are not online again: {', '.join(missing)}")
            opening = sorted(self._runtime.opening() - not_open_before)
            if opening:
                problems.append(f"not open yet: {', '.join(opening)}")
            now = self._runtime.task_restarts()
            failed = sorted(
                name
                for name, n in now.items()
                if n > restarts_before.get(name, 0) and name not in not_open_before
            )
            if failed:
                named = [f"{name} ({self._runtime.last_failure(name)})" for name in failed]
                problems.append(f"task(s) failed since the apply: {'; '.join(named)}")
                return problems  # a failure does not heal by waiting
            if not problems or time.monotonic() >= deadline:
                return problems
            await asyncio.sleep(HEALTH_POLL_S)

    def _keep(self, bundle: CheckedBundle) -> None:
        kept = self._storage / KEPT
        write_atomically(kept / f"{bundle.version:010d}.toml", bundle.config_text)
        for old in sorted(kept.glob("*.toml"))[:-KEEP_BUNDLES]:
            old.unlink()

    def _report(self, result: ApplyResult) -> ApplyResult:
        self._status(
            result.outcome.value,
            result.version,
            result.in_force,
            result.reasons,
            seconds=result.seconds,
            changes=result.changes,
        )
        return result

    def _status(
        self,
        state: str,
        version: int,
        in_force: int,
        reasons: Sequence[str],
        *,
        seconds: float = 0.0,
        changes: Changes | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "ts": iso_utc(self._clock()),
            "state": state,
            "version": version,
            "in_force": in_force,
            "reasons": list(reasons),
        }
        if seconds:
            body["seconds"] = round(seconds, 3)
        if changes is not None:
            body["apply"] = changes.as_status()
        self._outbox.enqueue(Priority.STATE, STATUS_TOPIC, body, retain=True)


def _claimed_version(raw: bytes) -> int:
    """The version a refused bundle claims, for its status; 0 when it cannot be read."""
    try:
        version = json.loads(raw)["bundle"]["version"]
    except (ValueError, KeyError, TypeError):
        return 0
    return version if isinstance(version, int) and version >= 0 else 0


def _same_storage(new: GatewayConfig, old: GatewayConfig) -> None:
    if new.storage.directory != old.storage.directory:
        raise BundleRefused(
            "invalid",
            [
                f"storage.directory: a bundle cannot move the gateway's state ({old.storage.directory} → "
                f"{new.storage.directory}); change it on the box"
            ],
        )


BundleHandler = Callable[[bytes], Awaitable[ApplyResult]]
