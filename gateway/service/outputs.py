"""Relay outputs: switched through their device's poller, by a rule's alarms or a signed command.

A write waits for the poll in progress and is followed by a poll, so it is
serialised with the device's reads and its new state is published as the
channel's telemetry. A rule's ``output`` is on while any of its alarms is
open (or for ``pulse_s`` when one is raised) and off once none is; what the
rules want is written by one task, retried while the device cannot be
reached, and set again at start (open alarms restored on, the rest off).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from contracts.compat import wait_set
from contracts.errors import DriverError, NotWritable
from gateway.config.rules import CrossRule, OutputAction, ThresholdRule
from gateway.detect.layout import Subject, cross_subject, rule_subject
from gateway.events.alarms import AlarmBook, Slot
from gateway.poll import DevicePoller

log = logging.getLogger(__name__)

RETRY_S = 5.0
Output = tuple[str, str]  # (device, channel)


class Outputs:
    """The polled devices' outputs; ``pollers`` is the daemon's list (a restart replaces an entry)."""

    def __init__(self, pollers: Sequence[DevicePoller]) -> None:
        self._pollers = pollers

    async def switch(self, device: str, values: Mapping[str, int]) -> dict[str, float]:
        """Switch ``device``'s outputs and return them as read back; NotWritable or DriverError."""
        poller = next((p for p in self._pollers if p.device == device), None)
        if poller is None or not poller.driver.outputs:
            with_outputs = [p.device for p in self._pollers if p.driver.outputs]
            raise NotWritable(
                device,
                f"no device with outputs by that name (with outputs: {', '.join(with_outputs) or 'none'})",
            )
        return await poller.write(values)


class RuleOutputs:
    """Switches each rule's ``output`` with its alarms (``AlarmBook.on_open`` / ``on_close``)."""

    def __init__(
        self,
        book: AlarmBook,
        subjects: Sequence[Subject],
        rules: Sequence[ThresholdRule | CrossRule],
        outputs: Outputs,
        *,
        retry_s: float = RETRY_S,
    ) -> None:
        wanted: dict[str, OutputAction] = {}
        for rule in rules:
            if rule.output is not None:
                key = rule_subject(rule).key if isinstance(rule, ThresholdRule) else cross_subject(rule).key
                wanted[key] = rule.output
        self._actions = {i: wanted[s.key] for i, s in enumerate(subjects) if s.key in wanted}
        self._book = book
        self._outputs = outputs
        self._retry_s = retry_s
        self._holding: dict[Output, set[str]] = {(a.device, a.channel): set() for a in self._actions.values()}
        self._pulse_until: dict[Output, float] = {}
        self._written: dict[Output, bool] = {}
        self._failing: set[Output] = set()  # logged once when failing starts, once when it stops
        self._wake = asyncio.Event()
        if self._actions:
            book.on_open.append(self.opened)
            book.on_close.append(self.closed)

    def opened(self, slot: Slot, event: Mapping[str, Any]) -> None:
        action = self._action(slot, event)
        if action is None:
            return
        output = (action.device, action.channel)
        if action.pulse_s is None:
            self._holding[output].add(event["event_id"])
        else:
            self._pulse_until[output] = time.monotonic() + action.pulse_s
        self._wake.set()

    def closed(self, slot: Slot, event: Mapping[str, Any]) -> None:
        action = self._action(slot, event)
        if action is not None and action.pulse_s is None:
            self._holding[(action.device, action.channel)].discard(event["event_id"])
            self._wake.set()

    def _action(self, slot: Slot, event: Mapping[str, Any]) -> OutputAction | None:
        return self._actions.get(slot[0]) if event.get("class") == "alarm" else None

    def wanted(self, output: Output) -> bool:
        return bool(self._holding.get(output)) or self._pulse_until.get(output, 0.0) > time.monotonic()

    async def run(self) -> None:
        """Write what the rules want whenever it changes; at start, for alarms restored open too."""
        for event in self._book.open_alarms:
            slot = self._book.slot_of(event["event_id"])
            if slot is not None:
                self.opened(slot, event)
        while True:
            self._wake.clear()  # before writing: what changes meanwhile wakes the next round
            failed = await self._write_changes()
            now = time.monotonic()
            ends = [t - now for t in self._pulse_until.values() if t > now]
            wait = min([*ends, *([self._retry_s] if failed else [])], default=None)
            await wait_set(self._wake, wait)

    async def _write_changes(self) -> bool:
        """Write each output whose wanted state differs from the last written; True if one failed."""
        failed = False
        for output in self._holding:
            want = self.wanted(output)
            if self._written.get(output) == want:
                continue
            device, channel = output
            try:
                read_back = await self._outputs.switch(device, {channel: int(want)})
                if read_back.get(channel) != float(want):
                    raise NotWritable(device, f"{channel} reads {read_back.get(channel)} after the write")
            except (DriverError, NotWritable) as exc:
                if output not in self._failing:
                    log.warning(
                        "output %s/%s not switched %s, retrying: %s", device, channel, _word(want), exc
                    )
                    self._failing.add(output)
                failed = True
                continue
            self._failing.discard(output)
            self._written[output] = want
            log.warning("output %s/%s switched %s by a rule", device, channel, _word(want))
        return failed


def _word(on: bool) -> str:
    return "on" if on else "off"
