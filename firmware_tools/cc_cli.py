"""``gridgate monitor|ack|verify``: the command center's side, from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

import aiomqtt

from firmware_tools.command_client import CommandFailed, send_command
from firmware_tools.monitor import monitor

EXIT_REFUSED = 1
EXIT_NO_ANSWER = 3


def run_command_center(args: argparse.Namespace) -> int:
    """Run ``monitor``, ``ack`` or ``verify`` as parsed by gateway.cli; return the exit status."""
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        print(f"--broker: expected host:port, got {args.broker!r}", file=sys.stderr)
        return 2
    if args.command == "monitor":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                monitor(
                    host,
                    int(port),
                    args.prefix,
                    duration_s=args.duration,
                    color=sys.stdout.isatty(),
                )
            )
        return 0
    request = _request(args)
    if request is None:
        return 2
    try:
        answer = asyncio.run(
            send_command(
                host,
                int(port),
                request,
                prefix=args.prefix,
                gateway=args.gateway,
                protocol=args.protocol,
            )
        )
    except (CommandFailed, aiomqtt.MqttError) as exc:
        print(f"gridgate {args.command}: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    return 0 if answer.get("ok") else EXIT_REFUSED


def _request(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.command == "ack":
        if not args.event_id:
            print("gridgate ack: give the EVENT_ID", file=sys.stderr)
            return None
        return {"command": "ack", "event_id": args.event_id, "operator": args.operator}
    if args.event_id:
        return {"command": "verify", "event_id": args.event_id}
    if args.device and args.category:
        return {"command": "verify", "device": args.device, "category": args.category}
    print("gridgate verify: give an EVENT_ID, or --device and --category", file=sys.stderr)
    return None
