"""Python 3.10 (Jetson JetPack 6) lacks asyncio.TaskGroup; the backport is the same class."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import TaskGroup
else:
    from taskgroup import TaskGroup

__all__ = ["TaskGroup"]
