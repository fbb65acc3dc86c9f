"""What the evidence store and the drivers share: where a camera's snapshot is fetched, and a picture hook.

A camera's device entry says where its still picture can be asked for; the
gateway core fetches from there when a sensor alarm opens in the camera's grid
cell. A stream that receives a picture with an alarm hands it on through
:data:`PictureSink`; the core keeps it as the evidence of the camera's own event.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path

from pydantic import Field, model_validator

from contracts.config import StrictModel

PictureSink = Callable[[str, float, bytes], None]
"""``(device, Unix time, JPEG bytes)``: a picture that came with a device's alarm push."""


class HttpAuth(str, Enum):
    """How a camera (or the receiver) checks who is asking."""

    NONE = "none"
    BASIC = "basic"
    DIGEST = "digest"


class Credentials(StrictModel):
    """A user name and the file holding its password (kept out of the config)."""

    username: str | None = Field(default=None, min_length=1)
    password_file: Path | None = None
    auth: HttpAuth = HttpAuth.DIGEST

    @model_validator(mode="after")
    def _both_or_none(self) -> Credentials:
        if self.auth is not HttpAuth.NONE and (self.username is None or self.password_file is None):
            raise ValueError(f"auth = {self.auth.value!r} needs username and password_file")
        return self

    def password(self) -> str:
        """The password, read from its file (the first line)."""
        if self.password_file is None:
            return ""
        lines = self.password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""


class SnapshotSource(Credentials):
    """Where a camera gives one still picture, never a stream (Hikvision: ISAPI channels/101/picture)."""

    url: str = Field(pattern=r"^https?://[^\s]+$", description="the camera's snapshot URL")
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_bytes: int = Field(
        default=2_000_000, ge=1024, le=50_000_000, description="a larger picture is refused"
    )
