"""Commands from the command center: parse a request, run it, build the response.

A request is a JSON object on ``{root}/commands/request``::

    {"command": "ack", "event_id": "...", "operator": "zhang.wei"}
    {"command": "verify", "event_id": "..."}
    {"command": "verify", "device": "...", "category": "..."}

MQTT 5 clients name the reply topic and correlation data as properties; an
MQTT 3.1.1 client puts ``reply_to`` (and optionally ``correlation_id``) in the
payload. Every request gets a response, an error one naming the problem when
the payload is not JSON, not an object, names an unknown command or misses a
field: never silence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.events.devices import DeviceEvents
from gateway.events.lifecycle import EventDesk

REQUEST_TOPIC = "commands/request"
RESPONSE_TOPIC = "commands/response"
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


class CommandHandler:
    """Serves ``ack`` and ``verify`` from the event desk; ``ack`` of comms events too."""

    def __init__(self, desk: EventDesk, devices: DeviceEvents | None = None) -> None:
        self._desk = desk
        self._devices = devices

    def handle(self, payload: bytes) -> CommandReply:
        """The reply to one request payload, whatever it holds."""
        request: dict[str, Any] = {}
        try:
            request = _parse(payload)
            result = self._dispatch(request)
            body: dict[str, Any] = {"command": request["command"], "ok": True, "result": result}
        except CommandError as exc:
            body = {
                "command": request.get("command") if isinstance(request.get("command"), str) else None,
                "ok": False,
                "error": {"code": exc.code, "message": str(exc)},
            }
        correlation = request.get("correlation_id")
        if isinstance(correlation, str):
            body["correlation_id"] = correlation
        reply_to = request.get("reply_to")
        valid_reply = isinstance(reply_to, str) and _TOPIC_RE.match(reply_to)
        return CommandReply(body, reply_to if valid_reply else None)

    def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request["command"]
        if command == "ack":
            event_id = _text(request, "event_id")
            operator = _text(request, "operator")
            result = self._desk.acknowledge(event_id, operator)
            if result is None and self._devices is not None:
                result = self._devices.acknowledge(event_id, operator)
            if result is None:
                raise CommandError("unknown_event", f"no open or recent event {event_id!r} on this gateway")
            return result
        if command == "verify":
            if "event_id" in request:
                event_id = _text(request, "event_id")
                answer = self._desk.verify(event_id=event_id)
                if answer is None:
                    raise CommandError(
                        "unknown_event",
                        f"no open or recent event {event_id!r}; verify by device and category",
                    )
                return answer
            device, category = _text(request, "device"), _text(request, "category")
            answer = self._desk.verify(device=device, category=category)
            if answer is None:
                raise CommandError("unknown_rule", f"no rule for category {category!r} on device {device!r}")
            return answer
        raise CommandError("unknown_command", f"unknown command {command!r} (known: ack, verify)")


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        request = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError("malformed", f"payload is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise CommandError("malformed", f"payload must be a JSON object, not {type(request).__name__}")
    if not isinstance(request.get("command"), str):
        raise CommandError("malformed", "field 'command' is required and must be a string")
    return request


def _text(request: dict[str, Any], field: str) -> str:
    value = request.get(field)
    if not isinstance(value, str) or not value:
        raise CommandError(
            "malformed",
            f"field {field!r} is required for {request['command']!r} (a non-empty string)",
        )
    return value
