"""Files a config refers to (MQTT passwords, TLS certificates and keys): where they are, and can we read them.

A file key holds a path, or ``credential:NAME`` for a systemd credential: under
the unit (``LoadCredential=NAME:...``) that is ``$CREDENTIALS_DIRECTORY/NAME``,
readable by the service alone; outside systemd (a technician running
``gridgate check``) it is ``credentials/NAME`` beside the config file.

Each referenced file must exist, be a regular file and be readable by the
user running the check, so ``gridgate check`` run as the service user finds
what the service would trip over, naming the key and the fix.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from gateway.config.models import GatewayConfig

CREDENTIAL = "credential:"


def resolve_files(config: GatewayConfig, config_dir: Path | None) -> tuple[GatewayConfig, list[str]]:
    """``config`` with every file key resolved to a real path, and the problems found with those files.

    A file key is any ``*_file`` path of the uplink, of a driver's section or
    of a device entry (a platform connection's password and TLS files, a
    camera's snapshot password), nested tables included.
    """
    problems: list[str] = []
    uplink = _resolved(config.uplink, "uplink", config_dir, problems)
    sections = {
        key: (
            tuple(_resolved(entry, f"{key}[{i}]", config_dir, problems) for i, entry in enumerate(value))
            if isinstance(value, tuple)
            else _resolved(value, key, config_dir, problems)
        )
        for key, value in config.sections.items()
    }
    devices = tuple(_resolved(d, f"devices[{i}]", config_dir, problems) for i, d in enumerate(config.devices))
    return config.model_copy(update={"uplink": uplink, "sections": sections, "devices": devices}), problems


M = TypeVar("M")


def _resolved(model: M, where: str, config_dir: Path | None, problems: list[str]) -> M:
    """``model`` (and the models inside it) with each ``*_file`` path resolved and checked."""
    if not isinstance(model, BaseModel):
        return model
    update: dict[str, object] = {}
    for key in type(model).model_fields:
        value = getattr(model, key)
        if isinstance(value, BaseModel):
            update[key] = _resolved(value, f"{where}.{key}", config_dir, problems)
        elif isinstance(value, Path) and key.endswith("_file"):
            update[key] = _resolve_file(value, f"{where}.{key}", config_dir, problems)
    return model.model_copy(update=update)


def _resolve_file(ref: Path, where: str, config_dir: Path | None, problems: list[str]) -> Path:
    path, problem = _resolve(ref, config_dir)
    if problem is None:
        problem = unreadable(path)
    if problem is not None and str(ref).startswith(CREDENTIAL) and not os.path.exists(path):
        problem = (
            f"{ref} is not there ({path}); put the secret in credentials/ beside the config "
            "(the installer passes each file there to the service with LoadCredential)"
        )
    if problem is not None:
        problems.append(f"{where}: {problem}")
    return path


def read_secret(path: Path) -> str:
    """A password file's text without its trailing newline (as ``echo secret > file`` leaves it)."""
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def unreadable(path: Path) -> str | None:
    """Why the current user cannot read the regular file ``path``, with the fix; None if it can."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"{path} does not exist; create it or correct the path"
    except PermissionError:
        return f"{path} cannot be reached by user {_user()}: a directory above it is closed to that user"
    if stat.S_ISDIR(info.st_mode):
        return f"{path} is a directory; name the file inside it"
    if not stat.S_ISREG(info.st_mode):
        return f"{path} is not a regular file"
    if not os.access(path, os.R_OK):
        mode = stat.S_IMODE(info.st_mode)
        return (
            f"{path} is not readable by user {_user()} (mode {mode:04o}, owner uid {info.st_uid}, "
            f"group gid {info.st_gid}); give that user's group read access (chgrp, chmod g+r) "
            "or pass it as a systemd credential"
        )
    return None


def _resolve(ref: Path, config_dir: Path | None) -> tuple[Path, str | None]:
    text = str(ref)
    if not text.startswith(CREDENTIAL):
        return ref, None
    name = text[len(CREDENTIAL) :]
    if not name or "/" in name or name in (".", ".."):
        return ref, f"{text!r}: a credential is named credential:NAME, NAME without '/'"
    under_systemd = os.environ.get("CREDENTIALS_DIRECTORY")
    if under_systemd:
        return Path(under_systemd) / name, None
    return (config_dir or Path.cwd()) / "credentials" / name, None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())
