"""``gridgate report``: the commissioning report a technician hands over, in HTML and PDF.

Gateway identity, grid cell and location; every device with its profile,
address, a live reading and its comms counters; every alarm tested (from
``gridgate alarm-test``'s results file) with time and result; photo slots;
the technician's name and signature lines; the config digest.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiomqtt

from contracts.errors import ConfigError
from firmware_tools.alarm_test import load_results
from firmware_tools.broker_target import TargetError, add_broker_options, broker_target, explain_failure
from firmware_tools.report_data import gather
from firmware_tools.report_html import render_html


def add_report_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = commands.add_parser("report", help="commissioning report (HTML and PDF) to hand over")
    add_broker_options(report)  # --config: the site config, and the broker for --from-broker
    report.add_argument("--technician", required=True, help="who commissioned the site")
    report.add_argument("--alarm-tests", default="alarm-tests.json", help="results of gridgate alarm-test")
    report.add_argument("--html", help="HTML file to write (default commissioning-GATEWAY.html)")
    report.add_argument("--pdf", help="PDF file to write (default commissioning-GATEWAY.pdf)")
    report.add_argument(
        "--photo", action="append", default=[], metavar="LABEL=FILE", help="a photo for a slot (repeatable)"
    )
    report.add_argument("--no-read", action="store_true", help="leave out live readings (devices not read)")
    report.add_argument(
        "--from-broker",
        action="store_true",
        help="take readings and counters from the broker (the gateway runs and holds the ports)",
    )
    report.add_argument(
        "--listen-s", type=float, default=30.0, help="with --from-broker: wait this long at most"
    )


def run_report(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if not args.config:
        print("gridgate report: give --config site.toml", file=sys.stderr)
        return 2
    broker = None
    if args.from_broker:
        try:
            broker = broker_target(args)
        except TargetError as exc:
            print(f"gridgate report: {exc}", file=sys.stderr)
            return 2
    photos: dict[str, Path] = {}
    for given in args.photo:
        label, _, file = given.partition("=")
        if not file or not Path(file).is_file():
            print(
                f"gridgate report: --photo {given!r}: expected LABEL=FILE of an existing image",
                file=sys.stderr,
            )
            return 2
        photos[label] = Path(file)
    tests_file = Path(args.alarm_tests)
    tests = load_results(tests_file) if tests_file.exists() else []
    try:
        report = asyncio.run(
            gather(
                args.config,
                technician=args.technician,
                alarm_tests=tests,
                photos=photos,
                read_devices=not args.no_read,
                broker=broker,
                listen_s=args.listen_s,
            )
        )
    except ConfigError as exc:
        print(f"gridgate report: {exc.source}: {'; '.join(exc.problems)}", file=sys.stderr)
        return 2
    except aiomqtt.MqttError as exc:
        assert broker is not None
        print(f"gridgate report: {explain_failure(exc, broker)}", file=sys.stderr)
        return 3
    gathered = time.monotonic()
    name = f"commissioning-{report.config.gateway.id}"
    html_path = Path(args.html or f"{name}.html")
    pdf_path = Path(args.pdf or f"{name}.pdf")
    from firmware_tools.report_pdf import render_pdf  # the PDF library (~10 MB) only for a report

    html_path.write_text(render_html(report), encoding="utf-8")
    render_pdf(report, pdf_path)
    done = time.monotonic()
    unread = [d.id for d in report.devices if d.note and d.note != "not polled"]
    print(
        f"wrote {html_path} and {pdf_path}: {len(report.devices)} device(s), {len(tests)} alarm test(s); "
        f"devices read in {gathered - started:.2f} s, rendered in {done - gathered:.2f} s"
    )
    if unread:
        print(f"not read: {', '.join(unread)} (see the report)")
    if not tests:
        print(f"no alarm tests in {tests_file}: run gridgate alarm-test first")
    return 0
