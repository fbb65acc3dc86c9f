"""Logging for a daemon that runs on a terminal, under journald, or into a log shipper.

Formats: ``text`` (time, level, logger, message: for a terminal), ``journal``
(a syslog priority prefix such as ``<4>`` and no time of its own, since
journald stamps each line and ``journalctl -p warning`` filters on the
prefix), ``json`` (one object per line) and ``auto``: ``journal`` when stderr
is the stream systemd connected to the journal (``$JOURNAL_STREAM``), else
``text``.

Repeated lines are throttled: each logger and message template may log
``burst`` lines per ``window_s``; the rest are dropped and counted, and the
next line of that kind that gets through says how many were suppressed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from gateway.config.models import LogFormat, LoggingSettings

LEVEL_ENV = "GRIDGATE_LOG_LEVEL"

# RFC 5424 severities, as journald reads them from a "<N>" prefix.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def configure(settings: LoggingSettings, *, level: str | None = None, stream: TextIO | None = None) -> None:
    """Set up the root logger; ``level`` (the command line) beats ``$GRIDGATE_LOG_LEVEL`` beats the config."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_formatter(_choose_format(settings.format, stream)))
    handler.addFilter(Throttle(burst=settings.throttle_burst, window_s=settings.throttle_window_s))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    from_env = os.environ.get(LEVEL_ENV)
    root.setLevel(level or (parse_level(from_env) if from_env else settings.level))
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # failures are reported by the poller
    for name, module_level in settings.modules.items():
        logging.getLogger(name).setLevel(module_level)


def parse_level(text: str) -> str:
    """``text`` as a level name, or ValueError naming the ones there are."""
    name = text.strip().upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError(f"{text!r} is not a log level; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return name


def _choose_format(wanted: LogFormat, stream: TextIO) -> LogFormat:
    if wanted != "auto":
        return wanted
    return "journal" if _is_journal(stream, os.environ.get("JOURNAL_STREAM", "")) else "text"


def _is_journal(stream: TextIO, journal_stream: str) -> bool:
    """Whether ``stream`` is the journal's socket (``$JOURNAL_STREAM`` is its ``device:inode``)."""
    device, _, inode = journal_stream.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


def _formatter(kind: LogFormat) -> logging.Formatter:
    if kind == "journal":
        return JournalFormatter("%(name)s: %(message)s")
    if kind == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class JournalFormatter(logging.Formatter):
    """``<priority>logger: message``; each line of a traceback gets the prefix too."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message`` and ``exc`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class Throttle(logging.Filter):
    """At most ``burst`` lines per logger and message template in each ``window_s``; the rest are counted."""

    def __init__(self, *, burst: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, int, object], list[float]] = {}  # key -> [window start, count, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.burst <= 0:
            return True
        now = self._clock()
        key = (record.name, record.levelno, record.msg)
        entry = self._seen.get(key)
        if entry is None or now - entry[0] >= self.window_s:
            dropped = int(entry[2]) if entry is not None else 0
            self._seen[key] = [now, 1, 0]
            if len(self._seen) > 4096:  # messages are templates, so this bounds a runaway logger only
                self._forget_old(now)
            if dropped:
                _append(record, f" ({dropped} similar line(s) suppressed in the last {self.window_s:g} s)")
            return True
        entry[1] += 1
        if entry[1] <= self.burst:
            return True
        entry[2] += 1
        return False

    def _forget_old(self, now: float) -> None:
        for key in [k for k, e in self._seen.items() if now - e[0] >= self.window_s and not e[2]]:
            del self._seen[key]


def _append(record: logging.LogRecord, text: str) -> None:
    record.msg = f"{record.getMessage()}{text}"
    record.args = None
