"""The models a site config file is validated against."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SerializeAsAny, field_validator, model_validator

from contracts.config import NAME_PATTERN, NAME_RE, DeviceConfig, StrictModel, TlsFiles
from gateway.config.correlation import CorrelationRule
from gateway.config.events import EventPolicy
from gateway.config.evidence import EvidenceSettings
from gateway.config.passwords import check_hash_format
from gateway.config.rules import (
    CrossRule,
    DetectionSettings,
    MultivariateRule,
    ThresholdRule,
)
from gateway.config.servers import join_server, split_server
from gateway.config.trust import CommandTrust


class Location(StrictModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str = ""


class GatewayIdentity(StrictModel):
    id: str = Field(pattern=NAME_PATTERN, description="unique gateway id; part of every topic")
    site: str = Field(min_length=1)
    grid_cell: str = Field(pattern=r"^[0-9A-Za-z-]{1,32}$", description="unit grid code")
    location: Location | None = None


class Uplink(StrictModel):
    """The command center's broker. File keys take a path or ``credential:NAME`` (see config.files)."""

    host: str | None = Field(default=None, min_length=1, description="one broker; servers for several")
    port: int = Field(default=1883, ge=1, le=65_535)
    servers: list[str] = Field(
        default_factory=list, description='brokers of a cluster, "host:port" ("[::1]:1883" for IPv6)'
    )
    server_order: Literal["in_order", "shuffle"] = Field(
        default="in_order", description="shuffle: each box picks its own order, spreading load over nodes"
    )
    return_to_first_s: float = Field(
        default=0, ge=0, le=86_400, description="in_order: probe the first server this often; 0 never"
    )
    client_id: str | None = Field(
        default=None, description="defaults to the gateway id and a suffix kept in the storage directory"
    )
    username: str | None = None
    password: str | None = Field(default=None, description="better: password_file, kept out of the config")
    password_file: Path | None = Field(
        default=None, description="file holding the password, or credential:NAME (systemd LoadCredential)"
    )
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="auto: MQTT 5, and 3.1.1 with a broker that refuses 5"
    )
    topic_prefix: str = Field(default="gridgate/v1", pattern=r"^[^#+$/][^#+]*[^#+/]$")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60)
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600)
    tls: TlsFiles | None = None
    session_expiry_s: int = Field(
        default=3600, ge=0, description="MQTT 5: how long the broker keeps the session in an outage"
    )
    telemetry_expiry_s: int = Field(
        default=86_400, ge=0, description="MQTT 5: telemetry expires after this; 0 never expires"
    )
    health_s: float = Field(
        default=60.0, gt=0, le=86_400, description="how often the retained health message is published"
    )
    inflight_window: int = Field(
        default=32, ge=1, le=1024, description="QoS 1 publishes awaiting their PUBACK at once"
    )

    @model_validator(mode="after")
    def _one_password(self) -> Uplink:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both (password_file keeps it out of here)")
        return self

    @model_validator(mode="after")
    def _one_way_to_name_brokers(self) -> Uplink:
        if (self.host is None) == (not self.servers):
            raise ValueError('give host (and port) for one broker or servers = ["host:port", ...], not both')
        for server in self.servers:
            split_server(server)  # raises with the bad entry named
        if self.return_to_first_s and self.server_order == "shuffle":
            raise ValueError(
                'return_to_first_s needs server_order = "in_order" (shuffled, no server is first)'
            )
        return self

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """Every broker as (host, port), in the configured order."""
        if self.host is not None:
            return [(self.host, self.port)]
        return [split_server(server) for server in self.servers]

    @property
    def where(self) -> str:
        """The brokers as a technician reads them: ``host:port, host:port``."""
        return ", ".join(join_server(host, port) for host, port in self.endpoints)


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["auto", "text", "journal", "json"]


class LoggingSettings(StrictModel):
    level: LogLevel = "INFO"
    modules: dict[str, LogLevel] = Field(
        default_factory=dict, description='per logger, e.g. { "gateway.uplink" = "DEBUG" }'
    )
    format: LogFormat = Field(default="auto", description="auto: journal under systemd, else text")
    throttle_burst: int = Field(
        default=5, ge=0, description="lines of one kind per window before the rest are counted; 0: off"
    )
    throttle_window_s: float = Field(default=60.0, gt=0, le=86_400)


class WebSettings(StrictModel):
    """The status page and the metrics endpoint, served by the daemon."""

    host: str = Field(default="127.0.0.1", description="the cabinet's LAN address to serve it there too")
    port: int = Field(default=8780, ge=1, le=65_535)
    users: dict[str, str] = Field(
        default_factory=dict, description="who may log in: name = password hash (gridgate web-password)"
    )
    session_ttl_s: float = Field(default=1800.0, gt=0, le=86_400, description="idle time before logout")
    metrics: bool = Field(default=True, description="Prometheus metrics at /metrics, to loopback clients")

    @field_validator("users")
    @classmethod
    def _hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for name, stored in users.items():
            if not NAME_RE.match(name):
                raise ValueError(f"user {name!r}: a name is lower-case letters, digits, '.', '-' and '_'")
            problem = check_hash_format(stored)
            if problem is not None:
                raise ValueError(f"user {name!r}: {problem}")
        return users


class Storage(StrictModel):
    directory: Path = Path("/var/lib/gridgate")
    max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=64 * 1024, description="outbox bound; oldest telemetry shed first"
    )
    telemetry_commit_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="a telemetry group waits at most this long for the uplink to be idle before its commit",
    )
    telemetry_coalesce_s: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="once the uplink is idle, a group waits this long for the rest of a poll round",
    )


class GatewayConfig(StrictModel):
    gateway: GatewayIdentity
    uplink: Uplink
    storage: Storage = Storage()
    devices: tuple[SerializeAsAny[DeviceConfig], ...] = Field(
        default=(), description="validated per entry by its driver's model in the loader"
    )
    rules: tuple[ThresholdRule, ...] = ()
    events: EventPolicy = EventPolicy()
    evidence: EvidenceSettings = EvidenceSettings()
    correlations: tuple[CorrelationRule, ...] = ()
    cross_rules: tuple[CrossRule, ...] = ()
    multivariate: tuple[MultivariateRule, ...] = ()
    detection: DetectionSettings = DetectionSettings()
    logging: LoggingSettings = LoggingSettings()
    web: WebSettings | None = Field(default=None, description="status page and metrics; off unless given")
    commands: CommandTrust = Field(default=CommandTrust(), description="who may send commands")
    sections: dict[str, Any] = Field(
        default_factory=dict,
        description="the drivers' shared sections ([[buses]], [hj212], ...) by key, validated by the loader",
    )

    def section(self, key: str) -> Any:
        """A driver's shared section as validated: a tuple for ``[[key]]``, else the model or None."""
        return self.sections.get(key)
