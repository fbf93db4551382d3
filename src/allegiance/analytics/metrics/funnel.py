"""Program participation funnel: enrolled -> active -> redeeming, overall, per organization, per role.

The funnel is about people (participants), because a loyalty program is joined, used and
redeemed by people even when the customer is a company. Each stage is a subset of the one
before it, so counts never increase down the funnel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from ._common import as_of_end, in_window, ratio

STAGES = ("enrolled", "active", "redeeming")


@dataclass(frozen=True)
class ParticipationFunnel:
    """The funnel at `as_of` over the trailing `window_days` days.

    Each frame has the stage counts enrolled, active, redeeming (Int64) and the rates
    active_rate = active / enrolled, redeeming_rate = redeeming / enrolled and
    redeeming_of_active = redeeming / active (Float64, null when the denominator is 0).
    ``overall`` is one row; ``by_org`` has the leading columns org, segment; ``by_role`` has role.
    """

    as_of: dt.date
    window_days: int
    overall: pl.DataFrame
    by_org: pl.DataFrame
    by_role: pl.DataFrame


def _participants(frame: pl.DataFrame | None, start: dt.datetime, end: dt.datetime,
                  kind: str | None = None) -> pl.DataFrame:
    if frame is None or frame.height == 0:
        return pl.DataFrame(schema={"participant": pl.String()})
    rows = in_window(frame, start, end)
    if kind is not None:
        rows = rows.filter(pl.col("kind") == kind)
    return rows.filter(pl.col("participant").is_not_null()).select("participant").unique()


def participation_funnel(organizations: pl.DataFrame, people: pl.DataFrame, program: pl.DataFrame,
                         activity: pl.DataFrame, as_of: dt.date, window_days: int = 90, *,
                         orders: pl.DataFrame | None = None) -> ParticipationFunnel:
    """Who is enrolled in the program, who used it lately, who redeemed lately.

    - enrolled: a person of ``people`` still there at the end of `as_of` (left_on null and status
      not "left", or left_on after `as_of`) whose organization has not left by then either
      (organizations.left_on null or after `as_of`). ``people`` has no join date, so everyone
      listed counts as enrolled from the start.
    - active: enrolled and with any ``program`` movement (earned or redeemed) or any ``activity``
      event (and, if `orders` is given, any order) of their own in the window
      ``[as_of + 1 day - window_days, as_of + 1 day)``; events without a participant belong to the
      organization, not to a person, and make nobody active.
    - redeeming: enrolled and with a ``program`` movement of kind "redeemed" in the window. A
      redemption is a program movement, so every redeemer is active: the funnel is monotone.
    """
    if window_days < 1:
        raise ValueError("window_days must be >= 1")
    end = as_of_end(as_of)
    start = end - dt.timedelta(days=window_days)
    gone_orgs = organizations.filter(pl.col("left_on").is_not_null() & (pl.col("left_on") <= as_of)).select("org")
    enrolled = people.filter(
        (pl.col("left_on").is_null() & (pl.col("status").fill_null("active") != "left"))
        | (pl.col("left_on") > as_of)
    ).join(gone_orgs, on="org", how="anti").unique("participant", keep="first")
    active_ids = pl.concat([
        _participants(program, start, end), _participants(activity, start, end), _participants(orders, start, end),
    ]).unique()
    redeeming_ids = _participants(program, start, end, kind="redeemed")
    flags = enrolled.select("participant", "org", "role").with_columns(
        pl.col("participant").is_in(active_ids["participant"].implode()).alias("is_active"),
        pl.col("participant").is_in(redeeming_ids["participant"].implode()).alias("is_redeeming"),
    ).join(organizations.select("org", "segment").unique("org", keep="first"), on="org", how="left")
    aggs = [
        pl.len().cast(pl.Int64).alias("enrolled"),
        pl.col("is_active").sum().cast(pl.Int64).alias("active"),
        pl.col("is_redeeming").sum().cast(pl.Int64).alias("redeeming"),
    ]

    def rates(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(ratio("active", "enrolled").alias("active_rate"),
                                  ratio("redeeming", "enrolled").alias("redeeming_rate"),
                                  ratio("redeeming", "active").alias("redeeming_of_active"))

    return ParticipationFunnel(
        as_of=as_of,
        window_days=window_days,
        overall=rates(flags.select(aggs)),
        by_org=rates(flags.group_by("org", "segment").agg(aggs).sort("org")),
        by_role=rates(flags.group_by("role").agg(aggs).sort("role", nulls_last=True)),
    )


__all__ = ["STAGES", "ParticipationFunnel", "participation_funnel"]
