"""A labelled series as the quality benchmark scores it (shared by its data sets)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
PROBATION = 0.15  # the first share of every series is for learning only, as NAB has it


@dataclass(frozen=True)
class Series:
    """One labelled run: ``values[k, j]`` of channel ``channels[j]`` at ``ts[k]``."""

    name: str
    channels: tuple[str, ...]
    ts: Array
    values: Array
    windows: tuple[tuple[int, int], ...]  # labelled [first, last] sample indices
    backlog: int = 1  # rows per batch: 1 for a poll, more for a replayed backlog
    kinds: tuple[str, ...] = ()  # what each window is, where known

    @property
    def probation(self) -> int:
        return int(len(self.ts) * PROBATION)
