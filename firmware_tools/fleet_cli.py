"""``gridgate fleet sign|push``: config bundles for many gateways, from a maintainer's machine.

``sign`` writes a bundle (or adds a signature to one, for m-of-n); ``push``
sends it to gateways, canary first, and shows each one's outcome as it comes.
Exit status of ``push``: 0 every gateway committed, 1 some did not (the rollout
stopped), 2 the command line is wrong, 3 the broker cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiomqtt

from firmware_tools.broker_target import TargetError, add_broker_options, broker_target, explain_failure
from firmware_tools.fleet import make_bundle, rollout, sign_file
from firmware_tools.progress import ProgressBar
from gateway.remote.signing import KeyFileError


def add_fleet_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    fleet = commands.add_parser("fleet", help="sign config bundles and roll them out to gateways")
    sub = fleet.add_subparsers(dest="fleet_command", required=True)
    sign = sub.add_parser("sign", help="make a signed bundle of a site config (or add a signature)")
    sign.add_argument("site", type=Path, help="the site config (TOML), or a bundle to sign too")
    sign.add_argument(
        "--key", type=Path, required=True, help="a maintainer's private key (gridgate keys new)"
    )
    sign.add_argument("--key-id", help="the id the gateways trust it under (default: the file's stem)")
    sign.add_argument("--version", type=int, help="bundle version: higher than the one in force")
    sign.add_argument("--expires-in", type=float, default=7 * 86_400, help="seconds it may be applied for")
    sign.add_argument("--gateway", action="append", default=[], help="a target gateway id (repeat)")
    sign.add_argument("--group", action="append", default=[], help="a target group (repeat)")
    sign.add_argument("--profiles", type=Path, help="directory of the profiles (*.toml) the config names")
    sign.add_argument("-o", "--output", type=Path, required=True, help="where the bundle is written")
    push = sub.add_parser("push", help="push a bundle: canary first, stop on the first failure")
    add_broker_options(push)
    push.add_argument("bundle", type=Path)
    push.add_argument("--to", action="append", default=[], help="gateway id to push to (repeat)")
    push.add_argument("--canary", type=int, default=1, help="gateways in the first wave")
    push.add_argument("--wave", type=int, default=0, help="gateways per later wave (0: all the rest)")
    push.add_argument("--timeout-s", type=float, default=120.0, help="per wave, for every outcome")


def run_fleet(args: argparse.Namespace) -> int:
    if args.fleet_command == "sign":
        return _sign(args)
    return _push(args)


def _sign(args: argparse.Namespace) -> int:
    try:
        text = args.site.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"gridgate fleet sign: cannot read {args.site}: {exc.strerror}", file=sys.stderr)
        return 2
    signed: dict[str, Any]
    if text.lstrip().startswith("{"):
        body: dict[str, Any] = json.loads(text)
    else:
        if args.version is None or not (args.gateway or args.group):
            print(
                "gridgate fleet sign: give --version and at least one --gateway or --group", file=sys.stderr
            )
            return 2
        body = make_bundle(
            args.site,
            version=args.version,
            expires_in_s=args.expires_in,
            gateways=args.gateway,
            groups=args.group,
            profiles=args.profiles,
        )
    try:
        signed = sign_file(body, args.key, args.key_id)
    except KeyFileError as exc:
        print(f"gridgate fleet sign: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(json.dumps(signed, ensure_ascii=False, indent=1))
    names = ", ".join(s["key"] for s in signed["signatures"])
    print(f"bundle version {signed['bundle']['version']} signed by {names}: {args.output}")
    return 0


def _push(args: argparse.Namespace) -> int:
    try:
        target = broker_target(args)
        bundle = args.bundle.read_bytes()
        targets = json.loads(bundle)["bundle"]["targets"]
    except TargetError as exc:
        print(f"gridgate fleet push: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"gridgate fleet push: {args.bundle} is not a bundle ({exc})", file=sys.stderr)
        return 2
    gateways = args.to or targets.get("gateways", [])
    if not gateways:
        print("gridgate fleet push: name the gateways with --to (the bundle lists none)", file=sys.stderr)
        return 2
    bar = ProgressBar(sys.stderr)
    done: set[str] = set()

    def progress(gateway: str, status: dict[str, Any]) -> None:
        if status["state"] == "applying":
            return
        done.add(gateway)
        reasons = "; ".join(status.get("reasons", []))
        bar.say(f"{gateway}: {status['state']}" + (f" ({reasons})" if reasons else ""))
        bar.update(len(done), len(gateways), "gateways", 0)

    try:
        result = asyncio.run(
            rollout(
                target,
                bundle,
                gateways,
                canary=args.canary,
                wave=args.wave,
                timeout_s=args.timeout_s,
                progress=progress,
            )
        )
    except aiomqtt.MqttError as exc:
        print(f"gridgate fleet push: {explain_failure(exc, target)}", file=sys.stderr)
        return 3
    print(
        json.dumps({"ok": result.ok, "stopped_by": result.stopped_by, "gateways": result.outcomes}, indent=2)
    )
    return 0 if result.ok else 1
