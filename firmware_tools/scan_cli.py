"""``gridgate scan``: find the units on an RS-485 line (or behind a serial device server).

Exit status: 0 some unit answered, 1 none did, 2 wrong command line,
3 the port or server cannot be opened (in use by a running gateway, absent).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path

from contracts.errors import ConfigError, DriverError
from drivers.modbus.profiles import Profile, available_profiles, default_profile_dirs, load_profile
from drivers.modbus.scan import (
    COMMON_BAUDRATES,
    COMMON_PARITIES,
    DEFAULT_BUDGET_S,
    Found,
    LineSetting,
    Progress,
    ScanPlan,
    ScanResult,
    parse_units,
    scan,
)
from firmware_tools.progress import ProgressBar, duration

TCP_REPLY_S = 0.15  # a device server adds its network and serial time to the device's


def add_scan_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    scan_parser = commands.add_parser(
        "scan", help="find the units on a serial line or RTU-over-TCP server, and what they are"
    )
    where = scan_parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--serial", help="serial port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...")
    where.add_argument("--rtu-tcp", metavar="HOST:PORT", help="a serial device server passing RTU frames")
    scan_parser.add_argument(
        "--baud", default=",".join(map(str, COMMON_BAUDRATES)), help="baud rates to try, in order"
    )
    scan_parser.add_argument("--parity", default=",".join(COMMON_PARITIES), help="parities to try (N,E,O)")
    scan_parser.add_argument("--units", default="1-247", help="unit ids, e.g. 1-16,20 (default 1-247)")
    scan_parser.add_argument(
        "--budget-s", type=float, default=DEFAULT_BUDGET_S, help="stop after this long (default %(default)s)"
    )
    scan_parser.add_argument(
        "--reply-s", type=float, help="time a unit gets to start answering (default 0.05; 0.15 over TCP)"
    )
    scan_parser.add_argument("--profiles", help="a site's profiles/ directory, searched before the shipped")
    scan_parser.add_argument(
        "--write-config", metavar="FILE", help="write [[buses]]/[[devices]] for what answered"
    )


def run_scan(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
        profiles = _profiles(args.profiles)
    except (ValueError, ConfigError) as exc:
        print(f"gridgate scan: {exc}", file=sys.stderr)
        return 2
    where = args.serial or args.rtu_tcp
    sweeps = len(plan.sweeps())
    print(
        f"scanning {where}: {len(plan.units)} unit id(s) × {sweeps} setting(s), "
        f"at most {duration(plan.estimate_s())} (budget {duration(plan.budget_s)}); "
        f"profiles: {', '.join(p.name for p in profiles)}",
        flush=True,
    )
    bar = ProgressBar(sys.stderr)

    def progress(p: Progress) -> None:
        setting = f"{p.setting} " if p.setting else ""
        bar.update(p.done, p.total, f"{setting}unit {p.unit}, {p.found} found", p.left_s)

    try:
        result = asyncio.run(scan(plan, profiles, progress))
    except DriverError as exc:
        bar.close()
        print(f"gridgate scan: {exc}", file=sys.stderr)
        return 3
    bar.close()
    print("\n".join(report_lines(result)))
    if args.write_config and result.found:
        Path(args.write_config).write_text(config_skeleton(result, plan))
        print(f"wrote {args.write_config}: check ids and poll intervals, then add [gateway] and [uplink]")
    return 0 if result.found else 1


def _plan(args: argparse.Namespace) -> ScanPlan:
    units = parse_units(args.units)
    if args.serial:
        bauds = [int(b) for b in args.baud.split(",")]
        parities = [p.strip().upper() for p in args.parity.split(",")]
        if any(p not in COMMON_PARITIES for p in parities):
            raise ValueError(f"--parity: N, E or O, got {args.parity!r}")
        settings = [LineSetting(b, p) for p in parities for b in bauds]
        return ScanPlan(
            transport="rtu",
            units=units,
            settings=settings,
            device=args.serial,
            reply_s=args.reply_s or 0.05,
            budget_s=args.budget_s,
        )
    host, _, port = args.rtu_tcp.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--rtu-tcp: expected host:port, got {args.rtu_tcp!r}")
    return ScanPlan(
        transport="rtu_tcp",
        units=units,
        host=host,
        port=int(port),
        reply_s=args.reply_s or TCP_REPLY_S,
        budget_s=args.budget_s,
    )


def _profiles(site_dir: str | None) -> list[Profile]:
    search = default_profile_dirs()
    if site_dir:
        search = [Path(site_dir), *search]
    return [load_profile(name, search) for name in available_profiles(search)]


def report_lines(result: ScanResult) -> list[str]:
    """The table of what answered, and what the scan did not cover."""
    lines = [f"{result.probes} probe(s) in {result.elapsed_s:.1f} s; {len(result.found)} unit(s) answered"]
    if result.found:
        lines.append(f"{'SETTING':<10} {'UNIT':>4}  {'ANSWER':<18} {'PROFILE':<18} HOW")
    for found in result.found:
        best = found.matches[0] if found.matches else None
        profile = found.profile or ("ambiguous" if found.matches else "unknown")
        how = best.how if best else "no profile fits"
        if found.matches and found.profile is None:
            how = "fits " + " and ".join(m.profile for m in found.matches[:2])
        setting = str(found.setting) if found.setting else "tcp"
        lines.append(f"{setting:<10} {found.unit:>4}  {found.answer:<18} {profile:<18} {how}")
    for setting, count in result.noise.items():
        lines.append(f"{setting}: {count} answer(s) that were no frame: a unit at another parity, or noise")
    if result.skipped:
        lines.append(f"not tried (budget ran out): {', '.join(map(str, result.skipped))}; raise --budget-s")
    return lines


def config_skeleton(result: ScanResult, plan: ScanPlan) -> str:
    """``[[buses]]`` and ``[[devices]]`` for what answered, on one bus at the setting most units use.

    Units on one wire must share a setting; one that answered at another is
    written with a comment saying to set it to the bus's.
    """
    out = ["# Written by gridgate scan: check the ids and poll intervals, add [gateway] and [uplink].", ""]
    settings = Counter(f.setting for f in result.found)
    setting = settings.most_common(1)[0][0]
    out += ["[[buses]]", 'id = "rs485-1"']
    if setting is None:
        out += ['transport = "rtu_tcp"', f'host = "{plan.host}"', f"port = {plan.port}", ""]
    else:
        out += ['transport = "rtu"', f'device = "{plan.device}"', f"baudrate = {setting.baudrate}"]
        out += [f'parity = "{setting.parity}"', ""]
    for found in result.found:
        if found.setting != setting:
            out.append(f"# answered at {found.setting}: set the unit to {setting} (its menu or DIP switches)")
        out += _device_lines(found, "rs485-1")
    return "\n".join(out)


def _device_lines(found: Found, bus: str) -> list[str]:
    name = found.profile or "device"
    lines = ["[[devices]]", f'id = "{name}-{found.unit}"', 'driver = "modbus"', f'bus = "{bus}"']
    lines.append(f"unit_id = {found.unit}")
    if found.profile:
        lines.append(f'profile = "{found.profile}"')
    else:
        lines.append(
            'channels = [ { id = "value", address = 0 } ]  # no profile fits: write its register map'
        )
    return [*lines, ""]
