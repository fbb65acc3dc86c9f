"""The registry of detector kinds: the one place a new kind is added."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.config.rules import CrossRule, MultivariateRule, ThresholdRule
from gateway.detect.adaptive import AdaptiveKind
from gateway.detect.changepoint import ChangePointKind
from gateway.detect.crossrule import CrossKind
from gateway.detect.hotelling import HotellingKind
from gateway.detect.kind import DetectorKind
from gateway.detect.shift import ShiftKind
from gateway.detect.spike import SpikeKind


def kinds_for(
    rules: Sequence[ThresholdRule],
    cross_rules: Sequence[CrossRule],
    multivariate: Sequence[MultivariateRule],
) -> list[DetectorKind]:
    """One instance of every registered kind, serving the rules that ask for it.

    The order numbers the subjects after the ``[[rules]]``; a new kind goes last,
    so saved states and open events of the others keep their numbers.
    """
    return [
        CrossKind(cross_rules),
        HotellingKind(multivariate),
        ShiftKind(rules),
        AdaptiveKind(multivariate),
        ChangePointKind(rules),
        SpikeKind(rules),
    ]
