"""``gridgate monitor``: what the command center sees, as a live board.

Gateways online/offline (retained state), their devices (last telemetry),
and open events by severity with their acknowledgement state. Technicians run
it on site to check what the command center will see.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiomqtt

from firmware_tools.live_view import BOLD, DIM, GREEN, RED, RESET, describe

SEVERITY_ORDER = ("urgent", "important", "normal")
RECENT_EVENTS = 8
CLEAR_SCREEN = "\033[H\033[2J"


@dataclass
class Board:
    """The command center's picture, built from the messages it receives."""

    gateways: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    status: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent: deque[tuple[str, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))

    def apply(self, topic: str, payload: dict[str, Any]) -> None:
        """Fold one published message into the board."""
        levels = topic.split("/")
        if levels[-1] == "state" and len(levels) >= 2:
            self.gateways[levels[-2]] = payload
        elif levels[-1] == "health" and len(levels) >= 2:
            self.health[levels[-2]] = payload
        elif levels[-1] == "events":
            self.recent.append((topic, payload))
            if payload.get("state") == "cleared":
                self.events.pop(str(payload.get("event_id")), None)
            else:
                self.events[str(payload.get("event_id"))] = payload
        elif len(levels) >= 3 and levels[-2] == "telemetry":
            self.devices[(levels[-3], levels[-1])] = payload
        elif len(levels) >= 4 and levels[-1] == "status" and levels[-3] == "devices":
            self.status[(levels[-4], levels[-2])] = payload

    def render(self, *, color: bool = True) -> str:
        """The board as text, open events most severe first."""
        red, green, dim, bold, reset = (RED, GREEN, DIM, BOLD, RESET) if color else ("",) * 5
        lines = [f"{bold}GATEWAYS{reset}"]
        for gateway, state in sorted(self.gateways.items()):
            up = state.get("state") == "online"
            tint = green if up else red
            reason = f" ({state['reason']})" if state.get("reason") else ""
            lines.append(
                f"  {gateway:<20} {tint}{str(state.get('state')).upper():<8}{reset} "
                f"grid {state.get('grid_cell', '?')}  {state.get('site', '')}{reason}"
                f"{_health(self.health.get(gateway))}"
            )
        lines.append(f"{bold}DEVICES{reset}")
        for key in sorted(self.devices.keys() | self.status.keys()):
            telemetry, status = self.devices.get(key, {}), self.status.get(key)
            faults = telemetry.get("quality") or {}
            note = f" {red}{', '.join(f'{c}:{q}' for c, q in faults.items())}{reset}" if faults else ""
            if status is not None:
                up = status.get("state") == "online"
                counters = status.get("counters") or {}
                errors = sum(v for k, v in counters.items() if k not in ("requests", "ok", "busy_s"))
                wire = f" {dim}{counters.get('requests', 0)} req, {errors} bad{reset}" if counters else ""
                note = f" {green if up else red}{str(status.get('state')).upper()}{reset}{wire}{note}"
            lines.append(f"  {key[0]}/{key[1]:<16} {dim}last reading {telemetry.get('ts', '-')}{reset}{note}")
        open_events = sorted(self.events.values(), key=_severity_rank)
        lines.append(f"{bold}OPEN EVENTS ({len(open_events)}){reset}")
        for event in open_events:
            acked = event.get("acknowledged_by")
            ack = f"{green}ACK by {acked}{reset}" if acked else f"{red}{bold}NOT ACKNOWLEDGED{reset}"
            escalated = f" escalated ×{event['escalation']}" if event.get("escalation") else ""
            lines.append(
                f"  [{str(event.get('severity')).upper():<9}] {event.get('category')} "
                f"{event.get('gateway')}/{event.get('device')}/"
                f"{event.get('channel') or event.get('condition')} "
                f"{_reading(event)}"
                f"×{event.get('count', 1)} {ack}{escalated}  id {event.get('event_id')}"
            )
        lines.append(f"{bold}RECENT EVENT MESSAGES{reset}")
        lines += [f"  {describe(topic, payload, color=color)}" for topic, payload in self.recent]
        return "\n".join(lines)


def _health(health: dict[str, Any] | None) -> str:
    if not health:
        return ""
    devices, outbox = health.get("devices", {}), health.get("outbox", {})
    down = devices.get("offline", 0) + devices.get("faulty", 0)
    return (
        f"  devices {devices.get('online', 0)} up / {down} down, {outbox.get('pending', 0)} waiting,"
        f" {health.get('process', {}).get('rss_mb', '?')} MB"
    )


def _reading(event: dict[str, Any]) -> str:
    if event.get("peak") is None and event.get("limit") is None:
        return ""
    return f"peak {_number(event.get('peak'))} {event.get('unit', '')} (limit {event.get('limit')}) "


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _severity_rank(event: dict[str, Any]) -> tuple[int, str]:
    severity = event.get("severity")
    rank = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
    return rank, str(event.get("raised_at", ""))


async def follow(host: str, port: int, prefix: str, board: Board) -> None:
    """Keep ``board`` up to date until cancelled; survive broker restarts."""
    while True:
        try:
            async with aiomqtt.Client(host, port) as client:
                for kind in ("state", "health", "events", "telemetry/+", "devices/+/status"):
                    await client.subscribe(f"{prefix}/+/{kind}", qos=1)
                async for message in client.messages:
                    try:
                        payload = json.loads(bytes(message.payload))
                    except (ValueError, TypeError):
                        continue
                    if isinstance(payload, dict):
                        board.apply(str(message.topic), payload)
        except aiomqtt.MqttError:
            await asyncio.sleep(1.0)


async def monitor(
    host: str,
    port: int,
    prefix: str,
    *,
    refresh_s: float = 1.0,
    duration_s: float = 0,
    color: bool = True,
) -> Board:
    """Redraw the board every ``refresh_s`` until cancelled (or for ``duration_s``)."""
    board = Board()
    following = asyncio.create_task(follow(host, port, prefix, board), name="monitor-follow")
    started = time.monotonic()
    try:
        while duration_s <= 0 or time.monotonic() - started < duration_s:
            await asyncio.sleep(refresh_s)
            header = f"{prefix} on {host}:{port}  {time.strftime('%H:%M:%S')}\n"
            print((CLEAR_SCREEN if color else "") + header + board.render(color=color), flush=True)
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
    return board
