"""The daemon's event loop: uvloop where it is installed, asyncio's own otherwise.

The gateway's work is many small socket reads and writes (a Modbus request
and answer per device and poll, a publish and a PUBACK per message), and at
hundreds of them a second the event loop itself is a large share of its CPU;
uvloop runs the same asyncio code on libuv. ``GRIDGATE_EVENT_LOOP=asyncio``
chooses asyncio's own loop (to compare, or where uvloop misbehaves), ``uvloop``
insists on it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any

ENV = "GRIDGATE_EVENT_LOOP"
CHOICES = ("auto", "uvloop", "asyncio")


def chosen() -> str:
    """The loop ``run`` will use: ``uvloop`` or ``asyncio``."""
    choice = os.environ.get(ENV, "auto").strip() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"{choice!r} is not one of {', '.join(CHOICES)}")
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if choice == "uvloop":
            raise ValueError("uvloop is asked for but not installed") from None
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run ``main`` to completion on ``loop`` (what :func:`chosen` said)."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)
