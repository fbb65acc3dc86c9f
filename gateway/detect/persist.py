"""Detection state that must survive a restart: windows, day counters, learned baselines.

Saved as JSON (atomically: temporary file, fsync, rename) under the storage
directory, periodically and at stop. Each subject's state is stored under its
key *and* the fingerprint of its settings, so a rule that was changed starts
afresh while every unchanged rule picks up where it left off: a restart does
not forget that today already had two exceedances. Which facets are in alarm
is not taken from here but from the open events (see ``DetectionEngine.restore``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from gateway.detect import spike
from gateway.detect.engine import DetectionEngine

log = logging.getLogger(__name__)

STATE_FILE = "detection-state.json"
FORMAT = 1
# A rule's row saved while its spike, Hampel and CUSUM checks ran in the rule's own kernel: the
# columns of today's row, then theirs (code, samples, mean, variance, the two CUSUM sums, the Hampel
# window's fill and position, quiet since), the Hampel window beside it as "history" (ring, then
# sorted). The rule keeps its windows and day counts, the spike detector its baseline and window.
LEGACY_WIDTH = 27
_LEGACY_SPIKE = slice(18, 27)


def snapshot(engine: DetectionEngine) -> dict[str, Any]:
    """Everything the engine learned and counted, by subject."""
    subjects: dict[str, Any] = {}
    for i, subject in enumerate(engine.subjects):
        name = f"{subject.key}#{subject.fingerprint}"
        owner = engine.kind_of(i)
        if owner is not None:
            subjects[name] = owner[0].snapshot(owner[1])
        else:
            subjects[name] = {"state": engine.state[i].tolist()}
    return {"format": FORMAT, "subjects": subjects}


def apply(engine: DetectionEngine, saved: dict[str, Any]) -> int:
    """Load a :func:`snapshot` into ``engine``; return how many subjects it restored."""
    if saved.get("format") != FORMAT:
        return 0
    subjects = saved.get("subjects", {})
    restored = 0
    for i, subject in enumerate(engine.subjects):
        entry = subjects.get(f"{subject.key}#{subject.fingerprint}")
        owner = engine.kind_of(i)
        if entry is None and owner is not None and owner[0].facet == spike.FACET:
            rule_fingerprint = subject.fingerprint.removesuffix(f"/{spike.FACET}")  # see SpikeKind.subject_of
            entry = _legacy_spike(subjects.get(f"{subject.key}#{rule_fingerprint}"))
        if entry is None:
            continue
        if owner is not None:
            if not owner[0].load(owner[1], entry):
                continue
        elif len(entry["state"]) == engine.state.shape[1]:
            engine.state[i] = entry["state"]
        elif len(entry["state"]) == LEGACY_WIDTH and "history" in entry:
            engine.state[i] = entry["state"][: engine.state.shape[1]]
        else:  # another layout: learn anew
            continue
        restored += 1
    return restored


def _legacy_spike(rule_entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """The spike detector's saved state inside a rule's legacy row, as its own row (None: not one)."""
    if rule_entry is None or len(rule_entry["state"]) != LEGACY_WIDTH:
        return None
    history = rule_entry.get("history", ())
    if len(history) != 2 * spike.HAMPEL_W:
        return None
    row = [*rule_entry["state"][_LEGACY_SPIKE], math.nan, math.nan, *history]  # raised, seen: unknown
    return {"state": row} if len(row) == spike.N_STATE else None


def save_state(directory: Path, engine: DetectionEngine) -> OSError | None:
    """Write the engine's state to ``directory`` so that a crash mid-write keeps the last copy.

    A full (or failing) disk is not fatal: the last good copy stays, the partial
    temporary file is removed, and the error is returned for the caller to report.
    """
    path = directory / STATE_FILE
    temporary = path.with_suffix(".tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(snapshot(engine), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return exc
    return None


def load_state(directory: Path, engine: DetectionEngine) -> int:
    """Restore what :func:`save_state` wrote; a missing or damaged file means a fresh start."""
    path = directory / STATE_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return apply(engine, saved)
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("detection state in %s not usable (%s); starting afresh", path, exc)
        return 0
