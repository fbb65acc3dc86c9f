"""How the uplink connects: protocol, session, TLS, and what a failure means to a technician."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.config.files import read_secret
from gateway.config.models import Uplink

CONNECT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 2.0
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT: another client connected with our client id
_UNSUPPORTED_PROTOCOL = (1, 0x84)  # CONNACK: 3.1.1's "unacceptable protocol version", MQTT 5's

# aiomqtt warns whenever more than ten publishes await their PUBACK, which a full
# in-flight window always does; the uplink logs what matters itself.
_library_log = logging.getLogger("gateway.uplink.mqtt")
_library_log.setLevel(logging.ERROR)


class _LastLibraryError(logging.Handler):
    """Remembers paho's last error: under TLS 1.3 a refused client certificate surfaces
    only there ("tlsv1 alert unknown ca"), while the connect itself just times out."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


_last_library_error = _LastLibraryError()
_library_log.addHandler(_last_library_error)


def mqtt_client(
    config: Uplink, *, server: tuple[str, int], protocol: str, client_id: str, will: aiomqtt.Will
) -> aiomqtt.Client:
    """A client whose session outlives an outage, so the broker keeps our subscriptions.

    MQTT 5: clean start off and a session expiry; 3.1.1: clean session off.
    Messages in flight when the link drops are still in the outbox and are sent
    again on the next connection.
    """
    _last_library_error.message = ""
    tls = None
    if config.tls is not None:
        tls = aiomqtt.TLSParameters(
            ca_certs=str(config.tls.ca_file),
            certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
            keyfile=str(config.tls.key_file) if config.tls.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    if protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = config.session_expiry_s
        session: dict[str, object] = {"clean_start": False, "properties": properties}
        version = aiomqtt.ProtocolVersion.V5
    else:
        session = {"clean_session": False}
        version = aiomqtt.ProtocolVersion.V311
    client = aiomqtt.Client(
        server[0],
        server[1],
        username=config.username,
        password=_password(config),
        identifier=client_id,
        protocol=version,
        will=will,
        keepalive=config.keepalive_s,
        tls_params=tls,
        timeout=CONNECT_TIMEOUT_S,
        # The uplink's own window bounds what is in flight; paho's bound (0: none) would walk
        # every message in flight on each PUBACK.
        max_inflight_messages=0,
        logger=_library_log,
        # Without it Nagle holds each PUBLISH until the broker's delayed ACK (~40 ms),
        # which caps a window of QoS 1 publishes at a few hundred per second.
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        **session,  # type: ignore[arg-type]
    )
    # A QoS 1 message is acknowledged once its handler has run (acknowledge()), not when it
    # reaches aiomqtt's queue: one still queued when the connection closes (a whole-runtime
    # apply closes it) is sent again by the broker on our resumed session instead of being lost.
    # aiomqtt 2 has no option for it yet (empicano/aiomqtt#345); paho's own switch is used.
    client._client.manual_ack_set(True)
    return client


def acknowledge(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Send the PUBACK of a handled message (in the order received, as MQTT requires)."""
    client._client.ack(message.mid, message.qos)


def expiry_properties(seconds: float) -> Properties | None:
    """MQTT 5 message expiry, so a broker does not hoard what is stale; None for 0 (never)."""
    if seconds <= 0:
        return None
    properties = _PackedOnce(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.MessageExpiryInterval = max(1, round(seconds))
    object.__setattr__(properties, "_packed", Properties.pack(properties))  # type: ignore[no-untyped-call]
    return properties


class _PackedOnce(Properties):
    """Properties that stay as made: paho packs a message's properties for every publish,
    which at hundreds of telemetry messages a second was a twentieth of the uplink's CPU."""

    _packed = b""

    def pack(self) -> bytes:
        return self._packed


def refused_protocol(exc: BaseException) -> bool:
    """The broker answered the CONNECT by refusing its protocol version (it speaks only 3.1.1)."""
    if not isinstance(exc, aiomqtt.MqttCodeError):
        return False
    rc = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
    return rc in _UNSUPPORTED_PROTOCOL


def disconnect_reason(client: aiomqtt.Client) -> int | None:
    """The reason code of the broker's DISCONNECT (MQTT 5) that ended ``client``'s connection, if any.

    aiomqtt keeps it only on the future its message iterator waits on, so it is read from there.
    """
    ended = client._disconnected
    if not ended.done() or ended.cancelled():
        return None
    exc = ended.exception()
    if isinstance(exc, aiomqtt.MqttCodeError) and isinstance(exc.rc, ReasonCode):
        return int(exc.rc.value)
    return None


async def reachable(server: tuple[str, int]) -> bool:
    """Does ``server`` accept a TCP connection now (a cheap probe before moving back to it)?"""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*server), PROBE_TIMEOUT_S)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def describe_failure(exc: BaseException, config: Uplink, where: str) -> str:
    """One line a technician can act on for a failed connection to ``where``."""
    text = str(exc) or type(exc).__name__
    if text.startswith("cannot read uplink."):
        return text
    library = _last_library_error.message
    if config.tls is not None and "SSL" in library:
        text = library
    if config.tls is not None and (_looks_like_tls(exc) or "SSL" in library):
        return (
            f"TLS with {where} failed ({text}); check [uplink.tls] ca_file, cert_file and key_file"
            " against the broker's CA and the certificate it expects"
        )
    if isinstance(exc, aiomqtt.MqttCodeError) and exc.rc in (4, 5, 134, 135):
        return f"{where} refused our credentials ({text}); check [uplink] username and password"
    return f"broker {where} unavailable ({text})"


def _password(config: Uplink) -> str | None:
    """Read at each connect, so a rotated password file takes effect without a restart."""
    if config.password_file is None:
        return config.password
    try:
        return read_secret(config.password_file)
    except (OSError, UnicodeDecodeError) as exc:
        raise aiomqtt.MqttError(f"cannot read uplink.password_file {config.password_file}: {exc}") from exc


def _looks_like_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "certificate" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
