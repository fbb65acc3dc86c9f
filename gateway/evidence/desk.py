"""Evidence for events: the picture a camera pushed with its alarm, snapshots for a sensor alarm.

A camera's own event opens with the picture it pushed (within
``push_window_s``) already in its ``evidence``. A sensor alarm opens at once —
the alarm never waits for a camera — and the cameras of the same grid cell
are asked for one snapshot each; those that answer are attached to the open
event with an ``updated`` message. A camera that fails is logged and
counted; the event stays as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.config import DeviceConfig
from contracts.errors import DriverError
from contracts.evidence import SnapshotSource
from gateway.config.evidence import EvidenceSettings
from gateway.config.models import GatewayConfig
from gateway.events.alarms import AlarmBook, Slot
from gateway.evidence.fetch import fetch_snapshot
from gateway.evidence.store import EvidenceStore, Picture
from gateway.timestamps import iso_utc

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 60.0
_FETCHES_AT_ONCE = 4

Fetch = Callable[[str, SnapshotSource], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Camera:
    """A camera as the evidence desk sees it: where its snapshot is, which grid cell it watches."""

    device: str
    snapshot: SnapshotSource | None
    grid_cell: str


def cameras_of(devices: Sequence[DeviceConfig], gateway_cell: str) -> list[Camera]:
    """The devices that give pictures: those whose entry has a ``snapshot`` source."""
    found = []
    for device in devices:
        source = getattr(device, "snapshot", None)
        if isinstance(source, SnapshotSource):
            found.append(Camera(device.id, source, getattr(device, "grid_cell", None) or gateway_cell))
    return found


def reference(picture: Picture) -> dict[str, Any]:
    """How an event names a picture: what it is, and the command that hands it out."""
    return {
        "kind": "snapshot",
        "topic": "commands/request",
        "ts": iso_utc(picture.ts),
        "evidence_id": picture.id,
        "camera": picture.camera,
        "taken_at": iso_utc(picture.ts),
        "sha256": picture.sha256,
        "size": picture.size,
        "content_type": "image/jpeg",
        "fetch": {"command": "evidence", "evidence_id": picture.id},
    }


class EvidenceDesk:
    """Hooks into the alarm book: pictures at hand when an event opens, snapshots fetched after."""

    def __init__(
        self,
        store: EvidenceStore,
        settings: EvidenceSettings,
        *,
        cameras: Sequence[Camera],
        grid_cell: str,
        book: AlarmBook,
        fetch: Fetch = fetch_snapshot,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._settings = settings
        self._cameras = {c.device: c for c in cameras}
        self._in_cell = [c for c in cameras if c.grid_cell == grid_cell and c.snapshot is not None]
        self._book = book
        self._fetch = fetch
        self._clock = clock
        self._pending: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(_FETCHES_AT_ONCE)
        self.fetched = 0
        self.failed = 0
        self.fetch_s: list[float] = []  # the last fetch times, for the status and the benchmark
        book.evidence_at_hand = self.at_hand
        book.on_open.append(self.opened)

    def picture(self, device: str, ts: float, jpeg: bytes) -> None:
        """A picture a camera pushed with an alarm (``StreamDriver.picture``)."""
        try:
            self.store.put(device, ts, jpeg)
        except OSError as exc:
            log.warning("evidence: picture of %s not stored (%s)", device, exc)

    def at_hand(self, device: str, ts: float) -> tuple[Mapping[str, Any], ...]:
        """The picture ``device`` pushed just before its event opened, if any."""
        picture = self.store.latest(device, ts - self._settings.push_window_s)
        return () if picture is None else (reference(picture),)

    def opened(self, slot: Slot, event: Mapping[str, Any]) -> None:
        """An event opened: fetch snapshots unless its own camera's picture is already attached."""
        if event["class"] != "alarm" or self._settings.cameras_per_alarm == 0:
            return
        if any(e.get("kind") == "snapshot" for e in event["evidence"]):
            return
        own = self._cameras.get(event["device"])
        if own is not None:
            cameras = [own] if own.snapshot is not None else []
        else:
            cameras = self._in_cell[: self._settings.cameras_per_alarm]
        if cameras:
            task = asyncio.get_running_loop().create_task(self._attach(slot, event["event_id"], cameras))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def run(self) -> None:
        """Prune now and then; on cancel, stop the fetches in flight."""
        try:
            while True:
                await asyncio.sleep(PRUNE_EVERY_S)
                self.store.prune()
        finally:
            for task in list(self._pending):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self._pending, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        return {
            "pictures": len(self.store),
            "bytes": self.store.bytes,
            "dropped": self.store.dropped,
            "fetched": self.fetched,
            "failed": self.failed,
        }

    async def _attach(self, slot: Slot, event_id: str, cameras: Sequence[Camera]) -> None:
        pictures = await asyncio.gather(*(self._snapshot(c) for c in cameras))
        refs = [reference(p) for p in pictures if p is not None]
        event = self._book.event(slot)
        if not refs or event is None or event["event_id"] != event_id:
            return  # nothing came, or the event closed meanwhile
        self._book.publish(slot, "updated", self._clock(), evidence=[*event["evidence"], *refs])
        log.info("evidence: %d snapshot(s) attached to %s", len(refs), event_id)

    async def _snapshot(self, camera: Camera) -> Picture | None:
        assert camera.snapshot is not None
        async with self._gate:
            started = time.perf_counter()
            try:
                data = await self._fetch(camera.device, camera.snapshot)
            except DriverError as exc:
                self.failed += 1
                log.warning("evidence: no snapshot from %s", exc)
                return None
            self.fetch_s = [*self.fetch_s[-99:], time.perf_counter() - started]
            self.fetched += 1
            try:
                return self.store.put(camera.device, self._clock(), data)
            except OSError as exc:
                log.warning("evidence: snapshot of %s not stored (%s)", camera.device, exc)
                return None


def evidence_desk(config: GatewayConfig, book: AlarmBook) -> EvidenceDesk:
    """The evidence desk of a config, its store under ``storage.directory/evidence``."""
    settings = config.evidence
    store = EvidenceStore(
        config.storage.directory / "evidence", max_bytes=settings.max_bytes, retention_s=settings.retention_s
    )
    cell = config.gateway.grid_cell
    return EvidenceDesk(store, settings, cameras=cameras_of(config.devices, cell), grid_cell=cell, book=book)
