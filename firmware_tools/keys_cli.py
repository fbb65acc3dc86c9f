"""``gridgate keys new NAME``: an Ed25519 key pair for signing commands (and, later, config bundles).

The private key goes to ``NAME.key`` (PEM, readable by its owner only) and
never leaves the command center or the maintainer's machine; the public key is
printed as the ``[commands.keys.NAME]`` table a gateway's config pins.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.remote.signing import new_key_pair

ROLES = ("operator", "command_center", "maintainer")


def add_keys_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = commands.add_parser("keys", help="make a key pair that signs commands")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    new = sub.add_parser("new", help="write NAME.key and print the config table that trusts it")
    new.add_argument("name", help="the key id the gateways will know it by, e.g. cc-main")
    new.add_argument("--dir", default=".", help="where NAME.key is written (default: here)")
    new.add_argument("--role", choices=ROLES, default="command_center", help="the role printed for it")


def run_keys(args: argparse.Namespace) -> int:
    path = Path(args.dir) / f"{args.name}.key"
    pem, public = new_key_pair()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"gridgate keys: {path} exists; choose another name or move it away", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gridgate keys: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return 2
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    print(f"# private key written to {path}: keep it secret; sign with --key {path}")
    print("# add this to each gateway's config that should trust it:")
    print(f"[commands.keys.{args.name}]")
    print(f'public_key = "{public}"')
    print(f'role = "{args.role}"')
    return 0
