"""The registry of detector kinds: the one place a new kind is added."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config.rules import MultivariateRule, ThresholdRule
from gateway.detect.adaptive import AdaptiveKind
from gateway.detect.kind import DetectorKind
from gateway.detect.shift import ShiftKind


def kinds_for(rules: Sequence[ThresholdRule], multivariate: Sequence[MultivariateRule]) -> list[DetectorKind]:
    """One instance of every registered kind, serving the rules that ask for it."""
    return [ShiftKind(rules), AdaptiveKind(multivariate)]
