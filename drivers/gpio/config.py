"""Site config for dry contacts on GPIO lines: one ``[[devices]]`` entry per chip's group of inputs.

```toml
[[devices]]
id = "cabinet-contacts"
driver = "gpio"
chip = "/dev/gpiochip0"
heartbeat_s = 3600              # an input that never changes is still read at this interval
channels = [
    { id = "door_open", line = 17, contact = "nc" },            # door switch, closed when shut
    { id = "smoke_panel", line = 27, contact = "no", bias = "pull_up", debounce_ms = 50 },
]
```
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field, model_validator

from contracts.config import ChannelConfig, PushedDeviceConfig


class Contact(str, Enum):
    """How the contact rests: normally open (closes on alarm) or normally closed (opens on alarm)."""

    NO = "no"
    NC = "nc"


class GpioChannel(ChannelConfig):
    """One input line: 1 while its contact is in the alarm position, 0 otherwise."""

    line: int = Field(ge=0, le=1023, description="the line offset on the chip (BCM number on a Pi)")
    contact: Contact = Contact.NO
    bias: Literal["pull_up", "pull_down", "disabled", "as_is"] = Field(
        default="pull_up", description="a dry contact to ground needs pull_up"
    )
    active_low: bool = Field(default=True, description="closed contact = low level (contact to ground)")
    debounce_ms: int = Field(default=20, ge=0, le=10_000, description="edges closer than this are bounce")


class GpioDeviceConfig(PushedDeviceConfig):
    """Inputs of one GPIO chip."""

    driver: Literal["gpio"]
    chip: str = Field(default="/dev/gpiochip0", min_length=1)
    heartbeat_s: float | None = Field(
        default=3600.0, gt=0, le=7 * 86_400, description="the inputs are read and published this often"
    )
    channels: tuple[GpioChannel, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_channel_per_line(self) -> GpioDeviceConfig:
        seen: dict[int, str] = {}
        for channel in self.channels:
            if channel.line in seen:
                raise ValueError(f"line {channel.line} is used twice ({seen[channel.line]}, {channel.id})")
            seen[channel.line] = channel.id
        return self


def alarm_value(channel: GpioChannel, closed: bool) -> float:
    """1.0 when a contact that is ``closed`` (or open) is in its alarm position."""
    return float(closed if channel.contact is Contact.NO else not closed)
