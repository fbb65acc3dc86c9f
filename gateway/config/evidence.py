"""``[evidence]``: how much picture evidence the gateway keeps, for how long, and how it is handed out."""

from __future__ import annotations

from pydantic import Field

from contracts.config import StrictModel


class EvidenceSettings(StrictModel):
    """Snapshots kept on disk under ``storage.directory/evidence``, oldest dropped first."""

    max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=64 * 1024, description="pictures kept on disk at most; oldest go first"
    )
    retention_s: float = Field(default=7 * 86_400.0, gt=0, description="a picture older than this is deleted")
    cameras_per_alarm: int = Field(
        default=4, ge=0, le=32, description="snapshots fetched for one sensor alarm (0: none)"
    )
    push_window_s: float = Field(
        default=30.0, gt=0, le=3600, description="a camera's event takes the picture pushed this recently"
    )
    chunk_bytes: int = Field(
        default=96 * 1024, ge=1024, le=1024 * 1024, description="picture bytes per `evidence` command reply"
    )
