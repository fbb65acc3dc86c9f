"""One Modbus TCP connection to one device: a request, its answer, matched by transaction id.

The frames are :mod:`drivers.modbus.frames`'s, the same the shared bus speaks
over a Modbus TCP gateway; this is only the pipe, without the bus's turns and
quiet gaps (a device of its own needs neither). An answer wakes the waiting
request straight from ``data_received`` and the link's one timer bounds the
wait: no task, no ``wait_for``, no timer and no library transaction manager per
poll, which is what a poll of a few registers mostly cost.

After a timeout or a broken frame the connection is closed, so a late answer
can never be taken for the next request's.
"""

from __future__ import annotations

import asyncio
import struct

from contracts.errors import DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from drivers.modbus.frames import Answer, mbap_frame
from drivers.modbus.lines import TcpConnection

_HEADER = struct.Struct(">HHH")  # transaction, protocol, length (unit and PDU follow)
MAX_FRAME = 260  # MBAP header (7) + the largest PDU (253)


class MbapLink(TcpConnection):
    """Sends one request at a time and hands back the frame that answers it."""

    def __init__(self, device: str, host: str, port: int) -> None:
        super().__init__(device, host, port)
        self._buffer = bytearray()
        self._transaction = 0
        self._waiting: asyncio.Future[bytes] | None = None
        self._waiting_for = -1  # the transaction id the waiting request was sent with
        self._deadline = 0.0  # when the waiting request's time runs out
        self._timer: asyncio.TimerHandle | None = None

    @property
    def connected(self) -> bool:
        return self._transport is not None

    async def open(self, timeout: float) -> None:
        self._buffer.clear()
        await self.connect(timeout)

    async def exchange(self, unit: int, pdu: bytes, *, timeout: float, doing: str) -> tuple[bytes, int]:
        """Send ``pdu`` to ``unit``; return the answering frame and the transaction id it must carry."""
        transport = self._transport
        if transport is None:
            raise DeviceUnreachable(self.owner, f"not connected to {self.host}:{self.port} {doing}")
        loop = asyncio.get_running_loop()
        self._transaction = tid = (self._transaction + 1) & 0xFFFF
        self._waiting = answer = loop.create_future()
        self._waiting_for = tid
        transport.write(mbap_frame(tid, unit, pdu))
        self._deadline = loop.time() + timeout
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._check_deadline)
        try:
            return await answer, tid
        except _NoAnswer:
            self.close()
            raise DeviceTimeout(self.owner, f"no answer within {timeout} s {doing}") from None
        except _Garbage as exc:
            self.close()
            raise DeviceProtocolError(self.owner, f"{exc} {doing}") from None
        except ConnectionError as exc:
            self.close()
            raise DeviceUnreachable(self.owner, f"connection lost {doing} ({exc})") from None
        finally:
            self._waiting = None

    def _check_deadline(self) -> None:
        """The link's one timer: expire the waiting request if its time is up, else wait on for it.

        One timer per link that moves on to the next request's deadline when it
        fires, instead of one made and cancelled per request (a poll every
        250 ms with a 1 s timeout wakes it about once a second).
        """
        self._timer = None
        answer = self._waiting
        if answer is None or answer.done():
            return
        loop = answer.get_loop()
        if loop.time() >= self._deadline:
            answer.set_exception(_NoAnswer())
        else:
            self._timer = loop.call_at(self._deadline, self._check_deadline)

    def fault(self, answer: Answer, doing: str) -> DeviceProtocolError:
        """The error for a wrong answer. Unless it was a Modbus exception (a proper answer), the
        connection is closed: what follows on it cannot be trusted."""
        if answer.fault != "exception":
            self.close()
        return DeviceProtocolError(self.owner, f"{answer.detail} {doing}")

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 6:
            tid, _, length = _HEADER.unpack_from(buffer)
            size = 6 + length
            if size > MAX_FRAME or length < 2:  # no frame boundary to find again: start afresh
                self._fail(_Garbage(f"bytes that are no Modbus TCP frame (length field {length})"))
                self.close()
                return
            if len(buffer) < size:
                return
            frame = bytes(buffer[:size])
            del buffer[:size]
            waiting = self._waiting
            if waiting is not None and not waiting.done() and tid == self._waiting_for:
                waiting.set_result(frame)
            # An answer to nothing waiting (a request that timed out) is dropped.

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.lost = str(exc) if exc else "closed by the device"
        self._fail(ConnectionError(self.lost))

    def _fail(self, exc: Exception) -> None:
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            waiting.set_exception(exc)
        self._buffer.clear()


class _NoAnswer(Exception):
    """The request's time ran out."""


class _Garbage(Exception):
    """Bytes on the connection that are no Modbus TCP frame."""
