"""The driver seam: each driver kind exports one :class:`DriverSpec`, and the gateway loops over them.

A spec says everything the gateway core needs to know about a driver kind:
its name in configs, its device model, the shared section its devices use
(a bus, a listener, a platform connection) with that section's own checks,
and how to build what runs. Config loading, the daemon and the status
publisher never name a driver; ``drivers.registry`` lists the specs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.config import DeviceConfig, StrictModel
from contracts.driver import PolledDriver, StreamDriver
from contracts.profiles import ProfileFile

Indexed = Sequence[tuple[int, DeviceConfig]]
"""A driver's devices with their index in the config's ``[[devices]]``, for problem paths."""


@dataclass(frozen=True)
class Section:
    """A top-level part of the site config that a driver's devices share.

    ``many``: an array of tables (``[[buses]]``), each with a unique ``id``;
    otherwise one table (``[hj212]``), or absent.
    """

    key: str
    model: type[StrictModel]
    many: bool
    description: str


@dataclass
class Runners:
    """What a driver kind runs for a config: one polled driver per device, or streams.

    ``buses`` are the wires its devices share, for the metrics; ``close``
    releases them once every runner has stopped.
    """

    polled: list[PolledDriver] = field(default_factory=list)  # type: ignore[type-arg]
    streams: list[StreamDriver] = field(default_factory=list)
    buses: Mapping[str, Any] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def _no_problems(devices: Indexed, section: Any) -> Iterable[str]:
    return ()


@dataclass(frozen=True)
class DriverSpec:
    """One driver kind, as config loading and the daemon see it.

    ``check(devices, section)`` yields problems that need more than one model
    (a device naming a bus that does not exist), each starting with its path.
    ``build(devices, section)`` returns the runners; ``section`` is the
    validated section (a tuple when ``many``, the model or None otherwise).
    ``check_profile(profile, search)`` yields what is wrong with a device
    profile of this driver (``gridgate profiles`` shows it).
    ``entry(device)``, for a ``many`` section: the id of the entry a device
    uses (its bus, its platform). A config change then restarts only the
    devices of the entries that changed; without it, all of the kind's.
    ``outputs(device)`` names the channels of a device that may be switched
    (a relay's coils).
    """

    name: str
    device_model: type[DeviceConfig]
    build: Callable[[Sequence[DeviceConfig], Any], Runners]
    section: Section | None = None
    check: Callable[[Indexed, Any], Iterable[str]] = _no_problems
    check_profile: Callable[[ProfileFile, Sequence[Path]], Iterable[str]] = lambda profile, search: ()
    entry: Callable[[DeviceConfig], str] | None = None
    outputs: Callable[[DeviceConfig], frozenset[str]] = lambda device: frozenset()
