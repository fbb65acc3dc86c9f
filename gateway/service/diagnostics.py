"""What maintenance commands see of the running daemon: the recent log and a diagnostics bundle.

The bundle holds no secrets: the config only as its digest, the uplink as host,
port and protocol, never a password or a key.
"""

from __future__ import annotations

import collections
import logging
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gateway import __version__
from gateway.config.models import GatewayConfig
from gateway.outbox import Outbox
from gateway.poll.availability import Availability
from gateway.service.supervisor import Supervisor

KEPT_LINES = 500
DIAGNOSTIC_LOG_LINES = 50


class LogTail(logging.Handler):
    """The newest log lines in memory, for the ``log_tail`` command."""

    def __init__(self, keep: int = KEPT_LINES) -> None:
        super().__init__(logging.INFO)
        self._lines: collections.deque[str] = collections.deque(maxlen=keep)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:  # a bad record must not break logging
            self.handleError(record)

    def lines(self, n: int) -> list[str]:
        return list(self._lines)[-n:]


def diagnostics_bundle(
    *,
    config: GatewayConfig,
    config_digest: str,
    outbox: Outbox,
    pollers: Sequence[Availability],
    supervisor: Supervisor,
    health: Callable[[], dict[str, Any]],
    log_tail: LogTail,
) -> dict[str, Any]:
    uplink = config.uplink
    return {
        "gateway": config.gateway.id,
        "version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "config_digest": config_digest,
        "uplink": {
            "servers": [f"{host}:{port}" for host, port in uplink.endpoints],
            "protocol": uplink.protocol,
            "tls": uplink.tls is not None,
        },
        "health": health(),
        "outbox": {
            "pending": outbox.pending(),
            "bytes": outbox.bytes_used,
            "max_bytes": outbox.max_bytes,
            "disk_full": outbox.disk_full,
        },
        "devices": {
            p.device: {
                "state": p.state or "unknown",
                "reason": p.reason,
                "polls": p.polls,
                "failures": p.failures,
            }
            for p in pollers
        },
        "faults": supervisor.as_dict(),
        "log": log_tail.lines(DIAGNOSTIC_LOG_LINES),
    }
