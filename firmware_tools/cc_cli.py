"""``gridgate monitor|ack|verify|alarm-test``: the command center's side, from a terminal.

Exit status, for scripts and for a technician's checklist:

- 0: done — the board ran, the ack was taken, or verify answered *verified*,
- 1: verify answered *not verified* (the condition is present, not cleared
  long enough, or there is no data),
- 2: the command line or the site config is wrong,
- 3: the broker cannot be reached, or no gateway answered,
- 4: the gateway refused the request (unknown event, malformed request).

``alarm-test`` exits 0 when the alarm arrived (and cleared, if asked), 1 when not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import aiomqtt

from firmware_tools.alarm_test import alarm_test, record
from firmware_tools.broker_target import BrokerTarget, TargetError, broker_target, explain_failure
from firmware_tools.command_client import CommandFailed, Signer, ask
from firmware_tools.monitor import BrokerUnavailable, monitor
from gateway.remote.signing import KeyFileError

EXIT_OK = 0
EXIT_NOT_VERIFIED = 1
EXIT_USAGE = 2
EXIT_NO_ANSWER = 3
EXIT_REFUSED = 4


def run_command_center(args: argparse.Namespace) -> int:
    """Run ``monitor``, ``ack`` or ``verify`` as parsed by gateway.cli; return the exit status."""
    try:
        target = broker_target(args)
    except TargetError as exc:
        print(f"gridgate {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "monitor":
        return _monitor(target, args.duration)
    if args.command == "alarm-test":
        return _alarm_test(target, args)
    request = _request(args)
    if request is None:
        return EXIT_USAGE
    try:
        signer = _signer(args)
    except KeyFileError as exc:
        print(f"gridgate {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        answer = asyncio.run(
            ask(
                target, request, gateway=args.gateway or target.gateway, protocol=args.protocol, signer=signer
            )
        )
    except CommandFailed as exc:
        print(f"gridgate {args.command}: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    except aiomqtt.MqttError as exc:
        print(f"gridgate {args.command}: {explain_failure(exc, target)}", file=sys.stderr)
        return EXIT_NO_ANSWER
    print(json.dumps(answer, ensure_ascii=False, indent=2))
    if not answer.get("ok"):
        return EXIT_REFUSED
    if args.command == "verify" and not answer.get("result", {}).get("verified"):
        return EXIT_NOT_VERIFIED
    return EXIT_OK


def _monitor(target: BrokerTarget, duration_s: float) -> int:
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(monitor(target, duration_s=duration_s, color=sys.stdout.isatty()))
    except BrokerUnavailable as exc:
        print(f"gridgate monitor: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    return EXIT_OK


def _alarm_test(target: BrokerTarget, args: argparse.Namespace) -> int:
    gateway = args.gateway or target.gateway
    if gateway is None:
        print("gridgate alarm-test: name the gateway with --gateway, or give --config", file=sys.stderr)
        return EXIT_USAGE
    try:
        signer = _signer(args)
    except KeyFileError as exc:
        print(f"gridgate alarm-test: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = asyncio.run(
            alarm_test(
                target,
                gateway=gateway,
                device=args.device,
                category=args.category,
                timeout_s=args.timeout_s,
                clear_timeout_s=args.clear_timeout_s,
                ack_as=args.ack_as,
                signer=signer,
            )
        )
    except aiomqtt.MqttError as exc:
        print(f"gridgate alarm-test: {explain_failure(exc, target)}", file=sys.stderr)
        return EXIT_NO_ANSWER
    result.technician = args.technician
    record(result, Path(args.record))
    print(f"recorded in {args.record}")
    return EXIT_OK if result.result == "pass" else 1


def _signer(args: argparse.Namespace) -> Signer | None:
    return Signer.from_file(args.key, args.key_id) if args.key else None


def _request(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.command == "ack":
        if not args.event_id:
            print("gridgate ack: give the EVENT_ID", file=sys.stderr)
            return None
        if not args.key and not args.operator:
            print(
                "gridgate ack: give --key FILE (or, where unsigned is allowed, --operator)", file=sys.stderr
            )
            return None
        request = {"command": "ack", "event_id": args.event_id}
        return request | ({"operator": args.operator} if args.operator else {})
    if args.event_id:
        return {"command": "verify", "event_id": args.event_id}
    if args.device and args.category:
        return {"command": "verify", "device": args.device, "category": args.category}
    print("gridgate verify: give an EVENT_ID, or --device and --category", file=sys.stderr)
    return None
