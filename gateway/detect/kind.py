"""What a detector kind gives the engine, and the one list of kinds.

A kind is one module: it reads the rules it serves from the config, owns its
parameter and state arrays, its kernel (one call per batch, every reading in
order), its pure-Python twin, its subjects and their event names, warm-up,
and save/restore. The engine keeps a list of kinds and knows nothing of what
is inside one; adding a kind is one module, one line in
:func:`gateway.detect.kinds.kinds_for` and a twin test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from gateway.detect.layout import Subject


class Description(NamedTuple):
    """How the events layer names a facet state."""

    event_class: str
    direction: str
    level: str | None
    condition: str
    limit: float | None


class KindEvent(NamedTuple):
    """Subject ``subject`` of a kind went from ``old`` to ``new`` at reading ``k`` of the batch."""

    k: int
    subject: int
    old: int
    new: int


class DetectorKind(Protocol):
    """The engine's view of one kind of detector."""

    facet: str
    reports_value: bool  # whether a transition carries the reading (False: it judges several)
    subjects: tuple[Subject, ...]

    def evaluate(
        self,
        device: str,
        channels: tuple[str, ...],
        values: npt.NDArray[np.float64],
        ts: npt.NDArray[np.float64],
    ) -> list[KindEvent]:
        """Every reading of one device's batch, in order (``values`` NaN where not trusted)."""
        ...

    def describe(self, subject: int, code: int) -> Description: ...

    def code_of(self, direction: str, condition: str) -> int: ...

    def set_open(self, codes: Sequence[int]) -> None:
        """Make every subject's facet state the open event's code (0: none open)."""
        ...

    def snapshot(self, subject: int) -> dict[str, Any]: ...

    def load(self, subject: int, entry: dict[str, Any]) -> bool:
        """Take a saved state back; False where it does not fit (another layout): learned anew."""
        ...

    def warm_up(self) -> None: ...


class StateRows:
    """Open events, snapshot and restore for a kind whose state is one float row per subject.

    ``code_at``, ``raised_at`` and ``seen_at`` are the columns of the facet
    code, when it was raised, and the last reading's time.
    """

    state: npt.NDArray[np.float64]
    code_at: int
    raised_at: int
    seen_at: int

    def set_open(self, codes: Sequence[int]) -> None:
        s = self.state
        s[:, self.code_at] = codes
        reopened = (s[:, self.code_at] != 0) & np.isnan(s[:, self.raised_at])
        s[reopened, self.raised_at] = s[reopened, self.seen_at]

    def snapshot(self, subject: int) -> dict[str, Any]:
        return {"state": self.state[subject].tolist()}

    def load(self, subject: int, entry: dict[str, Any]) -> bool:
        """Take a saved row back; one of another layout (an older release) is left to learn anew."""
        row = entry["state"]
        if len(row) != self.state.shape[1]:
            return False
        code = self.state[subject, self.code_at]
        self.state[subject] = row
        self.state[subject, self.code_at] = code  # which facets are open comes from the events
        return True
