"""Config of a Modbus bus (``[[buses]]``) and of a device that sits on one (``driver = "modbus"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from contracts.config import NAME_PATTERN, PolledDeviceConfig, StrictModel
from drivers.modbus.registers import MAX_REGISTERS_PER_READ, ModbusChannel

Transport = Literal["rtu", "rtu_tcp", "tcp"]
MIN_QUIET_GAP_S = 0.00175  # the Modbus spec's fixed 3.5-character gap above 19200 baud
MIN_FRAME_END_S = 0.02  # USB adapters deliver in bursts; a shorter silence splits frames
# libmodbus RTU slaves, having ignored a request for another unit, take the next frame
# within their response timeout (0.5 s by default) for that unit's answer and drop it.
AFTER_SILENCE_S = 0.6


class BusConfig(StrictModel):
    """One wire shared by devices: exactly one request on it at a time.

    ``rtu``: RS-485 through a serial port (``device``, by ``/dev/serial/by-id/...``
    or ``/dev/ttyUSB0``); ``rtu_tcp``: RTU frames through a serial device server
    (``host``/``port``); ``tcp``: a Modbus TCP gateway with devices behind it.
    """

    id: str = Field(pattern=NAME_PATTERN, description="bus name; devices name it in ``bus``")
    transport: Transport = "rtu"
    device: str | None = Field(default=None, description="serial port path (rtu)")
    host: str | None = Field(default=None, description="device server address (rtu_tcp, tcp)")
    port: int | None = Field(default=None, ge=1, le=65_535)
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    quiet_gap_s: float | None = Field(
        default=None, ge=0, le=1, description="silence between frames; default 3.5 characters"
    )
    frame_end_s: float | None = Field(
        default=None, gt=0, le=1, description="silence that ends an answer; default max(3.5 chars, 20 ms)"
    )
    after_silence_s: float = Field(
        default=AFTER_SILENCE_S,
        ge=0,
        le=5,
        description="after a request nobody answered, the next one waits until this long after it was sent"
        " (rtu, rtu_tcp), so slaves that wait for the silent unit's answer have given up",
    )

    @model_validator(mode="after")
    def _endpoint_for_transport(self) -> BusConfig:
        if self.transport == "rtu":
            if not self.device:
                raise ValueError("device: required for transport 'rtu' (e.g. /dev/ttyUSB0)")
            if self.host is not None or self.port is not None:
                raise ValueError("host/port: only for transports 'rtu_tcp' and 'tcp'")
        else:
            if not self.host or self.port is None:
                raise ValueError(f"host and port: required for transport {self.transport!r}")
            if self.device is not None:
                raise ValueError("device: only for transport 'rtu'")
        return self

    @property
    def char_s(self) -> float:
        """Seconds one character takes on the wire: start bit, data, parity, stop bits."""
        bits = 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits
        return bits / self.baudrate

    @property
    def gap_s(self) -> float:
        """Quiet time kept between the end of one frame and the start of the next."""
        if self.quiet_gap_s is not None:
            return self.quiet_gap_s
        if self.transport == "tcp":
            return 0.0
        return max(3.5 * self.char_s, MIN_QUIET_GAP_S)

    @property
    def end_s(self) -> float:
        """Silence after which a partial answer is taken as all that will come."""
        if self.frame_end_s is not None:
            return self.frame_end_s
        return max(3.5 * self.char_s, MIN_FRAME_END_S)

    def where(self) -> str:
        return str(self.device) if self.transport == "rtu" else f"{self.host}:{self.port}"


class ModbusConfig(PolledDeviceConfig):
    """A Modbus device on a configured bus; its channels may come from a profile."""

    driver: Literal["modbus"]
    bus: str = Field(pattern=NAME_PATTERN)
    unit_id: int = Field(ge=1, le=247)
    retries: int = Field(default=1, ge=0, le=5, description="extra tries of a failed request")
    max_gap: int = Field(
        default=16, ge=0, le=124, description="unused registers one read may span to save a request"
    )
    max_registers: int = Field(
        default=MAX_REGISTERS_PER_READ,
        ge=1,
        le=MAX_REGISTERS_PER_READ,
        description="the most registers the device answers in one read",
    )
    channels: tuple[ModbusChannel, ...] = Field(min_length=1)
