"""Shared conventions of the metrics: calendar periods in UTC, half-open windows, optional grouping.

Every metric reads time the same way so that numbers from different functions add up:

- a window ``[start, end)`` includes ``start`` and excludes ``end``; a ``date`` bound means
  midnight UTC of that day, a naive ``datetime`` is taken as UTC;
- ``as_of`` is the last *day* whose events count (``occurred_at < as_of + 1 day``), so a period is
  *complete* when its last day is on or before ``as_of``;
- a period is labelled by its first day (a ``date``): ``2024-04-01`` is April 2024, Q2 2024 or,
  for years, never (years start in January).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

import polars as pl

Period = Literal["month", "quarter", "year"]
PERIOD_MONTHS: dict[str, int] = {"month": 1, "quarter": 3, "year": 12}
_TRUNCATE = {"month": "1mo", "quarter": "1q", "year": "1y"}
UTC = dt.UTC
ONE_DAY = dt.timedelta(days=1)


def check_period(period: str) -> int:
    """Months in `period`; a typo fails loudly rather than silently meaning 'month'."""
    try:
        return PERIOD_MONTHS[period]
    except KeyError:
        raise ValueError(f"period must be one of {sorted(PERIOD_MONTHS)}, not {period!r}") from None


def to_utc(value: dt.date | dt.datetime) -> dt.datetime:
    """A window bound as an aware UTC datetime (dates are midnight UTC, naive datetimes are UTC)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)


def as_of_end(as_of: dt.date) -> dt.datetime:
    """The exclusive upper bound of everything known on `as_of`: the next midnight UTC."""
    return to_utc(as_of) + ONE_DAY


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months, clipped to the month's last day (31 Jan + 1 month = 29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    first_next = dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return dt.date(year, month + 1, min(day.day, (first_next - ONE_DAY).day))


def period_start(day: dt.date, period: Period) -> dt.date:
    """First day of the calendar period containing `day`."""
    months = check_period(period)
    return dt.date(day.year, (day.month - 1) // months * months + 1, 1)


def next_period(start: dt.date, period: Period) -> dt.date:
    return add_months(start, check_period(period))


def period_grid(first: dt.date, last: dt.date, period: Period) -> list[dt.date]:
    """Starts of all periods from the one containing `first` to the one containing `last`."""
    out: list[dt.date] = []
    current, stop = period_start(first, period), period_start(last, period)
    while current <= stop:
        out.append(current)
        current = next_period(current, period)
    return out


def last_complete_period(as_of: dt.date, period: Period) -> dt.date:
    """Start of the latest period whose last day is on or before `as_of`."""
    current = period_start(as_of, period)
    if next_period(current, period) - ONE_DAY <= as_of:
        return current
    return add_months(current, -check_period(period))


def period_expr(column: str, period: Period) -> pl.Expr:
    """The start date of the UTC calendar period of a datetime column."""
    check_period(period)
    return pl.col(column).dt.truncate(_TRUNCATE[period]).dt.date()


def period_index_expr(column: str, period: Period) -> pl.Expr:
    """Consecutive integers for consecutive periods of a date column (month index / months)."""
    months = check_period(period)
    return (pl.col(column).dt.year().cast(pl.Int64) * 12 + pl.col(column).dt.month().cast(pl.Int64) - 1) // months


def period_index(day: dt.date, period: Period) -> int:
    months = check_period(period)
    return (day.year * 12 + day.month - 1) // months


def utc_times(frame: pl.DataFrame, column: str = "occurred_at") -> pl.DataFrame:
    """`frame` with `column` as Datetime(us, UTC): tolerates naive or other-zone inputs."""
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Datetime):
        return frame.with_columns(pl.col(column).cast(pl.Datetime("us", "UTC")))
    if dtype.time_zone is None:
        return frame.with_columns(pl.col(column).dt.replace_time_zone("UTC"))
    if dtype.time_zone != "UTC":
        return frame.with_columns(pl.col(column).dt.convert_time_zone("UTC"))
    return frame


def in_window(frame: pl.DataFrame, start: dt.date | dt.datetime | None, end: dt.date | dt.datetime | None,
              column: str = "occurred_at") -> pl.DataFrame:
    """Rows of `frame` with `start <= column < end` (either bound may be open)."""
    frame = utc_times(frame, column)
    if start is not None:
        frame = frame.filter(pl.col(column) >= to_utc(start))
    if end is not None:
        frame = frame.filter(pl.col(column) < to_utc(end))
    return frame


def group_columns(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def attach(frame: pl.DataFrame, by: list[str], organizations: pl.DataFrame | None = None,
           people: pl.DataFrame | None = None) -> pl.DataFrame:
    """Add the grouping columns `by` that `frame` lacks, from `organizations` (joined on ``org``)
    or `people` (joined on ``participant``); a column found in neither is a ValueError.

    Rows whose org/participant is unknown keep a null group value rather than disappearing, so
    grouped totals still add up to the overall figure.
    """
    missing = [c for c in by if c not in frame.columns]
    org_cols = [c for c in missing if organizations is not None and c in organizations.columns and c != "org"]
    people_cols = [c for c in missing if c not in org_cols and people is not None and c in people.columns
                   and c not in ("participant", "org")]
    unknown = [c for c in missing if c not in org_cols and c not in people_cols]
    if unknown:
        raise ValueError(f"cannot group by {unknown}: not a column of the frame, organizations or people")
    if org_cols:
        assert organizations is not None
        frame = frame.join(organizations.select(["org", *org_cols]).unique("org", keep="first"),
                           on="org", how="left")
    if people_cols:
        assert people is not None
        frame = frame.join(people.select(["participant", *people_cols]).unique("participant", keep="first"),
                           on="participant", how="left")
    return frame


def ratio(numerator: str | pl.Expr, denominator: str | pl.Expr) -> pl.Expr:
    """numerator / denominator as Float64, null (not NaN or inf) when the denominator is 0."""
    num = pl.col(numerator) if isinstance(numerator, str) else numerator
    den = pl.col(denominator) if isinstance(denominator, str) else denominator
    return pl.when(den != 0).then(num.cast(pl.Float64) / den.cast(pl.Float64)).otherwise(None)


def net_revenue(orders: pl.DataFrame, returns: pl.DataFrame | None, keys: list[str]) -> pl.DataFrame:
    """Revenue per `keys` (which must include ``org``): orders minus returns booked under the same
    keys, clipped at 0 per row, so a return larger than the period's sales cannot make an
    organization's revenue negative. Columns: *keys, revenue_minor (Int64)."""
    sales = orders.group_by(keys).agg(pl.col("amount_minor").sum().cast(pl.Int64).alias("sales"))
    if returns is None or returns.height == 0:
        return sales.select([*keys, pl.col("sales").alias("revenue_minor")])
    back = returns.group_by(keys).agg(pl.col("amount_minor").sum().cast(pl.Int64).alias("back"))
    both = sales.join(back, on=keys, how="full", coalesce=True)
    return both.select([
        *keys,
        pl.max_horizontal(pl.col("sales").fill_null(0) - pl.col("back").fill_null(0), pl.lit(0, pl.Int64))
        .cast(pl.Int64).alias("revenue_minor"),
    ])


def default_as_of(*frames: pl.DataFrame | None) -> dt.date | None:
    """The last day with any event: the natural 'as of' of a history nobody passed a date for."""
    latest: dt.date | None = None
    for frame in frames:
        if frame is None or frame.height == 0:
            continue
        value = utc_times(frame)["occurred_at"].max()
        if isinstance(value, dt.datetime):
            day = value.date()
            latest = day if latest is None or day > latest else latest
    return latest
