"""Modbus RTU and Modbus TCP (MBAP) frames for register reads, and how answers go wrong.

Only what a poller needs: function codes 3 (holding) and 4 (input registers),
and 1 (coils) and 2 (discrete inputs), whose answers hold bits, eight a byte;
and to switch relays, 5 (one coil) and 15 (several in a row), whose answers
echo the address (and the value or count) of the request.
A response is matched against the request it answers; everything else on the
line is classified, so the bus can count it:

- ``garbage``: bytes that are no frame at all (line noise, a half frame),
- ``crc``: a frame of the right shape whose CRC does not match,
- ``wrong_unit``: a well-formed answer from another unit id,
- ``exception``: the device answered with a Modbus exception code.

This module does no I/O; see :mod:`drivers.modbus.bus`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

READ_HOLDING = 3
READ_INPUT = 4
READ_COILS = 1
READ_DISCRETE = 2
FUNCTION = {"holding": READ_HOLDING, "input": READ_INPUT, "coils": READ_COILS, "discrete": READ_DISCRETE}
BIT_FUNCTIONS = frozenset({READ_COILS, READ_DISCRETE})
WRITE_COIL = 5
WRITE_COILS = 15


def data_bytes(function: int, count: int) -> int:
    """Bytes of data in a normal answer to a read of ``count`` registers or bits."""
    return (count + 7) // 8 if function in BIT_FUNCTIONS else 2 * count


def _values(function: int, count: int, data: bytes) -> tuple[int, ...]:
    """Registers, or bits (0/1, least significant bit of the first byte first)."""
    if function in BIT_FUNCTIONS:
        return tuple((data[i // 8] >> (i % 8)) & 1 for i in range(count))
    return struct.unpack(f">{count}H", data)


Fault = Literal["garbage", "crc", "wrong_unit", "exception"]


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (init 0xFFFF, reflected poly 0xA001), sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", crc16(body))


RTU_REQUEST_BYTES = 8  # unit, function, start (2), count (2), CRC (2)


def rtu_response_length(count: int, function: int = READ_HOLDING) -> int:
    """Bytes of a normal answer to a read of ``count`` registers (or bits): unit, fc, n, data, crc."""
    return 5 + data_bytes(function, count)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the bytes on the line turned out to be.

    ``registers`` is set for a good answer; otherwise ``fault`` says what went
    wrong. ``skipped`` counts bytes before the answer that belonged to nothing.
    """

    registers: tuple[int, ...] | None = None
    fault: Fault | None = None
    detail: str = ""
    skipped: int = 0


def coils_pdu(start: int, bits: tuple[int, ...]) -> bytes:
    """The PDU switching coils ``start..``: FC 05 for one (0xFF00 on, 0 off), FC 15 for a run."""
    if len(bits) == 1:
        return struct.pack(">BHH", WRITE_COIL, start, 0xFF00 if bits[0] else 0)
    packed = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        packed[i // 8] |= (bit & 1) << (i % 8)
    return struct.pack(">BHHB", WRITE_COILS, start, len(bits), len(packed)) + bytes(packed)


def _write_echo(pdu: bytes) -> bytes:
    """What a normal answer to a write PDU holds: function, address and value or count."""
    return pdu[:5]


def parse_rtu_write(buffer: bytes, unit: int, pdu: bytes) -> Answer | None:
    """The answer in ``buffer`` to the write ``pdu`` of ``unit``, or None while it may still arrive."""
    echo = bytes([unit]) + _write_echo(pdu)
    for at in range(len(buffer) - 4):
        if buffer[at] != unit:
            continue
        if buffer[at + 1] == pdu[0] | 0x80 and _crc_ok(buffer[at : at + 5]):
            return Answer(fault="exception", detail=f"exception code {buffer[at + 2]}", skipped=at)
        frame = buffer[at : at + 8]
        if len(frame) == 8 and _crc_ok(frame):
            if frame[:6] == echo:
                return Answer(registers=(), skipped=at)
            return Answer(fault="garbage", detail="the answer does not echo the write", skipped=at)
    return None


def classify_rtu_write(buffer: bytes, unit: int, pdu: bytes) -> Answer:
    """What a buffer holding no answer to a write was, after the line went quiet."""
    if not buffer:
        return Answer()
    return Answer(fault="garbage", detail=f"{len(buffer)} byte(s) that form no answer to the write")


def mbap_frame(transaction: int, unit: int, pdu: bytes) -> bytes:
    """A Modbus TCP request: MBAP header (transaction, protocol 0, length, unit) + PDU."""
    return struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu


def parse_mbap_write(frame: bytes, transaction: int, unit: int, pdu: bytes) -> Answer:
    """The answer in one complete MBAP frame to the write ``pdu``."""
    tid, protocol, _length, who = struct.unpack(">HHHB", frame[:7])
    answer = frame[7:]
    if protocol != 0 or tid != transaction or not answer:
        return Answer(fault="garbage", detail=f"frame for transaction {tid}, protocol {protocol}")
    if who != unit:
        return Answer(fault="wrong_unit", detail=f"answer came from unit {who}")
    if answer[0] == pdu[0] | 0x80 and len(answer) >= 2:
        return Answer(fault="exception", detail=f"exception code {answer[1]}")
    if answer != _write_echo(pdu):
        return Answer(fault="garbage", detail="the answer does not echo the write")
    return Answer(registers=())


def parse_rtu(buffer: bytes, unit: int, function: int, count: int) -> Answer | None:
    """The answer in ``buffer`` to a read request, or None while it may still be arriving.

    A good answer (or an exception answer) from ``unit`` anywhere in the buffer
    wins; bytes before it are reported as ``skipped``. When no answer can be
    found, call :func:`classify_rtu` once the line has gone quiet.
    """
    normal = rtu_response_length(count, function)
    for at in range(len(buffer) - 4):
        if buffer[at] != unit:
            continue
        fc = buffer[at + 1]
        if fc == function and buffer[at + 2] == data_bytes(function, count) and len(buffer) - at >= normal:
            frame = buffer[at : at + normal]
            if _crc_ok(frame):
                return Answer(registers=_values(function, count, frame[3:-2]), skipped=at)
        elif fc == function | 0x80:
            frame = buffer[at : at + 5]
            if _crc_ok(frame):
                code = frame[2]
                return Answer(fault="exception", detail=f"exception code {code}", skipped=at)
    return None


def classify_rtu(buffer: bytes, unit: int, function: int, count: int) -> Answer:
    """What a buffer that holds no good answer was, after the line went quiet."""
    if not buffer:
        return Answer()
    normal = rtu_response_length(count, function)
    for at in range(len(buffer) - 4):
        fc = buffer[at + 1]
        if fc == function and buffer[at + 2] == data_bytes(function, count) and len(buffer) - at >= normal:
            frame = buffer[at : at + normal]
            if not _crc_ok(frame):
                if buffer[at] == unit:
                    return Answer(fault="crc", detail="CRC mismatch in the answer", skipped=at)
                continue
            return Answer(fault="wrong_unit", detail=f"answer came from unit {buffer[at]}", skipped=at)
    return Answer(fault="garbage", detail=f"{len(buffer)} byte(s) that form no answer")


def _crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == int.from_bytes(frame[-2:], "little")


def parse_mbap(frame: bytes, transaction: int, unit: int, function: int, count: int) -> Answer:
    """The answer in one complete MBAP frame (header included)."""
    tid, protocol, _length, who = struct.unpack(">HHHB", frame[:7])
    pdu = frame[7:]
    if protocol != 0 or tid != transaction or not pdu:
        return Answer(fault="garbage", detail=f"frame for transaction {tid}, protocol {protocol}")
    if who != unit:
        return Answer(fault="wrong_unit", detail=f"answer came from unit {who}")
    if pdu[0] == function | 0x80 and len(pdu) >= 2:
        return Answer(fault="exception", detail=f"exception code {pdu[1]}")
    size = data_bytes(function, count)
    if pdu[0] != function or len(pdu) != 2 + size or pdu[1] != size:
        return Answer(fault="garbage", detail=f"{len(pdu)}-byte answer to a {count}-register read")
    return Answer(registers=_values(function, count, pdu[2:]))
