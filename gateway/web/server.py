"""The cabinet's status page and metrics, served by the daemon itself (aiohttp).

Anyone who can reach it sees the gateway, its devices with live values and the
open events; the log and every action (acknowledge, log out) need a logged-in
user. Actions are POST forms carrying the session's CSRF token, from this
origin only. ``/metrics`` answers loopback clients alone. A page that is open
updates itself from ``/live`` (server-sent events). The server is a side show:
if it cannot start, the gateway says so and runs on without it. It must also
stay cheap (10 MB, 1 % of a core: benchmarks/web_bench.py), so only aiohttp's
server half is loaded (gateway/web/aiohttp_server.py) and the metrics code
waits for the first scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway.config.models import WebSettings
from gateway.config.passwords import verify_password
from gateway.remote.commands import CommandHandler
from gateway.web import pages
from gateway.web.aiohttp_server import server_half
from gateway.web.auth import LoginLimiter, Session, Sessions
from gateway.web.view import GatewayView

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.web.metrics import MetricsPage
else:
    web = server_half()

log = logging.getLogger(__name__)

COOKIE = "gridgate_session"
LIVE_EVERY_S = 1.0
MAX_FORM_BYTES = 16 * 1024
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC = {"style.css": "text/css", "app.js": "text/javascript"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StatusServer:
    def __init__(self, settings: WebSettings, view: GatewayView, commands: CommandHandler) -> None:
        self.settings = settings
        self.view = view
        self.commands = commands
        self.sessions = Sessions(ttl_s=settings.session_ttl_s)
        self.logins = LoginLimiter()
        self.port: int | None = None
        self._metrics_page: MetricsPage | None = None  # made at the first scrape
        self._static = {
            name: (resources.files("gateway.web") / "static" / name).read_bytes() for name in _STATIC
        }

    async def run(self, stopping: asyncio.Event) -> None:
        """Serve until ``stopping``; a port that cannot be bound is logged, not fatal."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        logging.getLogger().addHandler(self.view.log)
        try:
            try:
                await site.start()
            except OSError as exc:
                log.error(
                    "web: cannot serve the status page on %s:%d (%s); change [web] port or host",
                    self.settings.host,
                    self.settings.port,
                    exc.strerror,
                )
                return
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
            log.info("web: status page on http://%s:%d/", self.settings.host, self.port)
            await stopping.wait()
        finally:
            logging.getLogger().removeHandler(self.view.log)
            await runner.cleanup()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_FORM_BYTES, middlewares=[_security_headers])
        app.router.add_get("/", self._overview)
        app.router.add_get("/devices/{device}", self._device)
        app.router.add_get("/events", self._events)
        app.router.add_post("/events/{event_id}/ack", self._ack)
        app.router.add_get("/log", self._log)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        app.router.add_get("/live", self._live)
        app.router.add_get("/static/{name}", self._static_file)
        app.router.add_get("/api/status", self._api_status)
        if self.settings.metrics:
            app.router.add_get("/metrics", self._metrics)
        return app

    # pages

    def _content(self, path: str, session: Session | None) -> tuple[str, str] | None:
        """(title, main content) of the page at ``path``, or None when there is none."""
        if path == "/":
            return "gateway", pages.overview(self.view)
        if path == "/events":
            return "events", pages.events_page(self.view, csrf=session.csrf if session else None)
        if path == "/log":
            return ("log", pages.log_page(self.view)) if session else None
        if path.startswith("/devices/"):
            device = self.view.device(path.removeprefix("/devices/"))
            return (device["id"], pages.device_page(self.view, device)) if device else None
        return None

    def _page(self, request: web.Request, path: str) -> web.Response:
        session = self._session(request)
        content = self._content(path, session)
        if content is None:
            if path == "/log":
                raise web.HTTPSeeOther(f"/login?next={path}")
            raise web.HTTPNotFound(text=f"no page {path} on this gateway")
        title, main = content
        html = pages.shell(
            title,
            self.view,
            main,
            user=session.user if session else None,
            csrf=session.csrf if session else None,
        )
        return web.Response(text=html, content_type="text/html")

    async def _overview(self, request: web.Request) -> web.Response:
        return self._page(request, "/")

    async def _device(self, request: web.Request) -> web.Response:
        return self._page(request, request.path)

    async def _events(self, request: web.Request) -> web.Response:
        return self._page(request, "/events")

    async def _log(self, request: web.Request) -> web.Response:
        return self._page(request, "/log")

    async def _live(self, request: web.Request) -> web.StreamResponse:
        path = request.query.get("page", "/")
        if self._content(path, self._session(request)) is None:
            raise web.HTTPNotFound(text=f"no page {path} to follow")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **HEADERS})
        await response.prepare(request)
        sent = ""
        with contextlib.suppress(ConnectionError):
            while request.transport is not None and not request.transport.is_closing():
                content = self._content(path, self._session(request))
                if content is None:
                    break
                if content[1] != sent:
                    sent = content[1]
                    await response.write(f"data: {sent.replace(chr(10), ' ')}\n\n".encode())
                await asyncio.sleep(LIVE_EVERY_S)
        return response

    async def _api_status(self, request: web.Request) -> web.Response:
        body = {
            "gateway": self.view.gateway(),
            "devices": self.view.devices(),
            "events": self.view.open_events(),
        }
        return web.json_response(body)

    async def _static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self._static[name], content_type=_STATIC[name])

    async def _metrics(self, request: web.Request) -> web.Response:
        if not _loopback(request.remote):
            raise web.HTTPForbidden(text="metrics are served to loopback clients only")
        if self._metrics_page is None:
            from gateway.web.metrics import MetricsPage  # the client library loads at the first scrape

            self._metrics_page = MetricsPage(self.view)
        page = self._metrics_page
        return web.Response(body=page.render(), headers={"Content-Type": page.content_type})

    # login and actions

    async def _login_form(self, request: web.Request) -> web.Response:
        main = pages.login_page(next_page=_local(request.query.get("next", "/")))
        return web.Response(
            text=pages.shell("log in", self.view, main, user=None, csrf=None), content_type="text/html"
        )

    async def _login(self, request: web.Request) -> web.Response:
        _same_origin(request)
        address = request.remote or "?"
        form = await request.post()
        next_page = _local(str(form.get("next", "/")))
        wait = self.logins.retry_after(address)
        if wait > 0:
            return self._login_refused(
                f"too many failed logins from {address}; try again in {wait:.0f} s", 429
            )
        user, password = str(form.get("user", "")), str(form.get("password", ""))
        stored = self.settings.users.get(user)
        if stored is None or not verify_password(password, stored):
            self.logins.failed(address)
            log.warning("web: failed login as %r from %s", user[:64], address)
            return self._login_refused("wrong user or password", 401, next_page)
        token = self.sessions.start(user)
        log.info("web: %s logged in from %s", user, address)
        response = web.HTTPSeeOther(next_page)
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        raise response

    def _login_refused(self, why: str, status: int, next_page: str = "/") -> web.Response:
        main = pages.login_page(error=why, next_page=next_page)
        html = pages.shell("log in", self.view, main, user=None, csrf=None)
        return web.Response(text=html, content_type="text/html", status=status)

    async def _logout(self, request: web.Request) -> web.Response:
        await self._acting_session(request)
        self.sessions.end(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther("/")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def _ack(self, request: web.Request) -> web.Response:
        session = await self._acting_session(request)
        event_id = request.match_info["event_id"]
        payload = json.dumps({"command": "ack", "event_id": event_id, "operator": session.user}).encode()
        reply = self.commands.handle(payload)
        if not reply.body["ok"]:
            raise web.HTTPBadRequest(text=f"not acknowledged: {reply.body['error']['message']}")
        log.info("web: %s acknowledged event %s", session.user, event_id)
        raise web.HTTPSeeOther("/events")

    async def _acting_session(self, request: web.Request) -> Session:
        """The session of a POST that may change something: same origin, logged in, right CSRF token."""
        _same_origin(request)
        session = self._session(request)
        if session is None:
            raise web.HTTPUnauthorized(text="log in first")
        form = await request.post()
        if form.get("csrf") != session.csrf:
            raise web.HTTPForbidden(text="this form is stale or not from this page; reload and try again")
        return session

    def _session(self, request: web.Request) -> Session | None:
        return self.sessions.get(request.cookies.get(COOKIE))


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(HEADERS)
        raise
    if not response.prepared:
        response.headers.update(HEADERS)
    return response


def _same_origin(request: web.Request) -> None:
    """Refuse a POST whose Origin (or Referer) names another site."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="cross-site request refused")


def _local(path: str) -> str:
    """Only a path on this server is a place to go after login."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
