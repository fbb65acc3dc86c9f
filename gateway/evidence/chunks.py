"""The ``evidence`` command: a stored picture handed out in chunks, one reply each, within a size cap."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from gateway.evidence.store import EvidenceStore


class EvidenceUnavailable(LookupError):
    """The picture asked for is not (or no longer) on this gateway, or the request is malformed."""


def evidence_chunk(store: EvidenceStore, request: Mapping[str, Any], *, chunk_bytes: int) -> dict[str, Any]:
    """``{"evidence_id": ..., "offset": N}`` → that many bytes from N (base64), and where to go on."""
    picture_id = request.get("evidence_id")
    offset = request.get("offset", 0)
    if not isinstance(picture_id, str) or not picture_id:
        raise EvidenceUnavailable("the request needs `evidence_id` (from the event's evidence list)")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise EvidenceUnavailable("`offset` must be a byte offset ≥ 0")
    picture = store.get(picture_id)
    if picture is None:
        raise EvidenceUnavailable(f"no picture {picture_id[:80]!r} (never taken, or past its retention)")
    if offset > picture.size:
        raise EvidenceUnavailable(f"`offset` {offset} is past the picture's {picture.size} bytes")
    try:
        data = store.read(picture_id, offset, chunk_bytes)
    except FileNotFoundError:
        raise EvidenceUnavailable(f"picture {picture_id!r} was deleted meanwhile") from None
    end = offset + len(data)
    return {
        "evidence_id": picture.id,
        "camera": picture.camera,
        "sha256": picture.sha256,
        "size": picture.size,
        "offset": offset,
        "data": base64.b64encode(data).decode(),
        "next_offset": end if end < picture.size else None,
    }
