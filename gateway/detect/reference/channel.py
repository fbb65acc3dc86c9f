"""The twin of :func:`gateway.detect.channel.channel_step`: one rule slot as an object."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gateway.detect.codes import (
    F_DAILY,
    F_FAULT,
    F_LEVEL,
    F_RATE,
    F_WINDOW,
    FAULT_MISSING,
    FAULT_RANGE,
    FAULT_STUCK,
)

NAN = math.nan
SECONDS_PER_DAY = 86_400.0


@dataclass
class ChannelLimits:
    """What one rule slot checks; NaN switches a check off (as in the kernel's params)."""

    high: tuple[float, float, float] = (NAN, NAN, NAN)  # warning, alarm, critical
    low: tuple[float, float, float] = (NAN, NAN, NAN)
    hysteresis: float = 0.0
    hold_s: float = 0.0
    clear_hold_s: float = 0.0
    phys_min: float = NAN
    phys_max: float = NAN
    stuck_s: float = 0.0
    stuck_tol: float = 0.0
    missing_s: float = 0.0
    bucket_s: float = 0.0
    window_high: float = NAN
    window_hysteresis: float = 0.0
    daily_limit: float = NAN
    daily_max: float = 0.0
    min_samples: float = 1.0
    rate_rise: float = NAN
    rate_fall: float = NAN
    rate_span_s: float = 60.0


@dataclass
class ChannelTwin:
    """One slot: its limits and the state the kernel keeps in a row of arrays."""

    limits: ChannelLimits = field(default_factory=ChannelLimits)
    level: int = 0
    pending_level: int = 0
    pending_since: float = 0.0
    fault: int = 0
    stuck_ref: float = NAN
    stuck_since: float = NAN
    nan_since: float = NAN
    last_seen: float = NAN
    bucket: float = NAN
    bucket_sum: float = 0.0
    bucket_n: float = 0.0
    window: int = 0
    day: float = NAN
    day_count: float = 0.0
    daily: int = 0
    rate_v0: float = NAN
    rate_t0: float = NAN
    rate: int = 0

    def step(self, v: float, t: float, tz_offset_s: float = 0.0) -> list[tuple[int, int, int]]:
        """Feed one reading; return the facet changes ``(facet, old, new)`` it caused."""
        events: list[tuple[int, int, int]] = []
        fault = self._health(v, t)
        if fault != self.fault:
            events.append((F_FAULT, self.fault, fault))
            self.fault = fault
        if math.isnan(v) or fault:
            self.pending_level = self.level
            return events
        self._levels(v, t, events)
        if self.limits.bucket_s > 0:
            self._windows(v, t + tz_offset_s, events)
        if not (math.isnan(self.limits.rate_rise) and math.isnan(self.limits.rate_fall)):
            self._rate(v, t, events)
        return events

    def _health(self, v: float, t: float) -> int:
        lim = self.limits
        if math.isnan(v):
            if math.isnan(self.nan_since) or t < self.nan_since:
                self.nan_since = t
            if lim.missing_s > 0 and t - self.nan_since >= lim.missing_s:
                return FAULT_MISSING
            return self.fault
        self.nan_since = NAN
        self.last_seen = t
        if v < lim.phys_min or v > lim.phys_max:
            return FAULT_RANGE
        if lim.stuck_s > 0:
            if not abs(v - self.stuck_ref) <= lim.stuck_tol or t < self.stuck_since:
                self.stuck_ref, self.stuck_since = v, t
            elif t - self.stuck_since >= lim.stuck_s:
                return FAULT_STUCK
        return 0

    def wanted_level(self, v: float) -> int:
        """The level ``v`` asks for from the current one (hysteresis on the way down)."""
        lim, level = self.limits, self.level
        wanted = 0
        for lv in (1, 2, 3):
            if v > lim.high[lv - 1]:
                wanted = lv
            if v < lim.low[lv - 1]:
                wanted = -lv
        if level > 0:
            if wanted > level:
                return wanted
            for lv in range(level, 0, -1):
                if v > lim.high[lv - 1] - lim.hysteresis:
                    return lv
            return min(wanted, 0)
        if level < 0:
            if wanted < level:
                return wanted
            for lv in range(-level, 0, -1):
                if v < lim.low[lv - 1] + lim.hysteresis:
                    return -lv
            return max(wanted, 0)
        return wanted

    def _levels(self, v: float, t: float, events: list[tuple[int, int, int]]) -> None:
        wanted = self.wanted_level(v)
        if wanted == self.level:
            self.pending_level = self.level
            return
        escalate = abs(wanted) > abs(self.level) or wanted * self.level < 0
        if self.pending_level != wanted or t < self.pending_since:
            self.pending_level, self.pending_since = wanted, t
        wait = self.limits.hold_s if escalate else self.limits.clear_hold_s
        if t - self.pending_since >= wait:
            events.append((F_LEVEL, self.level, wanted))
            self.level = wanted

    def _windows(self, v: float, local: float, events: list[tuple[int, int, int]]) -> None:
        lim = self.limits
        bucket = math.floor(local / lim.bucket_s)
        if math.isnan(self.bucket) or bucket < self.bucket:
            self.bucket, self.bucket_sum, self.bucket_n = bucket, 0.0, 0.0
        elif bucket > self.bucket:
            if self.bucket_n >= max(1.0, lim.min_samples):
                self._bucket_done(self.bucket_sum / self.bucket_n, events)
            self.bucket, self.bucket_sum, self.bucket_n = bucket, 0.0, 0.0
        today = math.floor(local / SECONDS_PER_DAY)
        if today != self.day:
            if self.daily:
                events.append((F_DAILY, 1, 0))
                self.daily = 0
            self.day, self.day_count = today, 0.0
        self.bucket_sum += v
        self.bucket_n += 1

    def _bucket_done(self, mean: float, events: list[tuple[int, int, int]]) -> None:
        lim = self.limits
        if self.window == 0 and mean > lim.window_high:
            events.append((F_WINDOW, 0, 1))
            self.window = 1
        elif self.window == 1 and not mean > lim.window_high - lim.window_hysteresis:
            events.append((F_WINDOW, 1, 0))
            self.window = 0
        if mean > lim.daily_limit:
            self.day_count += 1
            if self.day_count > lim.daily_max and self.daily == 0:
                events.append((F_DAILY, 0, 1))
                self.daily = 1

    def _rate(self, v: float, t: float, events: list[tuple[int, int, int]]) -> None:
        if math.isnan(self.rate_t0) or t < self.rate_t0:
            self.rate_v0, self.rate_t0 = v, t
            return
        if t - self.rate_t0 < self.limits.rate_span_s:
            return
        per_min = (v - self.rate_v0) / (t - self.rate_t0) * 60.0
        rate = 1 if per_min > self.limits.rate_rise else -1 if per_min < -self.limits.rate_fall else 0
        if rate != self.rate:
            events.append((F_RATE, self.rate, rate))
            self.rate = rate
        self.rate_v0, self.rate_t0 = v, t
