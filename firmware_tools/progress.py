"""A progress bar with a time estimate on a terminal, plain lines elsewhere (a log, a pipe, CI)."""

from __future__ import annotations

import shutil
from typing import TextIO


def duration(seconds: float) -> str:
    """``3m05s`` or ``12s``."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressBar:
    """``update(done, total, what, left_s)``; on a terminal redrawn in place, else a line per 10 %."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._last_tenth = -1
        self._drawn = False

    def update(self, done: int, total: int, what: str, left_s: float) -> None:
        share = done / total if total else 1.0
        if self._tty:
            width = shutil.get_terminal_size((80, 24)).columns
            bar = "#" * int(share * 20)
            text = f"[{bar:<20}] {share:4.0%} {done}/{total} {what}, about {duration(left_s)} left"
            self._stream.write("\r" + text[: width - 1].ljust(width - 1))
            self._drawn = True
        elif int(share * 10) != self._last_tenth:
            self._last_tenth = int(share * 10)
            self._stream.write(f"{share:4.0%} {done}/{total} {what}, about {duration(left_s)} left\n")
        self._stream.flush()

    def say(self, text: str) -> None:
        """A line of its own (a find), without breaking the bar."""
        if self._drawn:
            self._stream.write("\r" + " " * (shutil.get_terminal_size((80, 24)).columns - 1) + "\r")
        self._stream.write(text + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._drawn = False
        self._stream.flush()
