"""A live view of what a gateway publishes, one line per message, as the command center sees it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from datetime import datetime
from typing import Any

import aiomqtt

RED, GREEN, DIM, BOLD, RESET = "\033[31m", "\033[32m", "\033[2m", "\033[1m", "\033[0m"


def _local_time(ts: object) -> str:
    """The message's own time in local time; now, for a message without a readable one."""
    try:
        moment = datetime.fromisoformat(str(ts).replace("Z", "+00:00")).astimezone()
    except ValueError:
        moment = datetime.now()
    return moment.strftime("%H:%M:%S")


def describe(topic: str, payload: dict[str, Any], *, color: bool = True) -> str:
    """One human line for one published message."""
    red, green, dim, bold, reset = (RED, GREEN, DIM, BOLD, RESET) if color else ("",) * 5
    kind = topic.rsplit("/", 2)
    gateway = payload.get("gateway", "?")
    seq = payload.get("seq", "?")
    stamp = _local_time(payload.get("ts"))
    head = f"{stamp} {gateway} #{seq:<5}" if isinstance(seq, int) else f"{stamp} {gateway} #{seq}"
    if topic.endswith("/state"):
        state = payload.get("state")
        tint = green if state == "online" else red
        extra = f" v{payload.get('version')} config {str(payload.get('config_digest', ''))[:8]}"
        if payload.get("reason"):
            extra += f" ({payload['reason']})"
        return f"{head} {tint}{bold}GATEWAY {str(state).upper()}{reset}{extra}"
    if topic.endswith("/status") and "/devices/" in topic:
        state = str(payload.get("state"))
        tint = green if state == "online" else red
        why = "" if state == "online" else f" ({payload.get('reason')})"
        return f"{head} {tint}DEVICE {payload.get('device')} {state.upper()}{reset}{why}"
    if topic.endswith("/events"):
        unit = payload.get("unit", "")
        where = f"{payload.get('device')}/{payload.get('channel') or payload.get('condition')}"
        pictures = _pictures(payload)
        if payload.get("state") == "raised":
            value = payload.get("value")
            reading = (
                "" if value is None else f" = {_shown(value)} {unit} (limit {_shown(payload.get('limit'))})"
            )
            return (
                f"{head} {red}{bold}{str(payload.get('class', 'alarm')).upper()} RAISED{reset}"
                f"  {payload.get('category')} {where}{reading}"
                f" [{payload.get('severity')}] id {payload.get('event_id')}{pictures}"
            )
        if payload.get("state") != "cleared":
            by = f" by {payload['acknowledged_by']}" if payload.get("acknowledged_by") else ""
            return (
                f"{head} {red}EVENT {str(payload.get('state')).upper()}{reset}{by} {payload.get('category')}"
                f" {where} peak {_shown(payload.get('peak'))} {unit} id {payload.get('event_id')}{pictures}"
            )
        return (
            f"{head} {green}{bold}{str(payload.get('class', 'alarm')).upper()} CLEARED{reset}"
            f" {payload.get('category')} {where} = {_shown(payload.get('value'))} {unit}"
            f" ({payload.get('reason', '')}) id {payload.get('event_id')}"
        )
    if "/telemetry/" in topic:
        readings = payload.get("readings", {})
        shown = " ".join(f"{k}={_shown(v)}" for k, v in readings.items())
        return f"{dim}{head} telemetry {kind[-1]}: {shown}{reset}"
    return f"{head} {topic}: {json.dumps(payload, ensure_ascii=False)}"


def _pictures(event: dict[str, Any]) -> str:
    """The pictures an event carries as evidence, by camera and size (fetched with the evidence command)."""
    shots = [e for e in event.get("evidence") or () if isinstance(e, dict) and e.get("kind") == "snapshot"]
    if not shots:
        return ""
    return " pictures " + ", ".join(f"{e.get('camera')} ({e.get('size')} B)" for e in shots)


def _shown(value: object) -> str:
    """A value as published (the gateway rounds to the channel's resolution), in at most 6 digits."""
    return f"{value:.6g}" if isinstance(value, (int, float)) else "—"


async def watch(host: str, port: int, topic_filter: str, *, color: bool = True) -> None:
    """Print every message under ``topic_filter`` until cancelled; survive broker restarts."""
    while True:
        try:
            async with aiomqtt.Client(host, port) as client:
                await client.subscribe(topic_filter, qos=1)
                async for message in client.messages:
                    try:
                        payload = json.loads(bytes(message.payload))
                    except (ValueError, TypeError):
                        print(f"{message.topic}: (not JSON) {message.payload!r}", flush=True)
                        continue
                    print(describe(str(message.topic), payload, color=color), flush=True)
        except aiomqtt.MqttError:
            await asyncio.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--topic", default="gridgate/v1/#")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(args.host, args.port, args.topic))


if __name__ == "__main__":
    main()
