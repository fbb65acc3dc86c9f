"""Detection rule models: ``[[rules]]``, ``[[cross_rules]]``, ``[[multivariate]]``, ``[detection]``.

A ``[[rules]]`` entry names one device channel and switches on the checks it
gives: levels (``high``/``low`` are the *alarm* level; ``warning_*`` and
``critical_*`` add levels around it), ``[rules.window]`` (bucket means and
daily exceedance counts), ``[rules.rate]``, ``[rules.health]`` and
``[rules.anomaly]``. Keys left out switch their check off, so the first
threshold-only files keep working unchanged.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from contracts.config import NAME_PATTERN, StrictModel

Severity = Literal["urgent", "important", "normal"]
CATEGORY_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


class WindowCheck(StrictModel):
    """Means over local-time buckets: an alarm on the mean, and a daily exceedance count."""

    bucket_s: float = Field(gt=0, le=86_400, description="bucket length, e.g. 300, 3600, 86400")
    high: float | None = Field(default=None, description="alarm while completed bucket means exceed this")
    hysteresis: float = Field(default=0.0, ge=0)
    daily_limit: float | None = Field(default=None, description="a bucket mean above this is an exceedance")
    daily_max: int = Field(default=0, ge=0, description="more exceedances than this in a day raise an alarm")
    min_samples: int = Field(default=1, ge=1, description="buckets with fewer readings are not judged")

    @model_validator(mode="after")
    def _something_to_check(self) -> WindowCheck:
        if self.high is None and self.daily_limit is None:
            raise ValueError("give high, daily_limit or both")
        if 86_400 % self.bucket_s:
            raise ValueError(f"bucket_s ({self.bucket_s:g}) must divide a day (86400 s)")
        return self


class RateCheck(StrictModel):
    """Alarm when the value changes faster than this per minute, over spans of ``span_s``."""

    rise_per_min: float | None = Field(default=None, gt=0)
    fall_per_min: float | None = Field(default=None, gt=0)
    span_s: float = Field(default=60.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _something_to_check(self) -> RateCheck:
        if self.rise_per_min is None and self.fall_per_min is None:
            raise ValueError("give rise_per_min, fall_per_min or both")
        return self


class HealthCheck(StrictModel):
    """Sensor faults (never alarms): physical range, flat line, missing data."""

    min: float | None = None
    max: float | None = None
    stuck_s: float = Field(default=0.0, ge=0, description="0: no flat-line check")
    stuck_tolerance: float = Field(default=0.0, ge=0)
    missing_s: float = Field(default=0.0, ge=0, description="0: no missing-data check")
    severity: Severity = "normal"


AnomalyMethod = Literal["spike", "shift", "changepoint", "hampel"]


class ShiftCheck(StrictModel):
    """A sustained shift in level or spread: raised while shifted, cleared on return.

    A fast mean (``fast_s``) is compared with a slow baseline (``baseline_s``),
    in units of how far it strays from it in normal running (its normal gap);
    the baseline is frozen while raised and adopts the new level after
    ``rebaseline_s`` (a new operating point, not a fault).
    """

    baseline_s: float = Field(default=3_600.0, gt=0, description="baseline time constant")
    fast_s: float = Field(default=60.0, gt=0, description="time constant of the recent mean")
    warmup_s: float = Field(default=300.0, ge=0, description="learning time before judging")
    limit: float = Field(default=10.0, gt=0, description="recent mean this many normal gaps away")
    variance_limit: float = Field(default=9.0, gt=1, description="recent variance this many times baseline")
    hold_s: float = Field(default=10.0, ge=0, le=86_400, description="wanted this long before raised")
    clear_s: float = Field(default=30.0, ge=0, le=86_400, description="quiet this long before cleared")
    rebaseline_s: float = Field(default=600.0, gt=0, description="a shift held this long is the new normal")


class ChangePointCheck(StrictModel):
    """A two-sided CUSUM on standardised residuals, scaled for their autocorrelation."""

    baseline_s: float = Field(default=3_600.0, gt=0, description="baseline time constant")
    fast_s: float = Field(default=60.0, gt=0, description="recent mean, taken on re-baselining")
    warmup_s: float = Field(default=300.0, ge=0, description="learning time before judging")
    k: float = Field(default=0.5, ge=0, description="slack per sample, in baseline sd")
    h: float = Field(default=8.0, gt=0, description="a sum above this is a change point")
    hold_s: float = Field(default=10.0, ge=0, le=86_400, description="wanted this long before raised")
    clear_s: float = Field(default=30.0, ge=0, le=86_400, description="quiet this long before cleared")
    rebaseline_s: float = Field(default=300.0, gt=0, description="a change held this long is the new normal")


class AnomalyCheck(StrictModel):
    """Anomaly detectors, below alarms in severity; ``method`` picks which run."""

    enabled: bool = True
    method: tuple[AnomalyMethod, ...] = Field(
        default=("spike", "shift"), description="spike: EWMA z-score; shift: sustained shift"
    )
    ewma_alpha: float = Field(default=0.01, gt=0, lt=1)
    z_limit: float | None = Field(default=5.0, gt=0, description="tuned on NAB: few false positives")
    cusum_k: float = Field(default=0.5, ge=0)
    cusum_h: float | None = Field(default=None, gt=0, description="off by default: drift is slow")
    hampel_k: float | None = Field(
        default=None, gt=0, description="hampel: outlier limit in robust sd (4 when named in method)"
    )
    warmup: int = Field(default=288, ge=8, description="samples learned before judging")
    clear_s: float = Field(
        default=10.0, ge=0, le=86_400, description="spike/outlier/drift: quiet this long before cleared"
    )
    shift: ShiftCheck = Field(default_factory=ShiftCheck)
    changepoint: ChangePointCheck = Field(default_factory=ChangePointCheck)


class OutputAction(StrictModel):
    """A relay the rule's alarms switch: on while one is open, off when cleared; or on for ``pulse_s``.

    ``channel`` is a coil of ``device`` declared ``writable = true`` (profile ``relay-8``).
    """

    device: str = Field(pattern=NAME_PATTERN)
    channel: str = Field(min_length=1)
    pulse_s: float | None = Field(
        default=None, gt=0, le=3_600, description="on for this long when raised, whatever the alarm does"
    )


class ThresholdRule(StrictModel):
    """The checks on one device channel; ``high``/``low`` alone is a plain threshold alarm."""

    device: str
    channel: str
    high: float | None = None
    low: float | None = None
    warning_high: float | None = None
    warning_low: float | None = None
    critical_high: float | None = None
    critical_low: float | None = None
    hysteresis: float = Field(default=0.0, ge=0)
    hold_s: float = Field(default=0.0, ge=0, le=86_400)
    clear_hold_s: float = Field(default=0.0, ge=0, le=86_400)
    severity: Severity = "important"
    category: str = Field(default="threshold", pattern=CATEGORY_PATTERN)
    code: str | None = Field(
        default=None,
        pattern=r"^[0-9]{16}$",
        description="GB/T 30428-style component code: county(6) class(2) subclass(2) serial(6)",
    )
    window: WindowCheck | None = None
    rate: RateCheck | None = None
    health: HealthCheck | None = None
    anomaly: AnomalyCheck | None = None
    output: OutputAction | None = Field(default=None, description="a relay its alarms switch")

    @model_validator(mode="after")
    def _limits(self) -> ThresholdRule:
        highs = [v for v in (self.warning_high, self.high, self.critical_high) if v is not None]
        lows = [v for v in (self.warning_low, self.low, self.critical_low) if v is not None]
        checks = (self.window, self.rate, self.health, self.anomaly)
        if not highs and not lows and all(check is None for check in checks):
            raise ValueError("give high, low, or one of window, rate, health, anomaly")
        if highs != sorted(set(highs)):
            raise ValueError("high limits must rise: warning_high < high < critical_high")
        if lows != sorted(set(lows), reverse=True):
            raise ValueError("low limits must fall: warning_low > low > critical_low")
        if highs and lows and max(lows) >= min(highs):
            raise ValueError(f"low ({max(lows)}) must be below high ({min(highs)})")
        return self


class Clause(StrictModel):
    """``channel op value`` or ``channel op than`` (another channel of the same device)."""

    channel: str
    op: Literal[">", "<"]
    value: float | None = None
    than: str | None = None

    @model_validator(mode="after")
    def _one_side(self) -> Clause:
        if (self.value is None) == (self.than is None):
            raise ValueError("give exactly one of value and than")
        return self


class CrossRule(StrictModel):
    """Channels of one device that must not be in this combination (all clauses true)."""

    device: str
    all: tuple[Clause, ...] = Field(min_length=1)
    hold_s: float = Field(default=0.0, ge=0, le=86_400)
    kind: Literal["alarm", "fault"] = "alarm"
    severity: Severity = "important"
    category: str = Field(pattern=CATEGORY_PATTERN)
    output: OutputAction | None = Field(default=None, description="a relay its alarms switch (kind alarm)")


class MultivariateRule(StrictModel):
    """An anomaly detector over channels of one device.

    ``adaptive`` (the default): each channel standardised by its own baseline,
    their correlation tracked with forgetting and shrinkage, the recent mean of
    T²/p against ``score_limit``; usable after ``warmup_s``. ``hotelling``: T²
    against ``limit`` on a baseline frozen after ``learn_samples``.
    """

    device: str
    channels: tuple[str, ...] = Field(min_length=2, max_length=8)
    method: Literal["adaptive", "hotelling"] = "adaptive"
    learn_samples: int = Field(default=2_000, ge=10)
    limit: float = Field(default=40.0, gt=0, description="hotelling: T² above this is an anomaly")
    ridge: float = Field(
        default=1e-4, ge=0, description="hotelling: each variance is raised by this share of itself"
    )
    baseline_s: float = Field(default=3_600.0, gt=0, description="adaptive: baseline time constant")
    fast_s: float = Field(default=10.0, gt=0, description="adaptive: time constant of the recent score")
    warmup_s: float = Field(default=600.0, ge=0, description="adaptive: learning time before judging")
    score_limit: float = Field(default=4.0, gt=1, description="adaptive: recent T²/p above this")
    hold_s: float = Field(default=5.0, ge=0, le=86_400, description="adaptive: wanted this long")
    clear_s: float = Field(default=20.0, ge=0, le=86_400, description="adaptive: quiet this long")
    rebaseline_s: float = Field(default=300.0, gt=0, description="adaptive: held this long is normal")
    sustain_s: float = Field(
        default=60.0, ge=0, le=86_400, description="adaptive: residuals averaged this long (0: off)"
    )
    category: str = Field(default="anomaly.multivariate", pattern=CATEGORY_PATTERN)


class DetectionSettings(StrictModel):
    """Engine-wide settings."""

    timezone: str = Field(default="Asia/Shanghai", description="local time for buckets and days")
    state_save_s: float = Field(default=60.0, ge=1, le=3600, description="how often state is saved")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r} (use an IANA name like Asia/Shanghai)") from exc
        return name
