"""Peers for the uplink tests: a broker keeping sessions, a durable subscriber, certificates."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import subprocess
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import aiomqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware_tools.local_broker import LocalBroker, free_port


def persistent_broker(store: Path) -> LocalBroker:
    """A Mosquitto that keeps sessions (and messages queued for them) across a restart."""
    store.mkdir(parents=True, exist_ok=True)
    return LocalBroker(
        extra_config=(
            f"persistence true\npersistence_location {store}/\nuser root\n"
            "max_queued_messages 0\nmax_inflight_messages 100\n"
        )
    )


class DurableSubscriber:
    """A command center that keeps its session: it misses nothing while it or the broker is away."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self._port = port
        self._filter = topic_filter
        self._id = f"cc-{uuid.uuid4().hex[:8]}"
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def __aenter__(self) -> DurableSubscriber:
        self._task = asyncio.create_task(self._collect(), name="durable-subscriber")
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _collect(self) -> None:
        client = aiomqtt.Client(
            "127.0.0.1",
            self._port,
            identifier=self._id,
            clean_session=False,
            max_queued_incoming_messages=0,
        )
        while True:
            try:
                async with client:
                    await client.subscribe(self._filter, qos=1)
                    self._subscribed.set()
                    async for message in client.messages:
                        if "/commands/" in str(message.topic):
                            continue  # what the command center sends, not what it receives
                        payload = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                        self.received.append((str(message.topic), payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    async def wait_until(self, done: Any, *, timeout: float = 30.0, why: Any = None) -> None:
        """Poll ``done()`` until it is true; on timeout, fail with ``why(self.received)`` when given."""

        async def poll() -> None:
            while not done():
                assert self._task is not None
                if self._task.done():  # the subscriber died: say why now, not at the timeout
                    self._task.result()
                    raise AssertionError("the command center's subscriber stopped")
                await asyncio.sleep(0.1)

        try:
            await asyncio.wait_for(poll(), timeout)
        except asyncio.TimeoutError:
            if why is None:
                raise
            raise AssertionError(f"not within {timeout} s: {why(self.received)}") from None

    def seqs(self, topic_suffix: str) -> list[int]:
        return [p["seq"] for t, p in self.received if t.endswith(topic_suffix)]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server and a client certificate it signed, and a client one from another CA."""
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = directory / f"{name}.pem"
        files[name].write_bytes(data)

    for ca_name in ("ca", "rogue_ca"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
        write(ca_name, ca_cert.public_bytes(serialization.Encoding.PEM))
        roles = ("server", "client") if ca_name == "ca" else ("rogue_client",)
        for role in roles:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _issue(role, key, ca_name, ca_key, server=role == "server")
            write(f"{role}_cert", cert.public_bytes(serialization.Encoding.PEM))
            write(f"{role}_key", _key_pem(key))
    return files


def password_tls_broker(tmp_path: Path, user: str) -> tuple[LocalBroker, int, dict[str, Path]]:
    """A broker wanting ``user``'s password (s3cret, also in password.txt) on both listeners, one TLS."""
    certs = make_certificates(tmp_path)
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), user, "s3cret"], check=True)
    passwords.chmod(0o644)
    (tmp_path / "password.txt").write_text("s3cret\n")
    tls_port = free_port()
    broker = LocalBroker(
        # user root: run as root, mosquitto would otherwise drop to a user that cannot read tmp_path
        extra_config=f"user root\npassword_file {passwords}\nallow_anonymous false\n"
        f"listener {tls_port} 127.0.0.1\ncafile {certs['ca']}\ncertfile {certs['server_cert']}\n"
        f"keyfile {certs['server_key']}\n"
    )
    return broker, tls_port, certs
