"""What the outbox keeps outside its database file, so a damaged database cannot take it.

- ``outbox.floor``: a ``seq`` floor (no message ever had a higher seq) and the
  last ``bd_seq``. The floor is reserved ahead in blocks, so it is written once
  per ``SEQ_BLOCK`` messages, not per message. The file is 64 bytes made at
  creation and only ever overwritten in place, two slots used in turn, each
  with a generation and a CRC: a full disk cannot refuse the write (no block
  is allocated) and a torn write spoils one slot, never both.
- ``outbox.kv.json``: a copy of the key-value table (open events, the armed
  Last Will), written atomically now and then; after a damaged outbox the
  open events come back from it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
import zlib
from pathlib import Path

log = logging.getLogger(__name__)

FLOOR_FILE = "outbox.floor"
KV_COPY_FILE = "outbox.kv.json"
SEQ_BLOCK = 1000
_RECORD = struct.Struct("<QQQ")  # generation, seq floor, bd_seq
_SLOT = 32  # record + CRC-32, padded


class Anchor:
    """The seq floor and bd_seq of one outbox directory."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / FLOOR_FILE
        self.kv_path = Path(directory) / KV_COPY_FILE
        self._generation, self.seq_floor, self.bd_seq = self._read()
        self._failing = False

    @property
    def exists(self) -> bool:
        """Whether an outbox ever used this directory (the floor is written with the first message)."""
        return self.seq_floor > 0

    def claim(self, seq: int) -> None:
        """Make sure the floor is at least ``seq`` before a message with it can leave the gateway."""
        if seq > self.seq_floor:
            self._write(seq + SEQ_BLOCK, self.bd_seq)

    def set_bd_seq(self, bd_seq: int) -> None:
        if bd_seq != self.bd_seq:
            self._write(self.seq_floor, bd_seq)

    def read_kv(self) -> dict[str, str]:
        """The last copy of the key-value table; empty if none or unreadable."""
        try:
            saved = json.loads(self.kv_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("outbox: copy of open events %s unreadable (%s)", self.kv_path, exc)
            return {}
        if not isinstance(saved, dict):
            return {}
        return {str(k): str(v) for k, v in saved.items()}

    def write_kv(self, values: dict[str, str]) -> bool:
        """Replace the copy atomically; False (and nothing half-written left) if the disk refuses."""
        temporary = self.kv_path.with_name(self.kv_path.name + ".tmp")
        try:
            with open(temporary, "w", encoding="utf-8") as out:
                json.dump(values, out, ensure_ascii=False, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.kv_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            log.warning("outbox: cannot copy open events to %s (%s); trying again later", self.kv_path, exc)
            return False
        return True

    def _read(self) -> tuple[int, int, int]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0, 0, 0
        best = (0, 0, 0)
        for start in (0, _SLOT):
            slot = data[start : start + _SLOT]
            if len(slot) < _RECORD.size + 4:
                continue
            record = slot[: _RECORD.size]
            (crc,) = struct.unpack_from("<I", slot, _RECORD.size)
            if zlib.crc32(record) == crc:
                values = _RECORD.unpack(record)
                best = max(best, values)
        return best

    def _write(self, seq_floor: int, bd_seq: int) -> None:
        generation = self._generation + 1
        record = _RECORD.pack(generation, seq_floor, bd_seq)
        slot = (record + struct.pack("<I", zlib.crc32(record))).ljust(_SLOT, b"\0")
        created = not self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if created:  # both slots at once: later writes never allocate
                    os.pwrite(fd, slot * 2, 0)
                else:
                    os.pwrite(fd, slot, (generation % 2) * _SLOT)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_directory(self.path.parent)
        except OSError as exc:
            if not self._failing:
                log.error("outbox: cannot write the seq floor %s (%s)", self.path, exc)
            self._failing = True
            return
        self._failing = False
        self._generation, self.seq_floor, self.bd_seq = generation, seq_floor, bd_seq


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
