"""The polling plan of a bus: which reads each poll makes, and how long they hold the wire.

Times are estimated from the RTU frame sizes at the bus's character time
(start, data, parity and stop bits), with the quiet gap after every frame; the
device's own turnaround is not known in advance and is not included. For a
Modbus TCP gateway the figure is what its RS-485 side spends at that baud.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drivers.modbus.config import BusConfig, ModbusConfig
from drivers.modbus.frames import RTU_REQUEST_BYTES, rtu_response_length
from drivers.modbus.registers import WIDTH, ReadRequest, plan_requests


@dataclass(frozen=True, slots=True)
class DevicePlan:
    device: str
    unit: int
    poll_interval_s: float
    requests: tuple[ReadRequest, ...]
    wire_s: float  # estimated bus time of one poll


@dataclass(frozen=True, slots=True)
class BusPlan:
    bus: BusConfig
    devices: tuple[DevicePlan, ...]

    @property
    def requests_per_cycle(self) -> int:
        """Requests when every device on the bus is polled once."""
        return sum(len(d.requests) for d in self.devices)

    @property
    def cycle_s(self) -> float:
        """Bus time to poll every device once."""
        return sum(d.wire_s for d in self.devices)

    @property
    def occupancy(self) -> float:
        """Share of the bus's time the polls need at their configured periods (> 1: cannot keep up)."""
        return sum(d.wire_s / d.poll_interval_s for d in self.devices)


def request_wire_s(bus: BusConfig, count: int) -> float:
    """Estimated bus time of one read of ``count`` registers: both frames and their gaps."""
    return (RTU_REQUEST_BYTES + rtu_response_length(count)) * bus.char_s + 2 * bus.gap_s


def device_requests(device: ModbusConfig, *, coalesce: bool = True) -> tuple[ReadRequest, ...]:
    """The reads of one poll; without coalescing, one read per channel."""
    if coalesce:
        return tuple(plan_requests(device.channels, max_gap=device.max_gap, max_count=device.max_registers))
    return tuple(
        ReadRequest(ch.table, ch.address, WIDTH[ch.type], (i,)) for i, ch in enumerate(device.channels)
    )


def bus_plans(
    buses: Sequence[BusConfig], devices: Sequence[object], *, coalesce: bool = True
) -> list[BusPlan]:
    """The plan of every bus, for the devices in ``devices`` that sit on it."""
    plans = []
    for bus in buses:
        on_bus = []
        for device in devices:
            if isinstance(device, ModbusConfig) and device.bus == bus.id:
                requests = device_requests(device, coalesce=coalesce)
                wire = sum(request_wire_s(bus, r.count) for r in requests)
                on_bus.append(DevicePlan(device.id, device.unit_id, device.poll_interval_s, requests, wire))
        plans.append(BusPlan(bus, tuple(on_bus)))
    return plans


def describe(plan: BusPlan) -> list[str]:
    """Lines for ``gridgate check --explain``."""
    bus = plan.bus
    serial = f"{bus.baudrate} {bus.bytesize}{bus.parity}{bus.stopbits}"
    lines = [
        f"bus {bus.id} ({bus.transport} {bus.where()}, {serial}, gap {bus.gap_s * 1000:.1f} ms):"
        f" {len(plan.devices)} device(s), {plan.requests_per_cycle} request(s) per cycle,"
        f" ~{plan.cycle_s * 1000:.0f} ms per cycle, occupancy {plan.occupancy:.0%}"
    ]
    for d in plan.devices:
        reads = ", ".join(f"{r.table} {r.start}+{r.count}" for r in d.requests)
        lines.append(
            f"  unit {d.unit:>3} {d.device}: {len(d.requests)} read(s) [{reads}],"
            f" ~{d.wire_s * 1000:.0f} ms every {d.poll_interval_s:g} s"
        )
    if plan.occupancy > 1:
        lines.append("  warning: the bus cannot keep these poll periods; lengthen them or split the bus")
    return lines
