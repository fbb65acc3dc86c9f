"""Maintenance commands, for maintainer keys only: read a device now, restart its driver,
rebirth, tail the log, a diagnostics bundle.

They act through :class:`MaintenanceHooks`, which the daemon fills in, so this
module knows nothing of how the daemon runs its tasks.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.errors import UplinkError
from gateway.poll import DevicePoller
from gateway.remote.auth import Principal
from gateway.remote.commands import Command, CommandError, text_field

MAX_LOG_LINES = 500


@dataclass(frozen=True)
class MaintenanceHooks:
    pollers: Sequence[DevicePoller]  # the daemon's list: a restarted poller replaces its entry
    restart_device: Callable[[str], Awaitable[bool]]  # a stream's device: restart its stream; False: unknown
    rebirth: Callable[[], Awaitable[None]]  # publish the birth and every retained state again
    log_lines: Callable[[int], list[str]]  # the newest n log lines
    diagnostics: Callable[[], dict[str, Any]]


def maintenance_commands(hooks: MaintenanceHooks) -> list[Command]:
    def poller(request: dict[str, Any]) -> DevicePoller:
        device = text_field(request, "device")
        for candidate in hooks.pollers:
            if candidate.device == device:
                return candidate
        known = ", ".join(p.device for p in hooks.pollers) or "none"
        raise CommandError("unknown_device", f"no polled device {device[:64]!r} here (polled: {known})")

    async def read(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        polled = poller(request)
        batch = await polled.read_now()
        readings = (
            {}
            if batch is None
            else {
                ch: None if math.isnan(v) else v
                for ch, v in zip(batch.channels, batch.values.tolist(), strict=True)
            }
        )
        return {
            "device": polled.device,
            "state": polled.state or "unknown",
            "reason": polled.reason,
            "readings": readings,
        }

    async def restart(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        device = text_field(request, "device")
        polled = next((p for p in hooks.pollers if p.device == device), None)
        if polled is not None:
            polled.restart()
        elif not await hooks.restart_device(device):
            raise CommandError("unknown_device", f"no device {device[:64]!r} here")
        return {"device": device, "restarting": True}

    async def rebirth(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        try:
            await hooks.rebirth()
        except UplinkError as exc:
            raise CommandError("not_connected", str(exc)) from exc
        return {"rebirth": True}

    async def log_tail(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        lines = request.get("lines", 100)
        if not isinstance(lines, int) or isinstance(lines, bool) or not 1 <= lines <= MAX_LOG_LINES:
            raise CommandError("malformed", f"field 'lines' must be an integer from 1 to {MAX_LOG_LINES}")
        return {"lines": hooks.log_lines(lines)}

    async def diagnostics(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        return hooks.diagnostics()

    return [
        Command("read", read),
        Command("restart", restart),
        Command("rebirth", rebirth),
        Command("log_tail", log_tail),
        Command("diagnostics", diagnostics),
    ]
