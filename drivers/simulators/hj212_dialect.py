"""How a simulated datalogger speaks HJ 212: the edition, and the deviations real firmware has.

Each dialect is one that field dataloggers are known to send: the 2005
edition (no version bits in Flag, answers with the QN inside CP), CRC-16/MODBUS
instead of the standard's CRC, the CRC in lower case, no CRLF after a frame,
DataTime with milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from drivers.hj212.codec import HEADER, TRAILER, VERSION_2017, Frame, crc16, crc16_modbus


@dataclass(frozen=True)
class Dialect:
    """The wire habits of one datalogger firmware."""

    edition: int = 2017
    modbus_crc: bool = False
    lower_case_crc: bool = False
    crlf: bool = True
    millis: bool = False

    def flag(self, *, answer: bool) -> str:
        """The Flag field of a frame this logger sends."""
        version = VERSION_2017 << 2 if self.edition == 2017 else 0
        return str(version | int(answer))

    def data_time(self, stamp: str) -> str:
        """A DataTime value from ``YYYYMMDDhhmmss``."""
        return stamp + "000" if self.millis else stamp

    def encode(self, frame: Frame) -> bytes:
        """The frame on the wire, with this firmware's CRC and ending."""
        data = frame.segment().encode("utf-8")
        crc = crc16_modbus(data) if self.modbus_crc else crc16(data)
        text = b"%04x" % crc if self.lower_case_crc else b"%04X" % crc
        return HEADER + b"%04d" % len(data) + data + text + (TRAILER if self.crlf else b"")


STANDARD = Dialect()
DIALECTS = {
    "standard": STANDARD,
    "2005": Dialect(edition=2005),
    "modbus-crc": Dialect(modbus_crc=True),
    "lower-case-crc": Dialect(lower_case_crc=True),
    "no-crlf": Dialect(crlf=False),
    "millis": Dialect(millis=True),
}


def combined(*names: str) -> Dialect:
    """Several dialects at once (``combined("2005", "no-crlf")``)."""
    dialect = STANDARD
    for name in names:
        changes = {k: v for k, v in vars(DIALECTS[name]).items() if v != getattr(STANDARD, k)}
        dialect = replace(dialect, **changes)
    return dialect
