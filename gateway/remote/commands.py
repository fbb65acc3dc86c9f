"""Commands from the command center and maintainers: check who asked, run it, build the response.

A request is a JSON object on ``{root}/commands/request``, signed (see
``signing`` and docs/remote-management.md)::

    {"command": "ack", "event_id": "...", "gateway": "gw-01", "auth": {...}}
    {"command": "verify", "event_id": "...", "gateway": "gw-01", "auth": {...}}
    {"command": "verify", "device": "...", "category": "...", "gateway": "gw-01", "auth": {...}}

MQTT 5 clients name the reply topic and correlation data as properties; an
MQTT 3.1.1 client puts ``reply_to`` (and optionally ``correlation_id``) in the
payload. A reply topic is used only under ``{prefix}/_replies/``; any other is
answered with an error on the gateway's own response topic, so a request
cannot make the gateway publish where its requester may not. Every request
gets a response, an error one naming the problem when the payload is not JSON,
not an object, too large or too deeply nested, is not signed by a key allowed
to send it, names an unknown command or misses a field: never silence. The
parse is bounded (``MAX_REQUEST_BYTES``, ``MAX_DEPTH``) and whatever a
request's fields are echoed in a reply is cut to ``MAX_ECHO`` characters, so a
hostile request costs little and cannot make the gateway publish a large reply.

A command plugs in as one :class:`Command` (name and coroutine); ack and
verify are here, the maintenance commands in ``maintenance``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.config.trust import Role
from gateway.events.devices import DeviceEvents
from gateway.events.lifecycle import EventDesk
from gateway.remote.auth import Authoriser, Principal, Unauthorised

log = logging.getLogger(__name__)

REQUEST_TOPIC = "commands/request"
RESPONSE_TOPIC = "commands/response"
REPLIES = "_replies/"  # under the topic prefix: where reply topics may be
MAX_REQUEST_BYTES = 16 * 1024
MAX_DEPTH = 8  # requests are flat objects; a few levels of room for what clients add
MAX_ECHO = 128  # characters of a request's field quoted back in a reply
_TOPIC_RE = re.compile(r"^[^#+\x00]{1,512}$")


class CommandError(Exception):
    """The request cannot be served; ``code`` is for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class CommandReply:
    """What to publish: ``body`` to ``reply_to`` (None: the gateway's response topic)."""

    body: dict[str, Any]
    reply_to: str | None


@dataclass(frozen=True, slots=True)
class Command:
    """One command: its name and what serves a request for it, for whom."""

    name: str
    run: Callable[[dict[str, Any], Principal], Awaitable[dict[str, Any]]]
    roles: frozenset[Role] = frozenset()  # roles granted it besides those auth.Principal.may allows
    who: str = "only maintainer keys may run maintenance commands"  # says so when refused


class CommandHandler:
    """Serves the registered commands to requests signed by a key allowed to send them."""

    def __init__(self, commands: Iterable[Command], *, authoriser: Authoriser, topic_prefix: str) -> None:
        self._commands = {c.name: c for c in commands}
        self._authoriser = authoriser
        self._reply_prefix = f"{topic_prefix}/{REPLIES}"

    def trust(self, authoriser: Authoriser) -> None:
        """Check requests with ``authoriser`` from now on (a new ``[commands]`` section applied)."""
        self._authoriser = authoriser

    def register(self, commands: Iterable[Command]) -> None:
        """Serve these commands too (those that need the running daemon are added once it runs)."""
        self._commands.update((c.name, c) for c in commands)

    async def handle(self, payload: bytes, response_topic: str | None = None) -> CommandReply:
        """The reply to one request payload, whatever it holds (``response_topic``: MQTT 5's)."""
        request: dict[str, Any] = {}
        reply_to: str | None = None
        try:
            request = _parse(payload)
            asked = response_topic or request.get("reply_to")
            reply_to = self._reply_topic(asked)
            principal = self._principal(request)
            body = await self.run_as(request, principal)
        except CommandError as exc:
            body = _error(request, exc.code, str(exc))
        correlation = request.get("correlation_id")
        if isinstance(correlation, str):
            body["correlation_id"] = _echo(correlation)
        return CommandReply(body, reply_to)

    async def run_as(self, request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """Serve a parsed request for ``principal`` (in-process callers have checked who it is)."""
        command = request["command"]
        try:
            served = self._commands.get(command)
            if served is None:
                known = ", ".join(sorted(self._commands))
                raise CommandError("unknown_command", f"unknown command {_echo(command)!r} (known: {known})")
            if not (principal.may(command) or (principal.verified and principal.role in served.roles)):
                raise CommandError(
                    "forbidden",
                    f"key {principal.identity!r} ({principal.role.value}) may not {_echo(command)!r};"
                    f" {served.who}",
                )
            result = await served.run(request, principal)
        except CommandError as exc:
            return _error(request, exc.code, str(exc))
        except Exception as exc:  # a bug behind one command must not leave the requester waiting
            log.exception("command %r failed", _echo(command))
            return _error(
                request, "internal", f"the gateway failed to serve the request ({type(exc).__name__})"
            )
        log.info("command %s served for %s", command, principal.identity)
        return {"command": command, "ok": True, "result": result}

    def _reply_topic(self, asked: object) -> str | None:
        if asked is None:
            return None
        if (
            not isinstance(asked, str)
            or not _TOPIC_RE.match(asked)
            or not asked.startswith(self._reply_prefix)
        ):
            raise CommandError(
                "reply_to_refused",
                f"reply topic {_echo(asked)!r} refused: replies go only under {self._reply_prefix}; "
                "answered on the gateway's commands/response instead",
            )
        return asked

    def _principal(self, request: dict[str, Any]) -> Principal:
        try:
            return self._authoriser.principal(request)
        except Unauthorised as exc:
            log.warning("command %r refused: %s", _echo(request.get("command")), exc)
            raise CommandError(exc.code, str(exc)) from exc


def event_commands(desk: EventDesk, devices: DeviceEvents | None = None) -> list[Command]:
    """``ack`` and ``verify`` from the event desk; ``ack`` of comms events too."""

    async def ack(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        event_id = text_field(request, "event_id")
        operator = principal.identity if principal.verified else text_field(request, "operator")
        result = desk.acknowledge(event_id, operator)
        if result is None and devices is not None:
            result = devices.acknowledge(event_id, operator)
        if result is None:
            raise CommandError(
                "unknown_event", f"no open or recent event {_echo(event_id)!r} on this gateway"
            )
        return result

    async def verify(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        if "event_id" in request:
            event_id = text_field(request, "event_id")
            answer = desk.verify(event_id=event_id)
            if answer is None:
                raise CommandError(
                    "unknown_event",
                    f"no open or recent event {_echo(event_id)!r}; verify by device and category",
                )
            return answer
        device, category = text_field(request, "device"), text_field(request, "category")
        answer = desk.verify(device=device, category=category)
        if answer is None:
            raise CommandError(
                "unknown_rule", f"no rule for category {_echo(category)!r} on device {_echo(device)!r}"
            )
        return answer

    return [Command("ack", ack), Command("verify", verify)]


def _error(request: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    command = request.get("command")
    return {
        "command": _echo(command) if isinstance(command, str) else None,
        "ok": False,
        "error": {"code": code, "message": message},
    }


def _echo(value: object) -> str:
    """A request's field as it may appear in a reply: cut to ``MAX_ECHO`` characters."""
    text = str(value)
    return text if len(text) <= MAX_ECHO else text[: MAX_ECHO - 1] + "…"


def _depth(payload: bytes) -> int:
    """How deeply arrays and objects nest in ``payload``, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _parse(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_REQUEST_BYTES:
        raise CommandError("malformed", f"payload is {len(payload)} bytes; at most {MAX_REQUEST_BYTES}")
    if _depth(payload) > MAX_DEPTH:
        raise CommandError("malformed", f"payload nests deeper than {MAX_DEPTH} levels")
    try:
        request = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError("malformed", f"payload is not JSON: {_echo(exc)}") from exc
    if not isinstance(request, dict):
        raise CommandError("malformed", f"payload must be a JSON object, not {type(request).__name__}")
    if not isinstance(request.get("command"), str):
        raise CommandError("malformed", "field 'command' is required and must be a string")
    return request


def text_field(request: dict[str, Any], field: str) -> str:
    """A request's required non-empty string field; CommandError names it if missing."""
    value = request.get(field)
    if not isinstance(value, str) or not value:
        raise CommandError(
            "malformed",
            f"field {_echo(field)!r} is required for {_echo(request['command'])!r} (a non-empty string)",
        )
    return value
