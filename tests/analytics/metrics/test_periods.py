from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.analytics.metrics._common import (
    Period,
    add_months,
    last_complete_period,
    next_period,
    period_expr,
    period_grid,
    period_index,
    period_start,
    to_utc,
    utc_times,
)

_periods = st.sampled_from(["month", "quarter", "year"])


def test_calendar_helpers_by_hand() -> None:
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2024, 3, 15), -15) == dt.date(2022, 12, 15)
    assert period_start(dt.date(2024, 8, 31), "quarter") == dt.date(2024, 7, 1)
    assert period_grid(dt.date(2024, 2, 10), dt.date(2024, 8, 1), "quarter") == [
        dt.date(2024, 1, 1), dt.date(2024, 4, 1), dt.date(2024, 7, 1)]
    assert last_complete_period(dt.date(2024, 6, 30), "quarter") == dt.date(2024, 4, 1)
    assert last_complete_period(dt.date(2024, 6, 29), "quarter") == dt.date(2024, 1, 1)
    assert last_complete_period(dt.date(2024, 12, 31), "year") == dt.date(2024, 1, 1)
    assert to_utc(dt.datetime(2024, 1, 1, 3, tzinfo=dt.timezone(dt.timedelta(hours=3)))) == to_utc(dt.date(2024, 1, 1))
    with pytest.raises(ValueError, match="period"):
        period_start(dt.date(2024, 1, 1), "week")  # type: ignore[arg-type]


def test_period_of_a_timestamp_is_taken_in_utc() -> None:
    # 00:30 on 1 April in Berlin is still 31 March (Q1) in UTC.
    local = pl.DataFrame({"occurred_at": [dt.datetime(2024, 4, 1, 0, 30)]}).with_columns(
        pl.col("occurred_at").dt.replace_time_zone("Europe/Berlin"))
    out = utc_times(local).select(period_expr("occurred_at", "quarter").alias("q"))
    assert out["q"][0] == dt.date(2024, 1, 1)
    naive = utc_times(pl.DataFrame({"occurred_at": [dt.datetime(2024, 4, 1, 0, 30)]}))
    assert naive.select(period_expr("occurred_at", "quarter"))["occurred_at"][0] == dt.date(2024, 4, 1)


@given(day=st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31)), period=_periods)
def test_period_properties(day: dt.date, period: Period) -> None:
    start = period_start(day, period)
    after = next_period(start, period)
    assert start <= day < after
    assert period_index(after, period) == period_index(start, period) + 1
    done = last_complete_period(day, period)
    assert next_period(done, period) - dt.timedelta(days=1) <= day
    assert next_period(next_period(done, period), period) - dt.timedelta(days=1) > day
    frame = pl.DataFrame({"occurred_at": [to_utc(day)]})
    assert frame.select(period_expr("occurred_at", period))["occurred_at"][0] == start
