"""Files a config refers to (MQTT password, TLS certificates and key): where they are, and can we read them.

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
from collections.abc import Iterable
from pathlib import Path

from gateway.config.models import GatewayConfig, TlsFiles, Uplink

CREDENTIAL = "credential:"


def resolve_files(config: GatewayConfig, config_dir: Path | None) -> tuple[GatewayConfig, list[str]]:
    """``config`` with every file key resolved to a real path, and the problems found with those files."""
    uplink = config.uplink
    problems: list[str] = []
    resolved: dict[str, Path | None] = {}
    for key, ref in _file_keys(uplink):
        path, problem = _resolve(ref, config_dir)
        if problem is None:
            problem = unreadable(path)
        if problem is not None and str(ref).startswith(CREDENTIAL) and not os.path.exists(path):
            problem = (
                f"{ref} is not there ({path}); put the secret in credentials/ beside the config "
                "(the installer passes each file there to the service with LoadCredential)"
            )
        if problem is not None:
            problems.append(f"uplink.{key}: {problem}")
        resolved[key] = path
    tls = uplink.tls
    if tls is not None:
        tls = tls.model_copy(update={k[4:]: v for k, v in resolved.items() if k.startswith("tls.")})
    update: dict[str, object] = {"tls": tls}
    if "password_file" in resolved:
        update["password_file"] = resolved["password_file"]
    return config.model_copy(update={"uplink": uplink.model_copy(update=update)}), problems


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


def _file_keys(uplink: Uplink) -> Iterable[tuple[str, Path]]:
    if uplink.password_file is not None:
        yield "password_file", uplink.password_file
    tls: TlsFiles | None = uplink.tls
    if tls is not None:
        yield "tls.ca_file", tls.ca_file
        for key in ("cert_file", "key_file"):
            ref = getattr(tls, key)
            if ref is not None:
                yield f"tls.{key}", ref


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
