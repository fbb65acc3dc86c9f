"""What happens to each batch: detection, alarm events, telemetry, all into the outbox."""

from __future__ import annotations

import math
import time

from gateway.detect.engine import DetectionEngine
from gateway.events.lifecycle import EventDesk
from gateway.outbox import Outbox, TelemetryBatcher
from gateway.readings import Quality, ReadingBatch
from gateway.timestamps import iso_utc

TELEMETRY_TOPIC = "telemetry/{device}"


class Pipeline:
    """Runs in the event loop; no I/O but the outbox commit."""

    def __init__(
        self,
        engine: DetectionEngine,
        alarms: EventDesk,
        outbox: Outbox,
        *,
        telemetry_commit_s: float = 1.0,
    ) -> None:
        self._engine = engine
        self._alarms = alarms
        self.telemetry = TelemetryBatcher(outbox, interval_s=telemetry_commit_s)
        self.latest: dict[str, ReadingBatch] = {}  # each device's last batch, for the status page
        self.batches = 0  # for the metrics: batches evaluated and the time detection took
        self.detect_s_total = 0.0

    def accept(self, batch: ReadingBatch) -> None:
        started = time.perf_counter()
        transitions = self._engine.evaluate(batch)
        self.detect_s_total += time.perf_counter() - started
        self.batches += 1
        self.latest[batch.device] = batch
        self._alarms.handle_all(transitions)
        self._alarms.observe(batch)
        self.telemetry.add(TELEMETRY_TOPIC.format(device=batch.device), _telemetry(batch))

    def check_silence(self, now: float) -> None:
        """Raise missing-data faults for channels that sent nothing for too long."""
        for transition in self._engine.silent_channels(now):
            self._alarms.handle(transition)


def _telemetry(batch: ReadingBatch) -> dict[str, object]:
    readings: dict[str, float | None] = {}
    quality: dict[str, str] = {}
    flags = batch.quality.tolist()
    for channel, value, flag in zip(batch.channels, batch.values.tolist(), flags, strict=True):
        readings[channel] = None if math.isnan(value) else value
        if flag != Quality.OK:
            quality[channel] = Quality(flag).name.lower()
    body: dict[str, object] = {
        "ts": iso_utc(float(batch.ts.max())),
        "device": batch.device,
        "readings": readings,
    }
    if quality:
        body["quality"] = quality
    return body
