"""An IP camera for tests and the demo: serves snapshots behind digest auth and pushes alarms.

``async with CameraSimulator(...) as camera`` serves ``GET
/ISAPI/Streaming/channels/101/picture`` (a fresh small JPEG each time, so
every snapshot has its own sha256); :meth:`push` sends an alarm to a
gateway's receiver as a Hikvision ``EventNotificationAlert`` (with the
picture as multipart/form-data), a Dahua event line or a JSON webhook.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

import aiohttp
from aiohttp import web

from contracts.evidence import HttpAuth
from drivers.camera.auth import Guard
from drivers.simulators.jpeg import jpeg

SNAPSHOT_PATH = "/ISAPI/Streaming/channels/101/picture"

_HIK_TYPES = {
    "motion": "VMD",
    "line_crossing": "linedetection",
    "intrusion": "fielddetection",
    "tamper": "tamperdetection",
    "video_loss": "videoloss",
}
_DAHUA_CODES = {
    "motion": "VideoMotion",
    "line_crossing": "CrossLineDetection",
    "intrusion": "CrossRegionDetection",
    "tamper": "VideoBlind",
    "video_loss": "VideoLoss",
}


def hikvision_alert(
    event: str, *, active: bool = True, channel: int = 1, ts: float | None = None, count: int = 1
) -> bytes:
    """An ``EventNotificationAlert`` as Hikvision cameras send it (ISAPI, version 2.0)."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).astimezone()
    event_type = _HIK_TYPES.get(event, event)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">\n'
        "<ipAddress>192.168.1.64</ipAddress>\n<portNo>80</portNo>\n<protocol>HTTP</protocol>\n"
        "<macAddress>44:19:b6:00:00:01</macAddress>\n"
        f"<channelID>{channel}</channelID>\n<dateTime>{moment.isoformat(timespec='seconds')}</dateTime>\n"
        f"<activePostCount>{count}</activePostCount>\n<eventType>{event_type}</eventType>\n"
        f"<eventState>{'active' if active else 'inactive'}</eventState>\n"
        f"<eventDescription>{event_type} alarm</eventDescription>\n"
        "</EventNotificationAlert>\n"
    ).encode()


def dahua_event(event: str, *, active: bool = True, index: int = 0) -> bytes:
    """A Dahua event-manager line."""
    action = "Start" if active else "Stop"
    return f"Code={_DAHUA_CODES.get(event, event)};action={action};index={index}\r\n".encode()


def webhook_event(event: str, *, active: bool = True, ts: float | None = None) -> bytes:
    """The generic JSON webhook."""
    message: dict[str, Any] = {"event": event, "state": "active" if active else "inactive"}
    if ts is not None:
        message["ts"] = ts
    return json.dumps(message).encode()


class CameraSimulator:
    """A camera: a snapshot server on ``port`` (0: a free one) and a pusher to ``receiver_url``."""

    def __init__(
        self,
        *,
        username: str = "admin",
        password: str = "camera-pass",
        auth: HttpAuth = HttpAuth.DIGEST,
        host: str = "127.0.0.1",
        port: int = 0,
        width: int = 64,
        height: int = 48,
    ) -> None:
        self._guard = Guard(scheme=auth, username=username, password=password, realm="IP Camera")
        self._host = host
        self._port = port
        self._size = (width, height)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.snapshots = 0  # pictures served
        self.port = port

    @property
    def snapshot_url(self) -> str:
        return f"http://{self._host}:{self.port}{SNAPSHOT_PATH}"

    async def __aenter__(self) -> CameraSimulator:
        app = web.Application()
        app.router.add_get(SNAPSHOT_PATH, self._snapshot)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _snapshot(self, request: web.Request) -> web.Response:
        if not self._guard.allows(request.headers.get("Authorization"), request.method):
            return web.Response(status=401, headers={"WWW-Authenticate": self._guard.challenge()})
        self.snapshots += 1
        width, height = self._size
        return web.Response(body=jpeg(width, height, seed=self.snapshots), content_type="image/jpeg")

    async def push(
        self,
        url: str,
        body: bytes,
        *,
        content_type: str = "application/xml",
        picture: bytes | None = None,
        login: tuple[str, str] | None = None,
        digest: bool = False,
    ) -> tuple[int, str]:
        """POST one alarm to ``url`` (the gateway's ``/cameras/<id>``); the picture goes as form-data."""
        assert self._session is not None, "use the simulator as async with"
        data: Any = body
        headers = {"Content-Type": content_type}
        if picture is not None:
            form = aiohttp.FormData()
            form.add_field("event", body, content_type=content_type, filename="event.xml")
            form.add_field("picture", picture, content_type="image/jpeg", filename="picture.jpg")
            data, headers = form, {}
        kwargs: dict[str, Any] = {"data": data, "headers": headers}
        if login is not None and digest:
            digest_auth = (aiohttp.DigestAuthMiddleware(*login),)
            async with (
                aiohttp.ClientSession(middlewares=digest_auth) as session,
                session.post(url, **kwargs) as response,
            ):
                return response.status, await response.text()
        if login is not None:
            token = base64.b64encode(":".join(login).encode()).decode()
            kwargs["headers"] = {**kwargs["headers"], "Authorization": f"Basic {token}"}
        async with self._session.post(url, **kwargs) as response:
            return response.status, await response.text()


async def _demo(args: argparse.Namespace) -> None:
    """Serve snapshots on ``--port``; each ``--period``, ``--start`` s in, push an intrusion, pictured."""
    log = logging.getLogger("camera")
    async with CameraSimulator(auth=HttpAuth.NONE, port=args.port, width=160, height=120) as camera:
        log.info("snapshots at %s; pushing to %s", camera.snapshot_url, args.push)
        began = time.monotonic()
        n = 0
        while True:
            due = began + args.start + n * args.period
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            n += 1
            try:
                status, text = await camera.push(
                    args.push, hikvision_alert("intrusion"), picture=jpeg(160, 120, seed=10_000 + n)
                )
            except aiohttp.ClientError as exc:
                log.warning("push %d not delivered: %s", n, exc)
                continue
            log.info("push %d: intrusion with a picture, answered %d %s", n, status, text.strip()[:80])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=15031, help="where snapshots are served (no auth)")
    parser.add_argument("--push", required=True, help="the gateway's receiver URL, .../cameras/<device id>")
    parser.add_argument("--period", type=float, default=60.0, help="seconds between intrusion alarms")
    parser.add_argument("--start", type=float, default=20.0, help="seconds into each period")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s camera: %(message)s")
    asyncio.run(_demo(args))


if __name__ == "__main__":
    main()
