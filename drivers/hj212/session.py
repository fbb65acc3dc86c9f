"""One datalogger link (a TCP connection or a serial port): bytes in, batches and answers out.

Every rejected frame is counted by reason and logged with the link it came
from; a link that keeps sending rubbish is logged a few times, then only
counted, so it cannot flood the log either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from contracts.errors import GridGateError
from contracts.readings import ReadingBatch
from drivers.hj212 import replies
from drivers.hj212.codec import MAX_SEGMENT, ST_SYSTEM, VERSION_2017, Frame, FrameError, Tolerance, encode
from drivers.hj212.config import Hj212DeviceConfig
from drivers.hj212.control import Command, ControlResult, PendingCommands
from drivers.hj212.framing import FrameSplitter
from drivers.hj212.mapping import DataloggerMap
from drivers.hj212.reassembly import SplitPackets

log = logging.getLogger(__name__)

LOGGED_REJECTIONS = 5  # per link; the rest are counted only
MAX_UNKNOWN_MNS = 1000  # distinct MNs remembered for the refusal count


@dataclass
class Hj212Counters:
    """What the HJ 212 links saw, over all of them: read by operators and the benchmark.

    ``tolerated`` counts the deviations from the standard accepted, by device and kind;
    ``refused_connections`` by why (``full``, ``per_address``).
    """

    frames: int = 0
    batches: int = 0
    answers: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    tolerated: Counter[tuple[str, Tolerance]] = field(default_factory=Counter)
    unknown_mns: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    refused_connections: Counter[str] = field(default_factory=Counter)
    evicted_connections: int = 0
    first_frame_timeouts: int = 0
    commands: int = 0
    clock_corrections: int = 0

    def refuse_mn(self, mn: str) -> None:
        if mn in self.unknown_mns or len(self.unknown_mns) < MAX_UNKNOWN_MNS:
            self.unknown_mns[mn] += 1

    def tolerate(self, device: str, tolerance: Tolerance, count: int = 1) -> None:
        key = (device, tolerance)
        if key not in self.tolerated:
            log.warning("hj212 %s: accepting frames with %s (counted)", device, tolerance.value)
        self.tolerated[key] += count


class Session:
    """Frames of one link; ``feed`` returns the answers to write back, in order.

    ``send`` writes a command to the link (for :meth:`command`); ``on_device`` is told
    whenever a frame of a datalogger arrives on it, so the stream knows where each is.
    """

    def __init__(
        self,
        peer: str,
        mapping: DataloggerMap,
        on_batch: Callable[[ReadingBatch], None],
        counters: Hj212Counters,
        *,
        max_segment: int = MAX_SEGMENT,
        clock: Callable[[], float] = time.time,
        send: Callable[[bytes], None] | None = None,
        on_device: Callable[[Session, Hj212DeviceConfig, Frame], None] | None = None,
    ) -> None:
        self.peer = peer
        self._mapping = mapping
        self._on_batch = on_batch
        self._counters = counters
        self._splitter = FrameSplitter(source=peer, max_segment=max_segment, crc_modes=mapping.crc_modes)
        self._split = SplitPackets(source=peer, clock=clock)
        self._clock = clock
        self._send = send
        self._on_device = on_device
        self.pending = PendingCommands()
        self.device: Hj212DeviceConfig | None = None
        self._st = ST_SYSTEM
        self._edition = 2017
        self._last_qn = ""
        self.accepted = 0
        self.rejected = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Handle the bytes just received; the answers (CN 9014, 9013) they call for."""
        answers: list[bytes] = []
        for item in self._splitter.feed(data):
            if isinstance(item, FrameError):
                self._reject(item)
                continue
            try:
                answer = self._handle(item)
            except FrameError as error:
                self._reject(error)
                continue
            if answer is not None:
                answers.append(answer)
        if self._splitter.tolerated:
            who = self.device.id if self.device is not None else self.peer
            for tolerance, count in self._splitter.tolerated.items():
                self._counters.tolerate(who, tolerance, count)
            self._splitter.tolerated.clear()
        return answers

    def command(self, command: Command) -> tuple[str, asyncio.Future[ControlResult]]:
        """Send ``command`` to the datalogger on this link; its QN and the future of its result."""
        device = self.device
        if device is None or self._send is None:
            raise RuntimeError("no datalogger has spoken on this link yet")
        qn = self._new_qn(device)
        flag = (VERSION_2017 << 2 | 1) if self._edition == 2017 else 1
        header = (("QN", qn), ("ST", self._st), ("CN", command.cn), ("PW", device.pw), ("MN", device.mn))
        future = self.pending.add(device.id, qn, command)
        self._send(encode(Frame((*header, ("Flag", str(flag))), command.cp)))
        self._counters.commands += 1
        return qn, future

    def close(self) -> None:
        """Log what the link amounted to, if anything went wrong on it."""
        self.pending.cancel_all(f"link {self.peer} closed before the answer came")
        if self.rejected:
            log.info(
                "hj212 %s: closed after %d frame(s) accepted, %d rejected",
                self.peer,
                self.accepted,
                self.rejected,
            )

    def _handle(self, frame: Frame) -> bytes | None:
        try:
            device = self._mapping.authenticate(frame, self.peer)
        except FrameError as error:
            if error.reason == "unknown_mn":
                self._counters.refuse_mn(frame.mn or "")
            raise
        tolerated = list(frame.tolerated)
        self._learn(device, frame)
        if self.pending:
            self.pending.receive(frame)
        message: Frame | None = frame
        if frame.is_split:
            message = self._split.add(frame)
        if message is not None:
            batch = self._mapping.to_batch(message, device, self._clock(), tolerated)
            if batch is not None:
                try:
                    self._on_batch(batch)
                except GridGateError as exc:  # not stored: no answer, the datalogger sends it again
                    log.error("hj212 %s: %s: batch not accepted: %s", self.peer, device.id, exc)
                    return None
                self._counters.batches += 1
        for tolerance in tolerated:
            self._counters.tolerate(device.id, tolerance)
        self._counters.frames += 1
        self.accepted += 1
        # The one place that decides what is answered, and when: after the batch is handed on.
        answer = replies.owed(frame)
        if answer is not None:
            self._counters.answers += 1
        return answer

    def _learn(self, device: Hj212DeviceConfig, frame: Frame) -> None:
        """Remember how this datalogger speaks, so commands to it go out in its own form."""
        if device is not self.device:  # its first frame here: the form it speaks does not change
            self.device = device
            if (frame.cn or "") not in replies.ANSWERS:
                self._st = frame.get("ST") or self._st
                self._edition = frame.edition
        if self._on_device is not None:
            self._on_device(self, device, frame)

    def _new_qn(self, device: Hj212DeviceConfig) -> str:
        now = datetime.fromtimestamp(self._clock(), self._mapping.zone(device))
        qn = now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"
        while qn <= self._last_qn or qn in self.pending:  # unique on this link, even within a millisecond
            qn = str(int(max(qn, self._last_qn)) + 1)
        self._last_qn = qn
        return qn

    def _reject(self, error: FrameError) -> None:
        self.rejected += 1
        self._counters.rejected[error.reason] += 1
        if self.rejected <= LOGGED_REJECTIONS:
            log.warning("hj212 frame rejected: %s", error)
            if self.rejected == LOGGED_REJECTIONS:
                log.warning("hj212 %s: further rejections are counted, not logged", self.peer)
