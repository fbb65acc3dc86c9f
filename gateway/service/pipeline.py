"""What happens to each batch: detection, alarm events, telemetry, all into the outbox."""

from __future__ import annotations

import math
import time

import numpy as np

from contracts.errors import GridGateError, OutboxError
from contracts.readings import Quality, ReadingBatch
from gateway.detect.engine import DetectionEngine
from gateway.events.lifecycle import EventDesk
from gateway.outbox import Outbox, TelemetryBatcher
from gateway.timestamps import iso_utc

TELEMETRY_TOPIC = "telemetry/{device}"
LATEST_CHANNEL_SETS = 4  # kept per device: a device whose frames carry ever other channels stays bounded


class Pipeline:
    """Runs in the event loop; no I/O but the outbox commit."""

    def __init__(
        self,
        engine: DetectionEngine,
        alarms: EventDesk,
        outbox: Outbox,
        *,
        telemetry_commit_s: float = 1.0,
        telemetry_coalesce_s: float = 0.02,
    ) -> None:
        self._engine = engine
        self._alarms = alarms
        self._outbox = outbox
        self.telemetry = TelemetryBatcher(
            outbox, interval_s=telemetry_commit_s, coalesce_s=telemetry_coalesce_s
        )
        # For the status page: each device's last batch of each set of channels it sends (an
        # HJ 212 logger sends real-time values and minute, hour and day statistics apart).
        self.latest: dict[str, dict[tuple[str, ...], ReadingBatch]] = {}
        self.batches = 0  # for the metrics: batches evaluated and the time detection took
        self.detect_s_total = 0.0

    def accept(self, batch: ReadingBatch) -> None:
        """Telemetry first: a batch that trips detection up is still published."""
        self.telemetry.add(TELEMETRY_TOPIC.format(device=batch.device), _telemetry(batch))
        self._detect(batch)

    def accept_committed(self, batch: ReadingBatch) -> None:
        """:meth:`accept`, returning only once the readings are on disk; OutboxError if they are not.

        For devices that are told the gateway has their data (HJ 212 CN 9014) and
        never send it again: the answer must not go out before the commit.
        """
        try:
            self.telemetry.add(TELEMETRY_TOPIC.format(device=batch.device), _telemetry(batch))
            self.telemetry.flush()
        except GridGateError:
            raise
        except Exception as exc:  # whatever failed, the readings are not stored: no answer
            raise OutboxError(f"{batch.device}: readings not stored ({type(exc).__name__}: {exc})") from exc
        if self._outbox.disk_full:
            raise OutboxError(f"{batch.device}: the disk refuses writes; readings not stored")
        self._detect(batch)

    def _detect(self, batch: ReadingBatch) -> None:
        if batch.late:  # history of what detection has already moved past
            return
        self._keep_latest(batch)
        started = time.perf_counter()
        transitions = self._engine.evaluate(batch)
        self.detect_s_total += time.perf_counter() - started
        self.batches += 1
        self._alarms.handle_all(transitions)
        self._alarms.observe(batch)

    def _keep_latest(self, batch: ReadingBatch) -> None:
        kept = self.latest.setdefault(batch.device, {})
        kept.pop(batch.channels, None)  # the newest last
        kept[batch.channels] = batch
        if len(kept) > LATEST_CHANNEL_SETS:
            del kept[next(iter(kept))]

    def check_silence(self, now: float) -> None:
        """Raise missing-data faults for channels that sent nothing for too long."""
        for transition in self._engine.silent_channels(now):
            self._alarms.handle(transition)


def _telemetry(batch: ReadingBatch) -> dict[str, object]:
    values = batch.values.tolist()
    readings: dict[str, float | None] = dict(zip(batch.channels, values, strict=True))
    quality: dict[str, str] = {}
    if np.count_nonzero(batch.quality) or any(map(math.isnan, values)):  # the usual batch has neither
        flags = batch.quality.tolist()
        for channel, value, flag in zip(batch.channels, values, flags, strict=True):
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
    if batch.late:
        body["late"] = True
    return body
