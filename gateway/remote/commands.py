"""Commands from the command center: parse a request, run it, build the response.

A request is a JSON object on ``{root}/commands/request``::

    {"command": "ack", "event_id": "...", "operator": "zhang.wei"}
    {"command": "verify", "event_id": "..."}
    {"command": "verify", "device": "...", "category": "..."}
    {"command": "evidence", "evidence_id": "...", "offset": 0}

MQTT 5 clients name the reply topic and correlation data as properties; an
MQTT 3.1.1 client puts ``reply_to`` (and optionally ``correlation_id``) in the
payload. Every request gets a response, an error one naming the problem when
the payload is not JSON, not an object, too large or too deeply nested, names
an unknown command or misses a field: never silence. The parse is bounded
(``MAX_REQUEST_BYTES``, ``MAX_DEPTH``) and whatever a request's fields are
echoed in a reply is cut to ``MAX_ECHO`` characters, so a hostile request costs
little and cannot make the gateway publish a large reply.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from gateway.events.devices import DeviceEvents
from gateway.events.lifecycle import EventDesk
from gateway.evidence.chunks import EvidenceUnavailable, evidence_chunk
from gateway.evidence.store import EvidenceStore

log = logging.getLogger(__name__)

REQUEST_TOPIC = "commands/request"
RESPONSE_TOPIC = "commands/response"
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


class CommandHandler:
    """Serves ``ack`` and ``verify`` from the event desk; ``ack`` of comms events too."""

    def __init__(
        self,
        desk: EventDesk,
        devices: DeviceEvents | None = None,
        *,
        evidence: EvidenceStore | None = None,
        chunk_bytes: int = 96 * 1024,
    ) -> None:
        self._desk = desk
        self._devices = devices
        self._evidence = evidence
        self._chunk_bytes = chunk_bytes

    def handle(self, payload: bytes) -> CommandReply:
        """The reply to one request payload, whatever it holds."""
        request: dict[str, Any] = {}
        try:
            request = _parse(payload)
            result = self._dispatch(request)
            body: dict[str, Any] = {"command": request["command"], "ok": True, "result": result}
        except CommandError as exc:
            body = _error(request, exc.code, str(exc))
        except Exception as exc:  # a bug behind one command must not leave the requester waiting
            log.exception("command %r failed", _echo(request.get("command")))
            body = _error(
                request, "internal", f"the gateway failed to serve the request ({type(exc).__name__})"
            )
        correlation = request.get("correlation_id")
        if isinstance(correlation, str):
            body["correlation_id"] = _echo(correlation)
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
                raise CommandError(
                    "unknown_event", f"no open or recent event {_echo(event_id)!r} on this gateway"
                )
            return result
        if command == "verify":
            if "event_id" in request:
                event_id = _text(request, "event_id")
                answer = self._desk.verify(event_id=event_id)
                if answer is None:
                    raise CommandError(
                        "unknown_event",
                        f"no open or recent event {_echo(event_id)!r}; verify by device and category",
                    )
                return answer
            device, category = _text(request, "device"), _text(request, "category")
            answer = self._desk.verify(device=device, category=category)
            if answer is None:
                raise CommandError(
                    "unknown_rule", f"no rule for category {_echo(category)!r} on device {_echo(device)!r}"
                )
            return answer
        if command == "evidence" and self._evidence is not None:
            # Pictures show people: once commands are authorised, this one must require it.
            try:
                return evidence_chunk(self._evidence, request, chunk_bytes=self._chunk_bytes)
            except EvidenceUnavailable as exc:
                raise CommandError("unknown_evidence", str(exc)) from None
        known = "ack, verify, evidence" if self._evidence is not None else "ack, verify"
        raise CommandError("unknown_command", f"unknown command {_echo(command)!r} (known: {known})")


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


def _text(request: dict[str, Any], field: str) -> str:
    value = request.get(field)
    if not isinstance(value, str) or not value:
        raise CommandError(
            "malformed",
            f"field {_echo(field)!r} is required for {_echo(request['command'])!r} (a non-empty string)",
        )
    return value
