"""What changed between the config in force and a new one, and whether it can be applied piecewise.

Piecewise: the devices and the drivers' shared sections (``[[buses]]``,
``[hj212]``, ...) change unit by unit (see ``runners.units_of``), and
``[commands]`` is swapped in place. Everything else the runtime is built
from (the identity, storage, the uplink, rules and events, the web page,
logging) restarts the whole runtime, as does a change in a device's snapshot
source (the evidence desk is built from it). An uplink change is a new
connection either way: a new birth, so the command center sees it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.models import GatewayConfig
from gateway.evidence.desk import cameras_of
from gateway.service.runners import UnitKey, units_of

PIECEWISE = frozenset({"devices", "sections", "commands"})


class Path:
    PIECEWISE = "piecewise"
    RESTART = "restart"


@dataclass(frozen=True)
class ConfigChanges:
    """The difference between two configs, as the config status reports it (``apply``)."""

    changed: tuple[str, ...]  # top-level sections that differ (a driver's shared one by its key)
    whole: tuple[str, ...]  # those of them that need the whole runtime restarted
    added: tuple[str, ...] = ()  # device ids
    removed: tuple[str, ...] = ()
    stopped: tuple[UnitKey, ...] = ()  # units of the config in force that stop
    started: tuple[UnitKey, ...] = ()  # units of the new config that start

    @property
    def path(self) -> str:
        return Path.RESTART if self.whole else Path.PIECEWISE

    @property
    def restarted(self) -> tuple[str, ...]:
        """Every unit stopped or started, as ``driver:id``: the runners this apply touches."""
        keys = dict.fromkeys((*self.stopped, *self.started))
        return tuple(f"{kind}:{name}" for kind, name in keys)

    def as_status(self) -> dict[str, Any]:
        """The ``apply`` field of the config status (docs/schemas/config-status.json)."""
        return {
            "path": self.path,
            "changed": list(self.changed),
            "restarted": [] if self.whole else list(self.restarted),
            "added": list(self.added),
            "removed": list(self.removed),
        }

    def describe(self) -> str:
        if not self.changed:
            return "nothing changed"
        if self.whole:
            return f"whole runtime restarted for {', '.join(self.whole)}"
        return f"{', '.join(self.changed)} changed; runners restarted: {', '.join(self.restarted) or 'none'}"


def changes_between(old: GatewayConfig, new: GatewayConfig) -> ConfigChanges:
    """How ``new`` differs from ``old``, unit by unit."""
    changed: list[str] = []
    whole: list[str] = []
    for name in GatewayConfig.model_fields:
        if name == "sections":
            keys = sorted(set(old.sections) | set(new.sections))
            changed += [k for k in keys if old.section(k) != new.section(k)]
        elif getattr(old, name) != getattr(new, name):
            changed.append(name)
            if name not in PIECEWISE:
                whole.append(name)
    if cameras_of(old.devices, old.gateway.grid_cell) != cameras_of(new.devices, new.gateway.grid_cell):
        whole.append("devices (snapshot sources)")
    before, after = units_of(old), units_of(new)
    old_ids = [d.id for d in old.devices]
    new_ids = [d.id for d in new.devices]
    return ConfigChanges(
        changed=tuple(changed),
        whole=tuple(whole),
        added=tuple(i for i in new_ids if i not in set(old_ids)),
        removed=tuple(i for i in old_ids if i not in set(new_ids)),
        stopped=tuple(k for k, unit in before.items() if after.get(k) != unit),
        started=tuple(k for k, unit in after.items() if before.get(k) != unit),
    )
