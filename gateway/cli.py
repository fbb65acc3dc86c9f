"""``gridgate``: run the daemon, check a config, decode HJ 212 frames; commission a site.

``scan``, ``probe`` and ``read`` talk to the field devices; ``monitor``,
``ack``, ``verify`` and ``alarm-test`` act as a command center would;
``report`` writes the commissioning report a technician hands over.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from contracts.errors import ConfigError, GridGateError
from gateway import __version__
from gateway.config import load_config

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridgate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gridgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the gateway in the foreground, logging to stderr")
    run.add_argument("--config", required=True, help="site config file (TOML)")
    run.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="overrides $GRIDGATE_LOG_LEVEL and [logging] level (default INFO)",
    )
    check = commands.add_parser("check", help="validate a config file and summarise it")
    check.add_argument("config", help="site config file (TOML)")
    check.add_argument(
        "--explain",
        action="store_true",
        help="also show each bus's polling plan: reads per poll and estimated bus time",
    )
    commands.add_parser(
        "web-password", help="make the password hash of a status-page user, for [web] users in the config"
    )
    commands.add_parser(
        "warm", help="compile the detection kernels into $NUMBA_CACHE_DIR now, so the first start is quick"
    )
    baseline = commands.add_parser("baseline", help="detection baselines")
    baseline_tools = baseline.add_subparsers(dest="tool", required=True)
    seed = baseline_tools.add_parser(
        "seed", help="learn baselines from known-good history (CSV), with the gateway stopped"
    )
    seed.add_argument("--config", required=True, help="site config file (TOML)")
    seed.add_argument("--from", dest="history", required=True, help="CSV: timestamp,device,channel,value")
    profiles = commands.add_parser("profiles", help="list the device profiles a config can name")
    profiles.add_argument("--config", help="also the site's own profiles/ beside this config file")
    hj212 = commands.add_parser("hj212", help="HJ 212 tools for datalogger commissioning")
    hj212_tools = hj212.add_subparsers(dest="tool", required=True)
    decode = hj212_tools.add_parser("decode", help="decode frames, one per line, into JSON lines")
    decode.add_argument("file", nargs="?", default="-", help="file of frames (default: stdin)")
    decode.add_argument(
        "--crc",
        choices=("standard", "modbus", "none"),
        default="standard",
        help="CRC to accept, as a device's `crc` setting (default: standard)",
    )
    _add_command_center_parsers(commands)
    _add_commissioning_parsers(commands)
    from firmware_tools.fleet_cli import add_fleet_parser
    from firmware_tools.keys_cli import add_keys_parser

    add_keys_parser(commands)
    add_fleet_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.config, explain=args.explain)
    if args.command == "web-password":
        return _web_password()
    if args.command == "warm":
        return _warm()
    if args.command == "baseline":
        return _seed_baseline(args.config, args.history)
    if args.command == "profiles":
        return _profiles(args.config)
    if args.command == "hj212":
        return _hj212_decode(args.file, args.crc)
    if args.command == "report":
        from firmware_tools.report_cli import run_report

        return run_report(args)
    if args.command in ("probe", "read"):
        from firmware_tools.probe_cli import run_probe

        return run_probe(args)
    if args.command == "scan":
        from firmware_tools.scan_cli import run_scan

        return run_scan(args)
    if args.command == "fleet":
        from firmware_tools.fleet_cli import run_fleet

        return run_fleet(args)
    if args.command == "keys":
        from firmware_tools.keys_cli import run_keys

        return run_keys(args)
    if args.command in ("monitor", "ack", "verify", "alarm-test"):
        from firmware_tools.cc_cli import run_command_center

        return run_command_center(args)
    return _run(args.config, args.log_level)


def _add_command_center_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from firmware_tools.broker_target import add_broker_options

    monitor = commands.add_parser(
        "monitor", help="live view of gateways, devices and open events; exit 3 if the broker is unreachable"
    )
    add_broker_options(monitor)
    monitor.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    for name, what in (
        ("ack", "acknowledge an event; exit 0 if taken, 4 if refused"),
        ("verify", "ask whether a problem stayed fixed; exit 0 verified, 1 not verified, 4 refused"),
    ):
        sub = commands.add_parser(name, help=f"{what}; 3: no broker or no answer")
        add_broker_options(sub)
        _add_key_options(sub)
        sub.add_argument("event_id", nargs="?", help="the event id")
        sub.add_argument("--gateway", help="gateway id (default: the config's, or the one online gateway)")
        sub.add_argument("--protocol", choices=["5", "3.1.1"], default="5")
        if name == "ack":
            sub.add_argument("--operator", help="who acknowledges (unsigned requests; a key names itself)")
        else:
            sub.add_argument("--device", help="verify a device and category instead of an event")
            sub.add_argument("--category")
    test = commands.add_parser(
        "alarm-test", help="trigger a real condition and confirm its alarm reached the broker; exit 0 passed"
    )
    add_broker_options(test)
    _add_key_options(test)
    test.add_argument("device", help="the device whose alarm is tested")
    test.add_argument("--category", help="only an event of this category counts (default: any)")
    test.add_argument("--gateway", help="gateway id (default: the site config's)")
    test.add_argument("--timeout-s", type=float, default=120.0, help="how long to wait for the alarm")
    test.add_argument("--clear-timeout-s", type=float, default=0, help="then wait this long for its clear")
    test.add_argument("--ack-as", metavar="NAME", help="acknowledge the test alarm as NAME")
    test.add_argument("--technician", help="who ran the test, for the report")
    test.add_argument("--record", default="alarm-tests.json", help="results file for the report (appended)")


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="FILE", help="sign with this private key (gridgate keys new)")
    parser.add_argument("--key-id", help="the id the gateway trusts the key under (default: FILE's stem)")


def _add_commissioning_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from firmware_tools.probe_cli import add_probe_parsers
    from firmware_tools.report_cli import add_report_parser
    from firmware_tools.scan_cli import add_scan_parser

    add_scan_parser(commands)
    add_probe_parsers(commands)
    add_report_parser(commands)


def _check(path: str, *, explain: bool = False) -> int:
    try:
        config, digest = load_config(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    channels = sum(len(d.channels) for d in config.devices)
    print(
        f"{path}: ok — gateway {config.gateway.id}, {len(config.devices)} device(s), "
        f"{channels} channel(s), {len(config.rules)} rule(s), digest {digest}"
    )
    if explain:
        from drivers.modbus.plan import bus_plans, describe
        from drivers.modbus.spec import BUSES

        for plan in bus_plans(config.section(BUSES.key), config.devices):
            print("\n".join(describe(plan)))
    return 0


def _web_password() -> int:
    """Asks twice on a terminal; reads one line from a pipe (for scripts)."""
    import getpass

    from gateway.config.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("a password needs at least 8 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def _warm() -> int:
    from gateway.detect.cache import kernel_cache_dir
    from gateway.detect.compiled import BuildError, build
    from gateway.detect.engine import DetectionEngine

    started = time.monotonic()
    seconds = DetectionEngine((), (), ()).warm_up(every_kind=True)
    print(f"detection kernels ready in {kernel_cache_dir()} ({seconds:.1f} s)")
    try:
        path = build()
    except BuildError as exc:
        print(
            f"gridgate warm: cannot compile the kernels' module ({exc}); the daemon loads them through"
            " the JIT, which needs about 110 MB more memory (install gcc and python3-dev, then warm again)",
            file=sys.stderr,
        )
        return 0
    print(f"compiled kernels in {path} ({time.monotonic() - started:.1f} s in all)")
    return 0


def _seed_baseline(path: str, history: str) -> int:
    from gateway.detect.engine import DetectionEngine
    from gateway.detect.persist import STATE_FILE, load_state, save_state
    from gateway.detect.seed import seed

    try:
        config, _ = load_config(path)
        engine = DetectionEngine(
            config.rules, config.cross_rules, config.multivariate, timezone_name=config.detection.timezone
        )
        load_state(config.storage.directory, engine)
        known = {(d.id, ch.id) for d in config.devices for ch in d.channels}
        seeded = seed(engine, Path(history), known)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"{history}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for device, channel in sorted(seeded.unknown):
        print(f"skipped {device}/{channel}: no such channel in {path}", file=sys.stderr)
    if not seeded.readings:
        print(f"{history}: no readings of a configured channel; nothing saved", file=sys.stderr)
        return 1
    error = save_state(config.storage.directory, engine)
    if error is not None:
        print(f"{config.storage.directory / STATE_FILE}: {error.strerror or error}", file=sys.stderr)
        return 1
    span_h = (seeded.last - seeded.first) / 3600.0
    print(
        f"seeded {seeded.readings} reading(s) of {len(seeded.channels)} channel(s) over {span_h:.1f} h; "
        f"saved to {config.storage.directory / STATE_FILE}"
    )
    return 0


def _profiles(config: str | None) -> int:
    from contracts.profiles import available_profiles, default_profile_dirs, read_profile
    from drivers.registry import SPECS, profile_problems

    search = default_profile_dirs(Path(config).resolve().parent if config else None)
    problems = 0
    for name in available_profiles(search):
        try:
            profile = read_profile(name, search)
            found = profile_problems(profile, search)
        except ConfigError as exc:
            found = [str(exc)]
        if found:
            print(f"{name:<22} invalid: {'; '.join(found)}", file=sys.stderr)
            problems += 1
            continue
        driver = SPECS[profile.driver or "modbus"].name
        summary = profile.description.splitlines()[0] if profile.description else ""
        print(f"{name:<22} {driver:<10} {len(profile.channels):>3} channel(s)  {summary}")
    print("searched: " + ", ".join(str(d) for d in search))
    return EXIT_CONFIG if problems else 0


def _hj212_decode(path: str, crc_mode: str) -> int:
    """Exit 0 when every frame verified, 1 when some were rejected, 2 when the file is missing."""
    from drivers.hj212.codec import CrcMode
    from drivers.hj212.describe import decode_lines

    crc = CrcMode(crc_mode)
    if path == "-":
        return 1 if decode_lines(sys.stdin.buffer, sys.stdout, crc=crc) else 0
    try:
        lines = open(path, "rb")  # noqa: SIM115 - closed below, after the read errors are told apart
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    with lines:
        return 1 if decode_lines(lines, sys.stdout, crc=crc) else 0


def _run(path: str, level: str | None) -> int:
    try:
        config, digest = load_config(path)
        from gateway.remote.apply import recover

        if recover(Path(path), config.storage.directory):  # an apply cut short: the old config is back
            config, digest = load_config(path)
    except ConfigError as exc:
        return _check(exc.source)
    from gateway.service import logs

    try:
        logs.configure(config.logging, level=level)
    except ValueError as exc:  # $GRIDGATE_LOG_LEVEL
        print(f"{logs.LEVEL_ENV}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from gateway.service import eventloop
    from gateway.service.daemon import Daemon  # numba loads here, not for `check`

    try:
        loop_kind = eventloop.chosen()
    except ValueError as exc:
        print(f"{eventloop.ENV}: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def supervise() -> None:
        daemon = Daemon(config, config_digest=digest, config_path=Path(path))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stop)
        loop.add_signal_handler(signal.SIGHUP, daemon.reload)  # systemctl reload gridgate
        await daemon.run()

    try:
        eventloop.run(supervise(), loop_kind)
    except GridGateError as exc:
        logging.getLogger("gridgate").error("%s", exc)
        return 1
    return 0
