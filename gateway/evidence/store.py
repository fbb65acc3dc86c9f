"""Pictures on disk, bounded in bytes and in age: ``<storage>/evidence/<ts_ms>-<camera>-<digest>.jpg``.

The name holds what the index needs, so a restart rebuilds it from the
directory. Writes go to a temporary name and are renamed into place, so a
crash leaves either the whole picture or none. Evidence is not an alarm: it
is not fsynced, and when the bound is reached the oldest pictures go first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{13})-([a-z0-9][a-z0-9_.-]{0,63})-([0-9a-f]{16})\.jpg$")


@dataclass(frozen=True, slots=True)
class Picture:
    """One stored picture; ``id`` is its file name without ``.jpg``."""

    id: str
    ts: float
    camera: str
    sha256: str
    size: int


class EvidenceStore:
    """Keeps pictures under ``directory`` within ``max_bytes`` and ``retention_s``."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self._max_bytes = max_bytes
        self._retention_s = retention_s
        self._clock = clock
        self._pictures: OrderedDict[str, Picture] = OrderedDict()  # oldest first
        self.bytes = 0
        self.dropped = 0  # pictures deleted to hold the bound or the retention
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    def __len__(self) -> int:
        return len(self._pictures)

    def put(self, camera: str, ts: float, data: bytes) -> Picture:
        """Store ``data`` as a picture ``camera`` took at ``ts``; older pictures may go to make room."""
        sha = hashlib.sha256(data).hexdigest()
        picture = Picture(
            id=f"{int(ts * 1000):013d}-{camera}-{sha[:16]}", ts=ts, camera=camera, sha256=sha, size=len(data)
        )
        if picture.id in self._pictures:
            return self._pictures[picture.id]
        path = self._path(picture.id)
        temporary = path.with_suffix(".part")
        temporary.write_bytes(data)
        os.replace(temporary, path)
        self._pictures[picture.id] = picture
        self.bytes += picture.size
        if len(self._pictures) > 1 and ts < next(reversed(self._pictures.values())).ts:
            self._pictures = OrderedDict(sorted(self._pictures.items(), key=lambda kv: kv[1].ts))
        self.prune()
        return picture

    def get(self, picture_id: str) -> Picture | None:
        return self._pictures.get(picture_id)

    def read(self, picture_id: str, offset: int, length: int) -> bytes:
        """``length`` bytes of a stored picture from ``offset``; FileNotFoundError if it is gone."""
        if picture_id not in self._pictures:
            raise FileNotFoundError(picture_id)
        with self._path(picture_id).open("rb") as file:
            file.seek(offset)
            return file.read(length)

    def latest(self, camera: str, since: float) -> Picture | None:
        """The newest picture of ``camera`` taken at ``since`` or later."""
        for picture in reversed(self._pictures.values()):
            if picture.ts < since:
                return None
            if picture.camera == camera:
                return picture
        return None

    def prune(self) -> None:
        """Delete pictures past the retention, then the oldest until the bound holds."""
        oldest_kept = self._clock() - self._retention_s
        while self._pictures:
            picture = next(iter(self._pictures.values()))
            if picture.ts >= oldest_kept and self.bytes <= self._max_bytes:
                return
            self._drop(picture)

    def _drop(self, picture: Picture) -> None:
        del self._pictures[picture.id]
        self.bytes -= picture.size
        self.dropped += 1
        try:
            self._path(picture.id).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("evidence: cannot delete %s (%s)", picture.id, exc)

    def _path(self, picture_id: str) -> Path:
        return self.directory / f"{picture_id}.jpg"

    def _load(self) -> None:
        found: list[Picture] = []
        for path in self.directory.iterdir():
            match = _NAME_RE.match(path.name)
            if match is None:
                if path.suffix == ".part":
                    path.unlink(missing_ok=True)  # a write a crash cut short
                continue
            data = path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            if not sha.startswith(match.group(3)):
                log.warning("evidence: %s does not match its digest; deleted", path.name)
                path.unlink(missing_ok=True)
                continue
            found.append(Picture(path.stem, int(match.group(1)) / 1000, match.group(2), sha, len(data)))
        for picture in sorted(found, key=lambda p: p.ts):
            self._pictures[picture.id] = picture
            self.bytes += picture.size
        self.prune()
