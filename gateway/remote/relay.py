"""The ``relay`` command: switch a device's outputs (a siren, a fan interlock) and report them read back.

Served to requests signed by a maintainer key, or a key of a role that
``[commands] relay_roles`` grants it; never unsigned. Only channels the device
declares ``writable`` are switched; the write takes its turn with the
device's polls (``gateway.service.outputs``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from contracts.errors import DriverError, NotWritable
from gateway.config.trust import Role
from gateway.remote.auth import Principal
from gateway.remote.commands import Command, CommandError, text_field

Switch = Callable[[str, Mapping[str, int]], Awaitable[dict[str, float]]]
MAX_OUTPUTS = 64  # outputs one request may switch


def relay_commands(switch: Switch, *, roles: Iterable[Role]) -> list[Command]:
    async def relay(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        device = text_field(request, "device")
        wanted = _switches(request.get("set"))
        try:
            read_back = await switch(device, wanted)
        except NotWritable as exc:
            raise CommandError("not_writable", str(exc)) from None
        except DriverError as exc:
            raise CommandError("device_error", f"not switched: {exc}") from None
        return {"device": device, "set": wanted, "read_back": read_back}

    granted = frozenset(roles) - {Role.MAINTAINER}
    who = ", ".join(["maintainer", *sorted(r.value for r in granted)])
    return [
        Command(
            "relay", relay, roles=granted, who=f"relay is for keys of role {who} ([commands] relay_roles)"
        )
    ]


def _switches(value: object) -> dict[str, int]:
    """``set``: an object of output channel → 0/1 (or false/true)."""
    if not isinstance(value, dict) or not value or len(value) > MAX_OUTPUTS:
        raise CommandError(
            "malformed",
            f"field 'set' is required for 'relay': an object of 1 to {MAX_OUTPUTS} outputs"
            ' (channel: 0 or 1), e.g. {"relay1": 1}',
        )
    switches: dict[str, int] = {}
    for channel, on in value.items():
        if on not in (0, 1):  # True and False are 1 and 0
            raise CommandError(
                "malformed", f"output {str(channel)[:64]!r}: set it to 0 or 1, not {str(on)[:32]}"
            )
        switches[str(channel)] = int(on)
    return switches
