"""``gridgate``: run the daemon, check a config, decode HJ 212 frames; monitor, ack and verify.

The last three act as a command center would, for technicians on site.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.config import load_config
from gateway.errors import ConfigError, GridGateError

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridgate", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gridgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the gateway in the foreground, logging to stderr")
    run.add_argument("--config", required=True, help="site config file (TOML)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    check = commands.add_parser("check", help="validate a config file and summarise it")
    check.add_argument("config", help="site config file (TOML)")
    check.add_argument(
        "--explain",
        action="store_true",
        help="also show each bus's polling plan: reads per poll and estimated bus time",
    )
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
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.config, explain=args.explain)
    if args.command == "hj212":
        return _hj212_decode(args.file, args.crc)
    if args.command in ("monitor", "ack", "verify"):
        from firmware_tools.cc_cli import run_command_center

        return run_command_center(args)
    return _run(args.config, args.log_level)


def _add_command_center_parsers(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def broker_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--broker", default="127.0.0.1:1883", help="host:port of the MQTT broker")
        sub.add_argument("--prefix", default="gridgate/v1", help="topic prefix of the gateways")

    monitor = commands.add_parser("monitor", help="live view of gateways, devices and open events")
    broker_options(monitor)
    monitor.add_argument("--duration", type=float, default=0, help="stop after this many seconds")
    for name, what in (("ack", "acknowledge an event"), ("verify", "ask whether a problem stayed fixed")):
        sub = commands.add_parser(name, help=f"{what} and print the gateway's answer")
        broker_options(sub)
        sub.add_argument("event_id", nargs="?", help="the event id")
        sub.add_argument("--gateway", help="gateway id (default: the one online gateway)")
        sub.add_argument("--protocol", choices=["5", "3.1.1"], default="5")
        if name == "ack":
            sub.add_argument("--operator", required=True, help="who acknowledges")
        else:
            sub.add_argument("--device", help="verify a device and category instead of an event")
            sub.add_argument("--category")


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

        for plan in bus_plans(config.buses, config.devices):
            print("\n".join(describe(plan)))
    return 0


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


def _run(path: str, level: str) -> int:
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # failures are reported by the poller
    try:
        config, digest = load_config(path)
    except ConfigError as exc:
        return _check(exc.source)
    from gateway.service import Daemon  # numba loads here, not for `check`

    async def supervise() -> None:
        daemon = Daemon(config, config_digest=digest)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stop)
        await daemon.run()

    try:
        asyncio.run(supervise())
    except GridGateError as exc:
        logging.getLogger("gridgate").error("%s", exc)
        return 1
    return 0
