"""``gridgate probe`` (live values, refreshed in place) and ``gridgate read`` (one reading as JSON).

The device is one of a site config (``--config site.toml DEVICE``) or given
on the command line: ``--serial PORT`` (with ``--baud``, ``--parity``) or
``--rtu-tcp HOST:PORT``, ``--unit`` and ``--profile``. Exit status: 0 read,
2 wrong command line or config, 3 the device could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import time

from contracts.errors import ConfigError
from drivers.modbus.access import register_access
from drivers.modbus.config import BusConfig
from drivers.modbus.profiles import default_profile_dirs, load_profile
from drivers.modbus.spec import BUSES
from firmware_tools.probe import Probe, ProbeTarget, Sample
from gateway.config import load_config

CLEAR_SCREEN = "\033[H\033[2J"
RED, DIM, BOLD, RESET = "\033[31m", "\033[2m", "\033[1m", "\033[0m"


def add_probe_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, what in (
        ("probe", "live values of one device, refreshed in place, checked against its profile"),
        ("read", "one reading of one device as JSON"),
    ):
        sub = commands.add_parser(name, help=what)
        sub.add_argument("device", nargs="?", help="device id in the site config")
        sub.add_argument("--config", help="site config that has the device")
        sub.add_argument("--serial", help="serial port, instead of a site config")
        sub.add_argument("--rtu-tcp", metavar="HOST:PORT", help="a serial device server, instead of a config")
        sub.add_argument("--baud", type=int, default=9600)
        sub.add_argument("--parity", choices=["N", "E", "O"], default="N")
        sub.add_argument("--unit", type=int, help="unit id (with --serial or --rtu-tcp)")
        sub.add_argument("--profile", help="profile of the device (with --serial or --rtu-tcp)")
        sub.add_argument("--timeout-s", type=float, default=1.0, help="for a device not from a config")
        if name == "probe":
            sub.add_argument(
                "--interval", type=float, help="seconds between reads (default: its poll interval)"
            )
            sub.add_argument("--count", type=int, default=0, help="stop after this many reads (0: Ctrl-C)")


def run_probe(args: argparse.Namespace) -> int:
    try:
        target, interval = _target(args)
    except (ConfigError, ValueError) as exc:
        print(f"gridgate {args.command}: {exc}", file=sys.stderr)
        return 2
    if args.command == "read":
        sample = asyncio.run(_once(target))
        print(json.dumps(sample.as_json(target), ensure_ascii=False, indent=2))
        return 3 if sample.error else 0
    every = args.interval if args.interval is not None else interval
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_live(target, every, args.count, sys.stdout.isatty()))
    return 0


async def _once(target: ProbeTarget) -> Sample:
    probe = Probe(target)
    try:
        return await probe.sample()
    finally:
        probe.close()


async def _live(target: ProbeTarget, interval: float, count: int, tty: bool) -> int:
    probe = Probe(target)
    started = time.monotonic()
    failed = False
    try:
        n = 0
        while count <= 0 or n < count:
            began = time.monotonic()
            sample = await probe.sample()
            n += 1
            failed = sample.error is not None
            rate = probe.reads / max(time.monotonic() - started, 1e-9)
            text = "\n".join(render(target, sample, reads=probe.reads, rate=rate, color=tty))
            print((CLEAR_SCREEN if tty else "") + text + ("" if tty else "\n"), flush=True)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))
    finally:
        probe.close()
    return 3 if failed else 0


def render(target: ProbeTarget, sample: Sample, *, reads: int, rate: float, color: bool) -> list[str]:
    """The probe's screen: where, counters, one line per channel (fits 80 columns)."""
    red, dim, bold, reset = (RED, DIM, BOLD, RESET) if color else ("",) * 4
    width = shutil.get_terminal_size((80, 24)).columns
    stamp = time.strftime("%H:%M:%S", time.localtime(sample.ts))
    lines = [f"{bold}{target.device}{reset} unit {target.unit} on {target.where()}"]
    lines.append(f"{dim}{stamp}  {reads} read(s), {rate:.1f}/s  " + _counters(sample.counters) + reset)
    if sample.error:
        lines.append(f"{red}{bold}NO ANSWER{reset} {sample.error}")
        return lines
    lines.append(f"{'CHANNEL':<16} {'VALUE':>12} {'UNIT':<7} CHECK")
    for check in sample.checks:
        value = "—" if check.value is None else f"{check.value:.7g}"
        bad = check.check in ("out_of_range", "missing") or check.notes
        verdict = {"ok": "ok", "no_range": "", "missing": "MISSING", "out_of_range": "OUT OF RANGE"}[
            check.check
        ]
        if check.check == "out_of_range":
            ch = next(c for c in target.channels if c.id == check.channel)
            assert ch.plausible is not None
            verdict += f" {ch.plausible[0]:g}–{ch.plausible[1]:g}"
        verdict = "; ".join([v for v in (verdict, *check.notes) if v])
        line = f"{check.channel:<16} {value:>12} {check.unit:<7} {verdict}"[:width]
        lines.append(f"{red}{line}{reset}" if bad else line)
    return lines


def _counters(counters: dict[str, float]) -> str:
    faults = ", ".join(
        f"{k} {v:g}" for k, v in counters.items() if k not in ("requests", "ok", "busy_s") and v
    )
    return f"requests {counters.get('requests', 0):g}, ok {counters.get('ok', 0):g}" + (
        f", {faults}" if faults else ""
    )


def _target(args: argparse.Namespace) -> tuple[ProbeTarget, float]:
    """The device to read and its poll interval."""
    if args.config:
        if not args.device:
            raise ValueError("give the DEVICE id of the site config")
        return _from_config(args.config, args.device)
    if not (args.serial or args.rtu_tcp) or args.unit is None or not args.profile:
        raise ValueError("give --config site.toml DEVICE, or --serial/--rtu-tcp with --unit and --profile")
    if args.serial:
        bus = BusConfig(id="probe", device=args.serial, baudrate=args.baud, parity=args.parity)
    else:
        host, _, port = args.rtu_tcp.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--rtu-tcp: expected host:port, got {args.rtu_tcp!r}")
        bus = BusConfig(id="probe", transport="rtu_tcp", host=host, port=int(port))
    profile = load_profile(args.profile, default_profile_dirs())
    name = f"{args.profile}-{args.unit}"
    return ProbeTarget(name, bus, args.unit, profile.channels, timeout_s=args.timeout_s), 1.0


def _from_config(path: str, device_id: str) -> tuple[ProbeTarget, float]:
    config, _ = load_config(path)
    device = next((d for d in config.devices if d.id == device_id), None)
    if device is None:
        known = ", ".join(d.id for d in config.devices)
        raise ValueError(f"{path}: no device {device_id!r}; there are: {known}")
    access = register_access(device, config.section(BUSES.key))
    if access is None:
        raise ValueError(f"{device_id}: a {device.driver} device pushes its data; probe reads Modbus devices")
    target = ProbeTarget(
        device.id,
        access.bus,
        access.unit,
        access.channels,
        timeout_s=access.timeout_s,
        retries=access.retries,
    )
    return target, getattr(device, "poll_interval_s", 5.0)
