"""Recognising a unit by its profile: declared identification registers, else plausible values."""

from __future__ import annotations

import io
from pathlib import Path

from contracts.errors import DeviceProtocolError
from drivers.modbus.frames import READ_HOLDING, READ_INPUT
from drivers.modbus.identify import identify
from drivers.modbus.profiles import available_profiles, default_profile_dirs, load_profile
from drivers.simulators.field_devices import make_device
from drivers.simulators.modbus_device import SimulatedModbusDevice
from firmware_tools.progress import ProgressBar

SITE_PROFILE = """
description = "A vendor's dust monitor that says what it is at holding 0x100"
[identify]
address = 256
values = [18259, 2]

[[channels]]
id = "pm10"
address = 2
type = "float32"
"""


def _reader(device: SimulatedModbusDevice):  # type: ignore[no-untyped-def]
    async def read(function: int, start: int, count: int) -> list[int]:
        if function not in (READ_HOLDING, READ_INPUT):  # a register device has no coils or inputs
            raise DeviceProtocolError("probe", f"exception 1 (illegal function) for function {function}")
        image = device.holding if function == READ_HOLDING else device.input
        return image[start : start + count]

    return read


def _profiles(*extra: Path) -> list:  # type: ignore[type-arg]
    search = [*extra, *default_profile_dirs()]
    return [load_profile(name, search) for name in available_profiles(search)]


async def test_each_shipped_model_is_told_from_the_others_by_its_values() -> None:
    profiles = _profiles()
    for name in ("dust-monitor", "oil-fume-monitor", "manhole-cover", "smoke-panel"):
        device, _ = make_device(name, 1, seed=3)
        matches = await identify(_reader(device), profiles)
        assert matches[0].profile == name, (name, matches)
        assert len(matches) == 1 or matches[1].score < matches[0].score


async def test_declared_identification_registers_decide(tmp_path: Path) -> None:
    (tmp_path / "acme-dust.toml").write_text(SITE_PROFILE)
    profiles = _profiles(tmp_path)
    device, _ = make_device("dust-monitor", 1, seed=3)
    device.holding[256:258] = [18259, 2]
    matches = await identify(_reader(device), profiles)
    assert matches[0].profile == "acme-dust" and matches[0].how == "identification registers"
    device.holding[256:258] = [18259, 3]  # another model of the vendor's: not this profile
    matches = await identify(_reader(device), profiles)
    assert [m.profile for m in matches] == ["dust-monitor"]


def test_progress_redraws_in_place_on_a_terminal_and_prints_lines_elsewhere() -> None:
    screen, log = io.StringIO(), io.StringIO()
    for bar in (ProgressBar(screen, tty=True), ProgressBar(log, tty=False)):
        for done in range(1, 101):
            bar.update(done, 100, f"9600 8N1 unit {done}", 100 - done)
        bar.say("found unit 7")
        bar.close()
    assert screen.getvalue().count("\r") >= 100 and "about 1m39s left" in screen.getvalue()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 12  # 0 %, 10 % ... 100 %, and the find
    assert lines[-2].startswith("100% 100/100")
