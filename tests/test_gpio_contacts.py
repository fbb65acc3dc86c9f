"""GPIO dry contacts at libgpiod's boundary: CI has no GPIO chip, so the kernel side is not exercised.

What is tested: the settings handed to libgpiod (both edges, bias, polarity,
kernel debounce), edge events (libgpiod's own ``EdgeEvent``) turned into
readings with NO/NC applied and wall-clock times, and a missing chip reported
as the device being unreachable. Reading a real line needs a board (or the
gpio-sim kernel module) and is left to a bench test on one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

gpiod = pytest.importorskip("gpiod")

from gpiod import EdgeEvent  # noqa: E402
from gpiod.line import Bias, Direction, Edge  # noqa: E402

from contracts.errors import DeviceUnreachable  # noqa: E402
from drivers.gpio.config import GpioDeviceConfig  # noqa: E402
from drivers.gpio.stream import GpioStream, edge_batch, line_settings  # noqa: E402


def _device(chip: str = "/dev/gpiochip0") -> GpioDeviceConfig:
    return GpioDeviceConfig.model_validate(
        {
            "id": "cabinet",
            "driver": "gpio",
            "chip": chip,
            "channels": [
                {"id": "smoke_panel", "line": 27, "contact": "no", "debounce_ms": 50},
                {"id": "door_open", "line": 17, "contact": "nc", "bias": "disabled", "active_low": False},
            ],
        }
    )


def test_each_line_asks_for_both_edges_its_bias_polarity_and_debounce() -> None:
    smoke, door = _device().channels
    settings = line_settings(smoke)
    assert settings.direction is Direction.INPUT and settings.edge_detection is Edge.BOTH
    assert settings.bias is Bias.PULL_UP and settings.active_low is True
    assert settings.debounce_period == timedelta(milliseconds=50)
    other = line_settings(door)
    assert (
        other.bias is Bias.DISABLED
        and other.active_low is False
        and other.debounce_period == timedelta(milliseconds=20)
    )


def test_edges_become_alarm_values_with_no_and_nc_applied() -> None:
    device = _device()
    events = [
        EdgeEvent(EdgeEvent.Type.RISING_EDGE.value, 9_000_000_000, 27, 1, 1),  # smoke relay closes: alarm
        EdgeEvent(EdgeEvent.Type.RISING_EDGE.value, 9_500_000_000, 17, 2, 1),  # door contact closes: shut
        EdgeEvent(EdgeEvent.Type.FALLING_EDGE.value, 9_800_000_000, 17, 3, 2),  # door opens: alarm
        EdgeEvent(EdgeEvent.Type.FALLING_EDGE.value, 9_900_000_000, 5, 4, 1),  # a line not configured
    ]
    batch = edge_batch(device, events, now=1000.0, now_ns=10_000_000_000)
    assert batch.channels == ("smoke_panel", "door_open", "door_open")
    assert batch.values.tolist() == [1.0, 0.0, 1.0]
    assert batch.ts.tolist() == pytest.approx([999.0, 999.5, 999.8])


async def test_a_missing_chip_is_an_unreachable_device_naming_the_chip() -> None:
    stream = GpioStream(_device("/dev/gpiochip-none"))
    with pytest.raises(DeviceUnreachable, match="/dev/gpiochip-none"):
        await stream.open()
    await stream.aclose()


def test_a_line_used_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="line 17 is used twice"):
        GpioDeviceConfig.model_validate(
            {"id": "x", "driver": "gpio", "channels": [{"id": "a", "line": 17}, {"id": "b", "line": 17}]}
        )
