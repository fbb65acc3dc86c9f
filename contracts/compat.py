"""What Python 3.10 (Jetson JetPack 6) lacks: asyncio.TaskGroup and tomllib; the backports match.

And :func:`wait_set`, for what ``asyncio.wait_for`` gets wrong before Python 3.12.
"""

from __future__ import annotations

import asyncio
import sys

if sys.version_info >= (3, 11):
    from asyncio import TaskGroup

    import tomllib
else:
    import tomli as tomllib
    from taskgroup import TaskGroup

__all__ = ["TaskGroup", "tomllib", "wait_set"]


async def wait_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait up to ``timeout`` seconds (None: for ever) for ``event``; return whether it is set.

    Not ``asyncio.wait_for``: before Python 3.12 it can swallow a cancellation that
    arrives just as the wait ends, and a task looping around it then never stops.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()
