"""The ``[events]`` section: how long alarms wait for acknowledgement, flap, and verify."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from contracts.config import StrictModel

CATEGORY_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"
Category = Annotated[str, StringConstraints(pattern=CATEGORY_PATTERN)]


class CategoryPolicy(StrictModel):
    """Overrides for one event category; unset fields take the ``[events]`` value."""

    verify_hold_s: float | None = Field(default=None, ge=0, le=7 * 86_400)
    escalate_after_s: float | None = Field(default=None, gt=0, le=7 * 86_400)


class EventPolicy(StrictModel):
    """Lifecycle timing of every event of the gateway."""

    flap_window_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="a clear is held back this long; a re-raise inside it stays the same event",
    )
    escalate_after_s: float = Field(
        default=300.0,
        gt=0,
        le=7 * 86_400,
        description="an urgent event not acknowledged this long after it was raised is escalated",
    )
    escalate_every_s: float = Field(default=300.0, gt=0, le=7 * 86_400)
    verify_hold_s: float = Field(
        default=600.0,
        ge=0,
        le=7 * 86_400,
        description="how long a condition must have stayed cleared for `verify` to confirm it",
    )
    verify_max_gap_s: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="a longer silence from a channel restarts the verify clock",
    )
    peak_step: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description="`updated` when the peak moves past the last by this share of the limit",
    )
    evidence_samples: int = Field(default=16, ge=1, le=256)
    categories: dict[Category, CategoryPolicy] = Field(default_factory=dict)

    def verify_hold_for(self, category: str) -> float:
        override = self.categories.get(category)
        if override is not None and override.verify_hold_s is not None:
            return override.verify_hold_s
        return self.verify_hold_s

    def escalate_after_for(self, category: str) -> float:
        override = self.categories.get(category)
        if override is not None and override.escalate_after_s is not None:
            return override.escalate_after_s
        return self.escalate_after_s
