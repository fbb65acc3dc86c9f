"""The MQTT client id: distinct per box, the same across restarts.

A broker keeps one session per client id, so two boxes that use the same one
end each other's connection. The gateway id alone is not enough: a config
copied to a second box (or a replacement box started beside the old one)
carries the same id. So the default is the gateway id and a random suffix made
once and kept in the storage directory, beside the outbox.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

CLIENT_ID_FILE = "uplink.client_id"


def box_client_id(gateway_id: str, directory: Path) -> str:
    """``{gateway_id}-{8 hex digits}``, read from ``directory`` or made and stored there."""
    path = Path(directory) / CLIENT_ID_FILE
    try:
        stored = path.read_text().strip()
    except FileNotFoundError:
        stored = ""
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("uplink: cannot read %s (%s); a new client id is made", path, exc)
        stored = ""
    if stored.startswith(f"{gateway_id}-"):  # a renamed gateway gets a new one
        return stored
    client_id = f"{gateway_id}-{secrets.token_hex(4)}"
    temporary = path.with_suffix(".tmp")
    try:
        temporary.write_text(client_id + "\n")
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("uplink: cannot keep the client id in %s (%s); it changes at the next start", path, exc)
    return client_id
