"""Published timestamps: the fast formatter says exactly what datetime says."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.timestamps import iso_utc


def _by_datetime(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@given(st.floats(min_value=-2.0e9, max_value=4.1e9, allow_nan=False))
def test_any_time_reads_as_datetime_formats_it(ts: float) -> None:
    assert iso_utc(ts) == _by_datetime(ts)


@given(
    st.integers(min_value=0, max_value=4_000_000_000), st.sampled_from([0.0, 0.0004995, 0.9995, 0.9999995])
)
def test_edges_of_a_second_and_a_millisecond(second: int, fraction: float) -> None:
    assert iso_utc(second + fraction) == _by_datetime(second + fraction)
    assert iso_utc(second - fraction) == _by_datetime(second - fraction)


def test_a_known_moment() -> None:
    assert iso_utc(1_795_860_000.123) == "2026-11-28T10:00:00.123Z"
