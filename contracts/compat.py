"""What Python 3.10 (Jetson JetPack 6) lacks: asyncio.TaskGroup and tomllib; the backports match."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import TaskGroup

    import tomllib
else:
    import tomli as tomllib
    from taskgroup import TaskGroup

__all__ = ["TaskGroup", "tomllib"]
