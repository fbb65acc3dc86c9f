"""Which broker the command-center tools talk to, and how: address, TLS, credentials.

``gridgate monitor``, ``ack``, ``verify`` and ``alarm-test`` take either a site
config (``--config site.toml``: its ``[uplink]`` host, port, TLS files,
username, password and topic prefix, as the gateway itself connects) or
explicit options. A password is best given in a file (``--password-file``)
or the ``GRIDGATE_MQTT_PASSWORD`` environment variable, so it stays out of the
shell history and the process list.
"""

from __future__ import annotations

import argparse
import os
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from contracts.errors import ConfigError
from gateway.config import load_config

PASSWORD_VARIABLE = "GRIDGATE_MQTT_PASSWORD"
DEFAULT_PREFIX = "gridgate/v1"


class TargetError(Exception):
    """The options do not name a usable broker; the message says which option to fix."""


@dataclass(frozen=True)
class BrokerTarget:
    host: str
    port: int
    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls: bool = False
    gateway: str | None = None  # from a site config: the gateway it describes

    def where(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def client(
        self, *, protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V311, timeout: float = 10.0
    ) -> aiomqtt.Client:
        """A new client with its own id: never the gateway's, which would push the gateway off."""
        tls = None
        if self.tls:
            tls = aiomqtt.TLSParameters(
                ca_certs=self.ca_file,
                certfile=self.cert_file,
                keyfile=self.key_file,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=f"gridgate-cc-{uuid.uuid4().hex[:10]}",
            protocol=protocol,
            tls_params=tls,
            timeout=timeout,
        )


def add_broker_options(parser: argparse.ArgumentParser) -> None:
    """The options every command-center tool takes."""
    where = parser.add_argument_group("broker (a site config, or the options below)")
    where.add_argument("--config", help="site config: connect as its [uplink] says (TLS, credentials)")
    where.add_argument("--broker", help="host:port of the MQTT broker (default 127.0.0.1:1883)")
    where.add_argument("--prefix", help=f"topic prefix of the gateways (default {DEFAULT_PREFIX})")
    where.add_argument("--username", help="MQTT username")
    where.add_argument(
        "--password-file", help=f"file whose first line is the password (or ${PASSWORD_VARIABLE})"
    )
    where.add_argument("--tls", action="store_true", help="connect with TLS, checking the system's CAs")
    where.add_argument("--ca-file", help="CA certificate(s) of the broker (implies --tls)")
    where.add_argument("--cert-file", help="client certificate, with --key-file (implies --tls)")
    where.add_argument("--key-file", help="client private key")


def broker_target(args: argparse.Namespace) -> BrokerTarget:
    """The broker the options name; raise TargetError saying what to fix."""
    if bool(args.cert_file) != bool(args.key_file):
        raise TargetError("--cert-file and --key-file go together")
    password = _password(args.password_file)
    if args.config:
        return _from_config(args, password)
    host, port = _host_port(args.broker or "127.0.0.1:1883")
    return BrokerTarget(
        host=host,
        port=port,
        prefix=args.prefix or DEFAULT_PREFIX,
        username=args.username,
        password=password,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
        tls=bool(args.tls or args.ca_file or args.cert_file),
    )


def _from_config(args: argparse.Namespace, password: str | None) -> BrokerTarget:
    try:
        config, _ = load_config(args.config)
    except ConfigError as exc:
        problems = "; ".join(exc.problems[:3])
        raise TargetError(f"{exc.source}: {len(exc.problems)} problem(s): {problems}") from exc
    uplink = config.uplink
    host, port = _host_port(args.broker) if args.broker else uplink.endpoints[0]
    tls = uplink.tls
    return BrokerTarget(
        host=host,
        port=port,
        prefix=args.prefix or uplink.topic_prefix,
        username=args.username or uplink.username,
        password=password if password is not None else uplink.password,
        ca_file=args.ca_file or (str(tls.ca_file) if tls else None),
        cert_file=args.cert_file or (str(tls.cert_file) if tls and tls.cert_file else None),
        key_file=args.key_file or (str(tls.key_file) if tls and tls.key_file else None),
        tls=bool(args.tls or args.ca_file or tls is not None),
        gateway=config.gateway.id,
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65_535:
        raise TargetError(f"--broker: expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


def _password(path: str | None) -> str | None:
    if path is None:
        return os.environ.get(PASSWORD_VARIABLE)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TargetError(f"--password-file: cannot read {path}: {exc.strerror}") from exc
    if not lines or not lines[0]:
        raise TargetError(f"--password-file: {path} is empty; put the password on its first line")
    return lines[0]


def explain_failure(exc: BaseException, target: BrokerTarget) -> str:
    """One line a technician can act on for a failed connection."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, aiomqtt.MqttCodeError) and exc.rc in (4, 5, 134, 135):
        return f"{target.where()} refused the credentials ({text}); check --username and --password-file"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "certificate" in str(seen):
            return f"TLS with {target.where()} failed ({text}); check --ca-file, --cert-file and --key-file"
        seen = seen.__cause__ or seen.__context__
    return f"cannot reach the broker at {target.where()} ({text})"
