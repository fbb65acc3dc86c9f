"""Device availability, one shape for every device: polled ones judged by their polls, pushed ones by silence.

``online``, ``offline`` (no answer, or nothing heard for too long) or ``faulty``
(answers, but wrong). Whatever judges it — a :class:`~gateway.poll.DevicePoller`
or a :class:`~gateway.poll.heartbeat.HeartbeatWatch` — exposes the same
attributes, so the status publisher, the health counts and the status page
treat every device alike.
"""

from __future__ import annotations

from typing import Any, Protocol

ONLINE, OFFLINE, FAULTY = "online", "offline", "faulty"


class Availability(Protocol):
    """What the gateway knows about whether one device works."""

    @property
    def device(self) -> str: ...

    @property
    def driver_name(self) -> str: ...

    @property
    def mode(self) -> str:
        """Polled or pushed."""
        ...

    @property
    def state(self) -> str | None:
        """None: not known yet."""
        ...

    @property
    def since(self) -> float: ...

    @property
    def reason(self) -> str: ...

    @property
    def interval(self) -> float | None:
        """Poll period, or the heartbeat interval of a pushed device."""
        ...

    @property
    def offline_after(self) -> int:
        """Failed polls, or missed heartbeats, in a row before offline."""
        ...

    @property
    def polls(self) -> int:
        """Polls begun, or messages received."""
        ...

    @property
    def failures(self) -> int:
        """Failed polls, or heartbeat intervals missed."""
        ...

    @property
    def failed_in_row(self) -> int: ...

    @property
    def last_ok(self) -> float | None: ...

    def status_fields(self) -> dict[str, Any]:
        """What the driver adds to the status message."""
        ...
