"""RFM summary: hand-computed small cases (same-day purchases, one-time buyers, weeks, the
observation end, the calibration/holdout split)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from allegiance.analytics.clv.summary import calibration_and_holdout, purchase_days, rfm_summary

UTC = dt.UTC


def orders(*rows: tuple[str, dt.datetime, int]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema={"org": pl.String(), "occurred_at": pl.Datetime("us", "UTC"),
                                            "amount_minor": pl.Int64()}, orient="row")


def at(day: int, hour: int = 12, month: int = 1) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=UTC)


EXAMPLE = orders(
    # A: first purchase day 1 (two orders that day), repeats on day 5 (two orders) and day 11.
    ("A", at(1, 9), 1000), ("A", at(1, 17), 500), ("A", at(5, 8), 200), ("A", at(5, 20), 300),
    ("A", at(11), 700),
    # B: one-time buyer (two orders, same day).
    ("B", at(3, 1), 400), ("B", at(3, 23), 100),
    # C: buys on day 2 and again after the observation end.
    ("C", at(2), 900), ("C", at(25), 50),
    # D: first purchase after the observation end: not in the summary.
    ("D", at(28), 10),
)


def test_same_day_orders_are_one_purchase_and_the_first_day_is_not_a_repeat() -> None:
    s = rfm_summary(EXAMPLE, observation_end=dt.date(2024, 1, 21))
    assert s["org"].to_list() == ["A", "B", "C"]
    a, b, c = s.rows(named=True)
    # A: purchase days 1, 5, 11 -> 2 repeats; recency 10 days; T = 21 - 1 = 20;
    # monetary = mean of the repeat days (200+300, 700) = 600.
    assert a == {"org": "A", "frequency": 2, "recency": 10.0, "T": 20.0, "monetary": 600.0}
    assert b == {"org": "B", "frequency": 0, "recency": 0.0, "T": 18.0, "monetary": 0.0}
    assert c == {"org": "C", "frequency": 0, "recency": 0.0, "T": 19.0, "monetary": 0.0}


def test_weeks_divide_days_by_seven_and_the_end_day_counts() -> None:
    s = rfm_summary(EXAMPLE, observation_end=dt.datetime(2024, 1, 25, 0, 30, tzinfo=UTC), time_unit="weeks")
    c = s.filter(pl.col("org") == "C").row(0, named=True)
    # The order at 12:00 on the end day is inside: the end is a whole UTC day.
    assert c["frequency"] == 1
    assert c["recency"] == pytest.approx(23 / 7)
    assert c["T"] == pytest.approx(23 / 7)
    assert c["monetary"] == 50.0
    a = s.filter(pl.col("org") == "A").row(0, named=True)
    assert (a["recency"], a["T"]) == (pytest.approx(10 / 7), pytest.approx(24 / 7))


def test_days_are_utc_calendar_days() -> None:
    # 23:30 in UTC-5 is the next UTC day: two purchase days, not one.
    tz = dt.timezone(dt.timedelta(hours=-5))
    frame = orders(("A", dt.datetime(2024, 1, 1, 10, tzinfo=tz), 100),
                   ("A", dt.datetime(2024, 1, 1, 23, 30, tzinfo=tz), 100))
    assert purchase_days(frame)["day"].to_list() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2)]
    assert rfm_summary(frame, observation_end=dt.date(2024, 1, 3))["frequency"].to_list() == [1]


def test_empty_history_gives_an_empty_summary() -> None:
    s = rfm_summary(EXAMPLE, observation_end=dt.date(2023, 12, 31))
    assert s.is_empty()
    assert s.columns == ["org", "frequency", "recency", "T", "monetary"]


def test_calibration_and_holdout_split() -> None:
    s = calibration_and_holdout(EXAMPLE, calibration_end=dt.date(2024, 1, 7),
                                observation_end=dt.date(2024, 1, 27))
    # D joined after the calibration end: not in the cohort.
    assert s["org"].to_list() == ["A", "B", "C"]
    a, b, c = s.rows(named=True)
    assert a == {"org": "A", "frequency_cal": 1, "recency_cal": 4.0, "T_cal": 6.0, "monetary_cal": 500.0,
                 "frequency_holdout": 1, "monetary_holdout": 700.0, "duration_holdout": 20.0}
    assert (b["frequency_cal"], b["T_cal"], b["frequency_holdout"], b["monetary_holdout"]) == (0, 4.0, 0, 0.0)
    assert (c["frequency_cal"], c["frequency_holdout"], c["monetary_holdout"]) == (0, 1, 50.0)


def test_holdout_counts_purchase_days_not_orders_and_stops_at_the_observation_end() -> None:
    frame = orders(("A", at(1), 10), ("A", at(10, 8), 10), ("A", at(10, 9), 30), ("A", at(12), 20),
                   ("A", at(20), 99))
    s = calibration_and_holdout(frame, calibration_end=dt.date(2024, 1, 5), observation_end=dt.date(2024, 1, 15),
                                time_unit="weeks").row(0, named=True)
    assert s["frequency_holdout"] == 2
    assert s["monetary_holdout"] == 30.0  # days of 40 and 20
    assert s["duration_holdout"] == pytest.approx(10 / 7)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="time_unit"):
        rfm_summary(EXAMPLE, observation_end=dt.date(2024, 2, 1), time_unit="months")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="after"):
        calibration_and_holdout(EXAMPLE, calibration_end=dt.date(2024, 2, 1), observation_end=dt.date(2024, 2, 1))
