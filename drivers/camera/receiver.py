"""The HTTP receiver cameras push alarms to: ``POST /cameras/<device id>``, one stream for every camera.

A push is authenticated with its camera's credentials, bounded in size,
rate-limited per source address and decoded; a bad one is answered 4xx with
the reason and counted, and the others keep flowing. A multipart push
(Hikvision sends form-data or multipart/mixed with the XML and a JPEG) hands
its picture to :attr:`picture` before the event's batch, so the event that
batch raises finds it. aiohttp's server is imported when the receiver opens,
so a gateway without cameras does not load it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from contracts.driver import StreamDriver
from contracts.errors import DeviceUnreachable
from contracts.evidence import HttpAuth
from contracts.readings import ReadingBatch
from drivers.camera.auth import Guard
from drivers.camera.config import CameraDeviceConfig, CameraReceiver
from drivers.camera.events import CameraEvent, PushRejected, decode

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

_SOURCES_KEPT = 1024  # rate buckets kept; the least recently seen address is forgotten first
_JPEG_MAGIC = b"\xff\xd8\xff"


class _Bucket:
    """A token bucket: ``burst`` pushes at once, ``rate`` per second after that."""

    __slots__ = ("at", "tokens")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = burst
        self.at = now


class CameraStream(StreamDriver):
    """Receives every camera's pushes on one port."""

    def __init__(self, cameras: Sequence[CameraDeviceConfig], *, receiver: CameraReceiver) -> None:
        self.name = "camera-receiver"
        self.devices = tuple(cameras)
        self._receiver = receiver
        self._cameras = {c.id: c for c in cameras}
        # an NVR pushes for the cameras on its inputs: (NVR id, input as it sends it) → that camera
        self._behind = {(c.nvr, c.nvr_channel): c for c in cameras if c.nvr is not None}
        self._nvr_cameras: dict[str, list[str]] = {}
        for c in cameras:
            if c.nvr is not None:
                self._nvr_cameras.setdefault(c.nvr, []).append(c.id)
        self._channels = {c.id: {ch.id for ch in c.channels} for c in cameras}
        self._guards = {
            c.id: Guard(scheme=HttpAuth.NONE)
            if c.push_auth is None or c.push_auth.auth is HttpAuth.NONE
            else Guard(
                scheme=c.push_auth.auth,
                username=c.push_auth.username or "",
                password=c.push_auth.password(),
                realm=c.id,
            )
            for c in cameras
        }
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._releases: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._on_batch: Callable[[ReadingBatch], None] | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port, once open (port 0 picks a free one)
        self.last_rejected: dict[str, str] = {}  # device: why its last refused push was refused
        self.counters: dict[str, dict[str, int]] = {
            c.id: {"pushes": 0, "rejected": 0, "pictures": 0} for c in cameras
        }
        self.refused = 0  # pushes to no known camera, or over the rate

    async def open(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=self._receiver.max_body_bytes)
        app.router.add_post("/cameras/{device}", self._push)
        app.router.add_post("/cameras/{device}/{rest:.*}", self._push)
        app.router.add_put("/cameras/{device}", self._push)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._receiver.host, self._receiver.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise DeviceUnreachable(
                self.name, f"cannot listen on {self._receiver.host}:{self._receiver.port} ({exc.strerror})"
            ) from exc
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._receiver.port
        log.info(
            "camera receiver listening on %s:%s for %d camera(s)",
            self._receiver.host,
            self.port,
            len(self.devices),
        )

    async def run(self, on_batch: Callable[[ReadingBatch], None]) -> None:
        self._on_batch = on_batch
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        for handle in self._releases.values():
            handle.cancel()
        self._releases.clear()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def status_fields(self, device: str) -> dict[str, Any]:
        return {"counters": dict(self.counters.get(device, {}))}

    async def _push(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        device = request.match_info["device"]
        camera = self._cameras.get(device)
        if camera is None:
            self.refused += 1
            return web.Response(status=404, text=f"no camera {device[:64]!r} on this gateway\n")
        if not self._admit(request.remote or "?"):
            self.refused += 1
            return web.Response(status=429, text="too many pushes from this address; slow down\n")
        guard = self._guards[device]
        if not guard.allows(request.headers.get("Authorization"), request.method):
            return web.Response(
                status=401, text="credentials needed\n", headers={"WWW-Authenticate": guard.challenge()}
            )
        counters = self.counters[device]
        try:
            body, jpeg = await self._read(request)
            event = decode(camera.format, body)
        except PushRejected as exc:
            counters["rejected"] += 1
            if self.last_rejected.get(device) != str(exc):  # logged once per new reason, not per push
                log.warning("camera %s: push refused: %s", device, exc)
            self.last_rejected[device] = str(exc)
            return web.Response(status=exc.status, text=f"{exc}\n")
        counters["pushes"] += 1
        self._deliver(camera, event, jpeg)
        return web.Response(text="OK\n")

    def _admit(self, source: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.pop(source, None) or _Bucket(self._receiver.burst, now)
        self._buckets[source] = bucket
        if len(self._buckets) > _SOURCES_KEPT:
            self._buckets.popitem(last=False)
        bucket.tokens = min(
            self._receiver.burst, bucket.tokens + (now - bucket.at) * self._receiver.rate_per_s
        )
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    async def _read(self, request: web.Request) -> tuple[bytes, bytes | None]:
        """The event document and the picture (a multipart push), within the size limit."""
        from aiohttp import BodyPartReader, web

        limit = self._receiver.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PushRejected(413, f"push of {request.content_length} bytes; at most {limit}")
        if not request.content_type.startswith("multipart/"):
            try:
                return await request.read(), None
            except web.HTTPRequestEntityTooLarge:
                raise PushRejected(413, f"push over {limit} bytes") from None
        document: bytes | None = None
        jpeg: bytes | None = None
        total = 0
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue  # a nested multipart: no camera sends one
                data = bytearray()
                while chunk := await part.read_chunk(65_536):
                    total += len(chunk)
                    if total > limit:
                        raise PushRejected(413, f"push over {limit} bytes")
                    data.extend(chunk)
                kind = part.headers.get("Content-Type", "")
                if kind.startswith("image/") or data.startswith(_JPEG_MAGIC):
                    jpeg = jpeg or bytes(data)
                elif document is None:
                    document = bytes(data)
        except ValueError as exc:
            raise PushRejected(400, f"multipart body does not parse ({exc})") from None
        if document is None:
            raise PushRejected(400, "multipart push without an event document")
        return document, jpeg

    def _deliver(self, pusher: CameraDeviceConfig, event: CameraEvent, jpeg: bytes | None) -> None:
        camera = self._behind.get((pusher.id, event.video_channel), pusher)
        if camera is not pusher:  # an NVR's push for one of its inputs: the NVR is alive too
            self.seen(pusher.id, event.ts)
            self.counters[camera.id]["pushes"] += 1
        else:  # the NVR's own push (a heartbeat): the cameras behind it are as alive as it is
            for behind in self._nvr_cameras.get(pusher.id, ()):
                self.seen(behind, event.ts)
        if jpeg is not None:
            self.counters[camera.id]["pictures"] += 1
            self.picture(camera.id, event.ts, jpeg)
        if event.channel is None or event.channel not in self._channels[camera.id] or self._on_batch is None:
            self.seen(camera.id, event.ts)
            return
        self._on_batch(ReadingBatch.at(camera.id, (event.channel,), [event.value], event.ts))
        key = (camera.id, event.channel)
        pending = self._releases.pop(key, None)
        if pending is not None:
            pending.cancel()
        if event.value:
            loop = asyncio.get_running_loop()
            self._releases[key] = loop.call_later(
                camera.release_after_s, self._release, camera.id, event.channel
            )

    def _release(self, device: str, channel: str) -> None:
        """No new 'active' for a while: the condition is over (Dahua pulses and most VMD never say so)."""
        self._releases.pop((device, channel), None)
        if self._on_batch is not None:
            self._on_batch(ReadingBatch.at(device, (channel,), [0.0], time.time()))
