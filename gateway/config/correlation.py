"""``[[correlations]]``: events of one grid cell that, together within a time window, mean more."""

from __future__ import annotations

from pydantic import Field, model_validator

from contracts.config import NAME_PATTERN, StrictModel
from gateway.config.rules import CATEGORY_PATTERN, Severity


class CorrelationMember(StrictModel):
    """One kind of event a correlation needs: by category (and its sub-categories), device, or both."""

    category: str | None = Field(
        default=None, pattern=CATEGORY_PATTERN, description="fire.smoke matches fire.smoke.*"
    )
    device: str | None = Field(default=None, pattern=NAME_PATTERN)

    @model_validator(mode="after")
    def _something(self) -> CorrelationMember:
        if self.category is None and self.device is None:
            raise ValueError("a member names a category, a device, or both")
        return self

    def matches(self, device: str, category: str) -> bool:
        by_category = (
            self.category is None or category == self.category or category.startswith(f"{self.category}.")
        )
        return by_category and (self.device is None or device == self.device)


class CorrelationRule(StrictModel):
    """When an event of every member has opened within ``within_s`` in one grid cell, the last is raised."""

    name: str = Field(pattern=NAME_PATTERN)
    members: tuple[CorrelationMember, ...] = Field(min_length=2)
    within_s: float = Field(default=300.0, gt=0, le=86_400)
    severity: Severity = Field(default="urgent", description="the severity the correlated event is raised to")
