"""The gateway's own errors, grouped by what the caller can do about them.

    GridGateError
    ├── ConfigError            fix the config file; nothing was started
    ├── DriverError            a field device or its wire misbehaved; retry later
    │   ├── DeviceTimeout      no answer within the timeout
    │   ├── DeviceUnreachable  the connection could not be opened or was lost
    │   └── DeviceProtocolError  an answer came but is wrong (exception code, bad frame)
    ├── NotWritable            a write named an output not declared writable; fix the request
    ├── OutboxError            the durable queue could not store or read a message
    └── UplinkError            the broker could not be reached or refused us; retry later

Library errors (pymodbus, paho, sqlite3) are translated into these at the
boundary with ``raise ... from exc`` so callers only ever catch GridGate errors.
This module imports nothing from the rest of the gateway, so every layer,
drivers included, may use it.
"""

from __future__ import annotations


class GridGateError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GridGateError):
    """The configuration is invalid; ``problems`` lists every one with its path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class DriverError(GridGateError):
    """A field device could not be read; the poller retries it later."""

    def __init__(self, device: str, message: str) -> None:
        self.device = device
        super().__init__(f"{device}: {message}")


class DeviceTimeout(DriverError):
    """The device did not answer in time."""


class DeviceUnreachable(DriverError):
    """The connection to the device (or its bus) could not be opened or was lost."""


class DeviceProtocolError(DriverError):
    """The device answered, but with an exception code or a malformed reply."""


class NotWritable(GridGateError):
    """A write named a channel that is not a declared output (``writable = true``) of its device."""

    def __init__(self, device: str, message: str) -> None:
        self.device = device
        super().__init__(f"{device}: {message}")


class OutboxError(GridGateError):
    """The durable outbox could not store or read a message."""


class UplinkError(GridGateError):
    """The MQTT broker could not be reached or refused the connection."""
