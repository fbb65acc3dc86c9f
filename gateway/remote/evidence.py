"""The ``evidence`` command: a stored picture in chunks, for a verified command center or maintainer.

Pictures show people, so the command is never served unsigned (it is not one
of the event commands ``allow_unsigned`` opens) and an operator key cannot
fetch them either (see ``auth.Principal.may``).
"""

from __future__ import annotations

from typing import Any

from gateway.evidence.chunks import EvidenceUnavailable, evidence_chunk
from gateway.evidence.store import EvidenceStore
from gateway.remote.auth import Principal
from gateway.remote.commands import Command, CommandError


def evidence_commands(store: EvidenceStore, *, chunk_bytes: int) -> list[Command]:
    async def evidence(request: dict[str, Any], principal: Principal) -> dict[str, Any]:
        try:
            return evidence_chunk(store, request, chunk_bytes=chunk_bytes)
        except EvidenceUnavailable as exc:
            raise CommandError("unknown_evidence", str(exc)) from None

    return [Command("evidence", evidence)]
