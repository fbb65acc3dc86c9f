"""A burst of alarms: the cost of each event and of the retained ``open_events`` list it carries.

Every event is committed with the list of all events still open (so a command
center that connects late sees them), in one transaction. Prints, for a burst
of N alarms raised one after another on a real outbox, the time per event and
the size of the last list.

    .venv/bin/python -m benchmarks.open_events_bench [--alarms 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from gateway.events.alarms import publish_clear, publish_open
from gateway.outbox import Outbox
from gateway.timestamps import iso_utc


def _event(n: int, ts: float) -> dict[str, object]:
    return {
        "event_id": f"ev-{n:05d}",
        "ts": iso_utc(ts),
        "state": "raised",
        "class": "alarm",
        "severity": "important",
        "category": "env.noise",
        "device": f"dust-{n:04d}",
        "channel": "noise",
        "unit": "dB(A)",
        "facet": "level",
        "level": "alarm",
        "condition": "above_limit",
        "value": 70.1,
        "limit": 68.0,
        "raised_at": iso_utc(ts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alarms", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        box = Outbox(Path(work), "gw-bench")
        t0 = time.time()
        started = time.perf_counter()
        for n in range(args.alarms):
            publish_open(box, f"alarm/dust-{n:04d}/noise/level", _event(n, t0 + n * 0.001))
        raised = time.perf_counter() - started
        listing = next(m for m in reversed(box.peek(10 * args.alarms + 10)) if m.topic == "open_events")
        size = len(listing.payload)
        count = json.loads(listing.payload)["count"]
        started = time.perf_counter()
        for n in range(args.alarms):
            key = f"alarm/dust-{n:04d}/noise/level"
            publish_clear(box, key, _event(n, t0), value=68.0, ts=t0 + 1, reason="back within limits")
        cleared = time.perf_counter() - started
        box.close()
    print(
        f"{args.alarms} alarms raised one after another: {raised / args.alarms * 1000:.2f} ms per event"
        f" ({args.alarms / raised:,.0f} events/s), the last list {count} events, {size / 1024:.0f} KiB;"
        f" cleared again: {cleared / args.alarms * 1000:.2f} ms per event",
        flush=True,
    )


if __name__ == "__main__":
    main()
