"""How configured rules become rows of the kernels' parameter arrays, and what they are called."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.config.rules import Clause, CrossRule, MultivariateRule, Severity, ThresholdRule
from gateway.detect import codes as c


@dataclass(frozen=True, slots=True)
class Subject:
    """What a detector watches, as the events layer names it."""

    key: str  # stable name of the rule; open alarms are stored under it
    fingerprint: str  # changes whenever the rule's settings change; saved state is kept under it
    device: str
    channel: str
    category: str
    severity: Severity
    fault_severity: Severity
    hysteresis: float
    hold_s: float
    label: str  # how events name the rule, e.g. ``dust-01/pm10 > 150``
    code: str | None = None  # configured component code (GB/T 30428 style)


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _fingerprint(model: ThresholdRule | CrossRule | MultivariateRule) -> str:
    # a rule's relay is what its alarms do, not how they are detected: the saved state still fits
    return hashlib.sha256(model.model_dump_json(exclude={"output"}).encode()).hexdigest()[:16]


def rule_subject(rule: ThresholdRule) -> Subject:
    """The subject of a ``[[rules]]`` entry (its key is the one threshold alarms always had)."""
    return Subject(
        key=f"{rule.device}/{rule.channel}/{rule.category}/{rule.high}/{rule.low}",
        fingerprint=_fingerprint(rule),
        device=rule.device,
        channel=rule.channel,
        category=rule.category,
        severity=rule.severity,
        fault_severity=rule.health.severity if rule.health else "normal",
        hysteresis=rule.hysteresis,
        hold_s=rule.hold_s,
        label=_rule_label(rule),
        code=rule.code,
    )


def _rule_label(rule: ThresholdRule) -> str:
    limits = [f"> {rule.high:g}"] if rule.high is not None else []
    limits += [f"< {rule.low:g}"] if rule.low is not None else []
    return f"{rule.device}/{rule.channel} {' or '.join(limits) or rule.category}"


def cross_subject(rule: CrossRule) -> Subject:
    """The subject of a ``[[cross_rules]]`` entry; its channel names every channel it reads."""
    channels = [clause.channel for clause in rule.all]
    channels += [clause.than for clause in rule.all if clause.than is not None]
    return Subject(
        key=f"{rule.device}/cross/{rule.category}",
        fingerprint=_fingerprint(rule),
        device=rule.device,
        channel="+".join(dict.fromkeys(channels)),
        category=rule.category,
        severity=rule.severity,
        fault_severity=rule.severity,
        hysteresis=0.0,
        hold_s=rule.hold_s,
        label=f"{rule.device}: " + " and ".join(_clause(c) for c in rule.all),
    )


def _clause(clause: Clause) -> str:
    other = clause.than if clause.than is not None else f"{clause.value:g}"
    return f"{clause.channel} {clause.op} {other}"


def multivariate_subject(rule: MultivariateRule) -> Subject:
    """The subject of a ``[[multivariate]]`` detector."""
    return Subject(
        key=f"{rule.device}/{'+'.join(rule.channels)}/{rule.category}",
        fingerprint=_fingerprint(rule),
        device=rule.device,
        channel="+".join(rule.channels),
        category=rule.category,
        severity="normal",
        fault_severity="normal",
        hysteresis=0.0,
        hold_s=0.0,
        label=f"{rule.device}/{'+'.join(rule.channels)} Hotelling T²",
    )


def channel_params(rule: ThresholdRule) -> list[float]:
    """One row of the channel kernel's parameter array (NaN switches a check off)."""
    p = [math.nan] * c.N_PARAMS
    p[c.P_WARN_HI], p[c.P_ALARM_HI], p[c.P_CRIT_HI] = (
        _num(rule.warning_high),
        _num(rule.high),
        _num(rule.critical_high),
    )
    p[c.P_WARN_LO], p[c.P_ALARM_LO], p[c.P_CRIT_LO] = (
        _num(rule.warning_low),
        _num(rule.low),
        _num(rule.critical_low),
    )
    p[c.P_HYST], p[c.P_HOLD], p[c.P_CLEAR_HOLD] = rule.hysteresis, rule.hold_s, rule.clear_hold_s
    health = rule.health
    p[c.P_PHYS_MIN] = _num(health.min) if health else math.nan
    p[c.P_PHYS_MAX] = _num(health.max) if health else math.nan
    p[c.P_STUCK_S] = health.stuck_s if health else 0.0
    p[c.P_STUCK_TOL] = health.stuck_tolerance if health else 0.0
    p[c.P_MISSING_S] = health.missing_s if health else 0.0
    window = rule.window
    p[c.P_BUCKET_S] = window.bucket_s if window else 0.0
    p[c.P_WIN_HI] = _num(window.high) if window else math.nan
    p[c.P_WIN_HYST] = window.hysteresis if window else 0.0
    p[c.P_DAY_LIMIT] = _num(window.daily_limit) if window else math.nan
    p[c.P_DAY_MAX] = window.daily_max if window else 0.0
    p[c.P_MIN_SAMPLES] = window.min_samples if window else 1.0
    rate = rule.rate
    p[c.P_RATE_RISE] = _num(rate.rise_per_min) if rate else math.nan
    p[c.P_RATE_FALL] = _num(rate.fall_per_min) if rate else math.nan
    p[c.P_RATE_SPAN] = rate.span_s if rate else 60.0
    return p


def rule_columns(
    by_channel: Mapping[tuple[str, str], Sequence[int]], device: str, channels: Sequence[str]
) -> tuple[list[int], list[int]]:
    """For a batch of ``device`` with these ``channels``: each rule on them and its column.

    ``by_channel`` lists the rule indices watching each (device, channel).
    """
    rules: list[int] = []
    columns: list[int] = []
    for column, channel in enumerate(channels):
        for rule in by_channel.get((device, channel), ()):
            rules.append(rule)
            columns.append(column)
    return rules, columns
