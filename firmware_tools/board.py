"""The command center's picture as text that fits a terminal (80×24 at the least), with labels.

Each line is cut to the width; when there are more lines than rows, recent
messages give way first, then devices, then events, and a ``… N more`` line
says what was left out.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from firmware_tools.live_view import BOLD, DIM, GREEN, RED, RESET, describe

SEVERITY_ORDER = ("urgent", "important", "normal")
RECENT_EVENTS = 8
_ANSI = re.compile(r"\033\[[0-9;]*m")

Line = list[tuple[str, str]]  # (text, ANSI style or "")


@dataclass
class Board:
    """Built from the messages the command center receives; ``render`` draws it."""

    gateways: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    status: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent: deque[tuple[str, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))

    def apply(self, topic: str, payload: dict[str, Any]) -> None:
        """Fold one published message into the board."""
        levels = topic.split("/")
        if len(levels) < 2:
            return
        if levels[-1] == "state":
            self.gateways[levels[-2]] = payload
        elif levels[-1] == "health":
            self.health[levels[-2]] = payload
        elif levels[-1] == "open_events":
            self._open_events(levels[-2], payload)
        elif levels[-1] == "events":
            self.recent.append((topic, payload))
            if payload.get("state") == "cleared":
                self.events.pop(str(payload.get("event_id")), None)
            else:
                self.events[str(payload.get("event_id"))] = {"gateway": levels[-2], **payload}
        elif len(levels) >= 3 and levels[-2] == "telemetry":
            self.devices[(levels[-3], levels[-1])] = payload
        elif len(levels) >= 4 and levels[-1] == "status" and levels[-3] == "devices":
            self.status[(levels[-4], levels[-2])] = payload

    def _open_events(self, gateway: str, payload: dict[str, Any]) -> None:
        """The gateway's retained list replaces what the board knew of its open events."""
        listed = payload.get("events")
        if not isinstance(listed, list):
            return
        for event_id in [k for k, e in self.events.items() if e.get("gateway") == gateway]:
            del self.events[event_id]
        for entry in listed:
            if isinstance(entry, dict) and entry.get("event_id"):
                self.events[str(entry["event_id"])] = {"gateway": gateway, **entry}

    def render(self, *, color: bool = True, width: int = 80, height: int = 0) -> str:
        """The board, every line at most ``width`` wide; at most ``height`` lines when it is set."""
        several = len({k[0] for k in self.devices.keys() | self.status.keys()} | self.gateways.keys()) > 1
        gateways = [line for g, s in sorted(self.gateways.items()) for line in self._gateway(g, s)]
        devices = [self._device(k, several) for k in sorted(self.devices.keys() | self.status.keys())]
        events = [
            line for e in sorted(self.events.values(), key=_severity_rank) for line in _event(e, several)
        ]
        recent = [[("  " + describe(t, p, color=False), "")] for t, p in self.recent]
        sections = [
            (f"GATEWAYS ({len(self.gateways)})", gateways, 2, "gateway(s)"),
            (f"OPEN EVENTS ({len(self.events)})", events, 2, "event(s)"),
            (f"DEVICES ({len(devices)})", devices, 1, "device(s)"),
            ("RECENT EVENT MESSAGES", recent, 1, "message(s)"),
        ]
        room = (height or 10_000) - len(sections)
        shown = _fit_sections([(lines, step) for _, lines, step, _ in sections], room)
        out: list[str] = []
        for (title, lines, step, noun), keep in zip(sections, shown, strict=True):
            out.append(_draw([(title, BOLD)], width, color))
            out += [_draw(line, width, color) for line in lines[:keep]]
            if keep < len(lines):
                out.append(_draw([(f"  … {(len(lines) - keep) // step} more {noun}", DIM)], width, color))
        return "\n".join(out)

    def _gateway(self, gateway: str, state: dict[str, Any]) -> list[Line]:
        up = state.get("state") == "online"
        first: Line = [
            (f"  {gateway:<18} ", ""),
            (f"{str(state.get('state')).upper():<8}", GREEN if up else RED),
        ]
        if state.get("reason"):
            first.append((f"({state['reason']}) ", RED))
        first.append((f"grid {state.get('grid_cell', '?')}  {state.get('site', '')}", ""))
        second: Line = [(f"  {'':<18} ", "")]
        health = self.health.get(gateway)
        if health:
            devices, outbox = health.get("devices", {}), health.get("outbox", {})
            down = devices.get("offline", 0) + devices.get("faulty", 0)
            rss = health.get("process", {}).get("rss_mb", "?")
            second.append(
                (
                    f"devices {devices.get('online', 0)} up {down} down  queue {outbox.get('pending', 0)}"
                    f"  RSS {rss} MB",
                    DIM,
                )
            )
        else:
            second.append(("no health message yet", DIM))
        return [first, second]

    def _device(self, key: tuple[str, str], several: bool) -> Line:
        telemetry, status = self.devices.get(key, {}), self.status.get(key)
        name = f"{key[0]}/{key[1]}" if several else key[1]
        line: Line = [(f"  {name:<18} ", "")]
        if status is not None:
            up = status.get("state") == "online"
            line.append((f"{str(status.get('state')).upper():<8}", GREEN if up else RED))
            counters = status.get("counters") or {}
            if counters:
                bad = sum(v for k, v in counters.items() if k not in ("requests", "ok", "busy_s"))
                line.append((f"{bad}/{counters.get('requests', 0)} bad ", RED if bad else DIM))
        else:
            line.append((f"{'':<8}", ""))
        stamp = str(telemetry.get("ts", ""))[11:19]
        line.append((f"at {stamp or '-':<8} ", DIM))
        faults = telemetry.get("quality") or {}
        readings = telemetry.get("readings") or {}
        values = " ".join(
            f"{k}={_number(v)}{'!' + str(faults[k]) if k in faults else ''}" for k, v in readings.items()
        )
        line.append((values, RED if faults else ""))
        return line


def _event(event: dict[str, Any], several: bool) -> list[Line]:
    severity = str(event.get("severity")).upper()
    tint = RED if event.get("severity") == "urgent" else ""
    where = f"{event.get('device')}/{event.get('channel') or event.get('condition')}"
    reading = ""
    if event.get("peak") is not None or event.get("limit") is not None:
        unit = f" {event['unit']}" if event.get("unit") else ""
        reading = f"peak {_number(event.get('peak'))}{unit} limit {_number(event.get('limit'))} "
    acked = event.get("acknowledged_by")
    ack = (f"ACK by {acked}", GREEN) if acked else ("NOT ACKNOWLEDGED", RED + BOLD)
    escalated = f" escalated ×{event['escalation']}" if event.get("escalation") else ""
    first: Line = [
        (f"  {severity:<10}", tint + BOLD),
        (f"{where} {reading}×{event.get('count', 1)} ", ""),
        ack,
    ]
    second_text = f"{event.get('category')}{escalated}"
    if several:
        second_text += f" on {event.get('gateway')}"
    second: Line = [(f"  {'':<10}{second_text}  ", DIM), (f"id {event.get('event_id')}", "")]
    return [first, second]


_FLOORS = (2, 4, 4, 2)  # lines each section keeps before any other gives up its last ones


def _fit_sections(sections: Sequence[tuple[Sequence[Line], int]], room: int) -> list[int]:
    """Lines of each section that fit in ``room`` (with a ``… more`` line); later ones give way first."""
    keep = [len(lines) for lines, _ in sections]

    def used() -> int:
        return sum(keep) + sum(k < len(lines) for k, (lines, _) in zip(keep, sections, strict=True))

    for floors in (_FLOORS, (0,) * len(sections)):
        for i in reversed(range(len(sections))):
            step = sections[i][1]
            while used() > room and keep[i] - step >= floors[i]:
                keep[i] -= step
    return keep


def _draw(line: Line, width: int, color: bool) -> str:
    """The segments of one line, cut to ``width`` visible characters (… marks a cut)."""
    out, used = [], 0
    for text, style in line:
        text = _ANSI.sub("", text)
        left = width - used
        if left <= 0:
            break
        if len(text) > left:
            text = text[: left - 1] + "…"
        used += len(text)
        out.append(f"{style}{text}{RESET}" if color and style else text)
    return "".join(out).rstrip()


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _severity_rank(event: dict[str, Any]) -> tuple[int, str]:
    severity = event.get("severity")
    rank = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
    return rank, str(event.get("raised_at", ""))
