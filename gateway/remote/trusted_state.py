"""The config version in force and an apply under way, in one file: survives power loss, never goes back.

One file holds both, so the commit of an apply (the new version, no apply
pending) is one atomic write: after a power cut either the apply is still
pending (and :func:`gateway.remote.apply.recover` undoes it) or it committed.

Written as a new file, fsynced, renamed over the old one and the directory
fsynced, so after a power cut the file holds either the old or the new state.
A file that cannot be read is an error, never version 0: that would let an
old bundle be replayed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "remote/trusted.json"


class TrustedStateError(Exception):
    """The trusted state file is unreadable; bundles are refused until it is fixed by hand."""


@dataclass(frozen=True)
class TrustedState:
    version: int = 0  # 0: no bundle applied yet, the local config is in force
    digest: str = ""
    previous: str | None = None  # an apply is under way: the config text to put back if it fails


def load_trusted(directory: Path) -> TrustedState:
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text())
        previous = data.get("previous")
        return TrustedState(
            version=int(data["version"]),
            digest=str(data["digest"]),
            previous=previous if isinstance(previous, str) else None,
        )
    except FileNotFoundError:
        return TrustedState()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrustedStateError(
            f"{path}: unreadable ({exc}); restore it (the version last applied) before pushing bundles"
        ) from exc


def save_trusted(directory: Path, state: TrustedState) -> None:
    body = {"version": state.version, "digest": state.digest, "previous": state.previous}
    write_atomically(directory / STATE_FILE, json.dumps(body))


def write_atomically(path: Path, text: str) -> None:
    """``path`` holds ``text`` or what it held before, whatever happens meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.new")
    with open(scratch, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(scratch, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
