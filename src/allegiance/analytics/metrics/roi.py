"""Program ROI: incremental margin of participating organizations against comparable ones.

A naive "participants spend more" comparison credits the program with what is mostly selection
(big, loyal customers join loyalty programs). This compares *changes* in spend (difference in
differences) between participants and non-participants of the same segment and the same band of
pre-period spend, so a stratum's common trend (seasonality, price rises, a segment's boom)
cancels out and only the participants' extra change is credited to the program.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

import polars as pl

from ._common import in_window, to_utc

RoiStatus = Literal["ok", "no_participants", "not_enough_comparables"]
Window = tuple[dt.date | dt.datetime, dt.date | dt.datetime]


@dataclass(frozen=True)
class ProgramROI:
    """Result of `program_roi`; money in minor units (floats: they are averages times counts).

    With status other than "ok" the incremental figures, net_benefit_minor and roi are None and
    `message` says why; the counts and `strata` are still filled so the operator can see what
    was missing.
    """

    status: RoiStatus
    message: str
    incremental_revenue_minor: float | None
    incremental_margin_minor: float | None
    cost_minor: int
    liability_minor: int
    net_benefit_minor: float | None
    roi: float | None
    matched_participants: int
    matched_controls: int
    unmatched_participants: int
    participants_without_pre_spend: int
    strata: pl.DataFrame


def _participant_ids(participating: pl.DataFrame | Iterable[str]) -> pl.DataFrame:
    if isinstance(participating, pl.DataFrame):
        ids = participating.select(pl.col("org").cast(pl.String))
    else:
        ids = pl.DataFrame({"org": list(participating)}, schema={"org": pl.String()})
    return ids.drop_nulls().unique()


def _spend(orders: pl.DataFrame, returns: pl.DataFrame | None, window: Window, name: str) -> pl.DataFrame:
    sales = in_window(orders, *window).group_by("org").agg(pl.col("amount_minor").sum().alias("s"))
    if returns is not None and returns.height:
        back = in_window(returns, *window).group_by("org").agg(pl.col("amount_minor").sum().alias("b"))
        sales = sales.join(back, on="org", how="full", coalesce=True)
    else:
        sales = sales.with_columns(pl.lit(0, pl.Int64).alias("b"))
    return sales.select("org", (pl.col("s").fill_null(0) - pl.col("b").fill_null(0)).cast(pl.Int64).alias(name))


def _days(window: Window) -> float:
    start, end = to_utc(window[0]), to_utc(window[1])
    if end <= start:
        raise ValueError("a window must end after it starts")
    return (end - start).total_seconds() / 86_400


def program_roi(orders: pl.DataFrame, returns: pl.DataFrame | None, organizations: pl.DataFrame,
                participating: pl.DataFrame | Iterable[str], *, cost_minor: int, liability_minor: int,
                margin: float, period_before: Window, period_after: Window, bands: int = 4,
                min_controls: int = 1, kinds: Collection[str] | None = None) -> ProgramROI:
    """Return on the program over `period_after`, by stratified difference in differences.

    Inputs: ``orders`` and ``returns`` (net spend of a window = orders - returns booked in it, not
    clipped: differences are linear), ``organizations`` (org, segment, kind), `participating`
    (any frame with an ``org`` column, e.g. the ``program`` ledger frame, or an iterable of org
    ids), the program's `cost_minor` and outstanding points `liability_minor` for the after
    period, the gross `margin` share (0..1), and the two half-open windows.

    1. Universe: organizations (of `kinds`, if given) with net spend > 0 in `period_before`;
       participants without pre-period spend cannot be matched and are only counted.
    2. Strata: segment (null = its own stratum) x spend band, the bands being `bands` quantile
       bands of pre-period spend over the whole universe (ties share a band).
    3. Per organization: delta = after - before * (days after / days before), i.e. the change in
       spend with the pre period rescaled to the after period's length.
    4. Per stratum with >= 1 participant and >= `min_controls` non-participants:
       effect = mean(delta | participants) - mean(delta | controls); incremental revenue =
       sum over those strata of participants x effect (the effect on the treated).
    5. incremental margin = margin x incremental revenue; net benefit = incremental margin -
       cost - liability; ROI = net benefit / (cost + liability) (None when both are 0).

    Status "not_enough_comparables" when no stratum has both participants and enough controls,
    "no_participants" when no participant has pre-period spend. ``strata`` has one row per
    stratum: segment, band, participants, controls, mean_delta_participants,
    mean_delta_controls, effect_minor (null where unmatched), matched (Boolean).
    """
    if not 0 <= margin <= 1:
        raise ValueError("margin must be a share in [0, 1]")
    if bands < 1 or min_controls < 1:
        raise ValueError("bands and min_controls must be >= 1")
    scale = _days(period_after) / _days(period_before)
    orgs = organizations if kinds is None else organizations.filter(pl.col("kind").is_in(list(kinds)))
    ids = _participant_ids(participating)
    universe = orgs.select("org", "segment").unique("org", keep="first")
    universe = universe.join(_spend(orders, returns, period_before, "before"), on="org", how="left").join(
        _spend(orders, returns, period_after, "after"), on="org", how="left").with_columns(
        pl.col("before").fill_null(0), pl.col("after").fill_null(0),
        pl.col("org").is_in(ids["org"].implode()).alias("participant"))
    no_pre = int(universe.filter(pl.col("participant") & (pl.col("before") <= 0)).height)
    universe = universe.filter(pl.col("before") > 0)
    n = universe.height
    universe = universe.with_columns(
        ((pl.col("before").rank("min").cast(pl.Int64) - 1) * bands // max(n, 1)).alias("band"),
        (pl.col("after") - pl.col("before") * scale).alias("delta"),
    )
    strata = universe.group_by("segment", "band").agg(
        pl.col("participant").sum().cast(pl.Int64).alias("participants"),
        (~pl.col("participant")).sum().cast(pl.Int64).alias("controls"),
        pl.col("delta").filter(pl.col("participant")).mean().alias("mean_delta_participants"),
        pl.col("delta").filter(~pl.col("participant")).mean().alias("mean_delta_controls"),
    ).with_columns(((pl.col("participants") >= 1) & (pl.col("controls") >= min_controls)).alias("matched"))
    strata = strata.with_columns(
        pl.when(pl.col("matched")).then(pl.col("mean_delta_participants") - pl.col("mean_delta_controls"))
        .otherwise(None).alias("effect_minor"),
    ).sort("segment", "band", nulls_last=True)
    matched = strata.filter(pl.col("matched"))
    participants = int(strata["participants"].sum())
    matched_participants = int(matched["participants"].sum())
    matched_controls = int(matched["controls"].sum())
    spent = cost_minor + liability_minor

    def result(status: RoiStatus, message: str, incremental: float | None) -> ProgramROI:
        inc_margin = None if incremental is None else margin * incremental
        net = None if inc_margin is None else inc_margin - spent
        return ProgramROI(
            status=status, message=message, incremental_revenue_minor=incremental,
            incremental_margin_minor=inc_margin, cost_minor=cost_minor, liability_minor=liability_minor,
            net_benefit_minor=net, roi=None if net is None or not spent else net / spent,
            matched_participants=matched_participants, matched_controls=matched_controls,
            unmatched_participants=participants - matched_participants, participants_without_pre_spend=no_pre,
            strata=strata)

    if participants == 0:
        return result("no_participants", "no participating organization bought in the pre period, so none "
                      "can be compared", None)
    if matched.height == 0:
        return result("not_enough_comparables", "not enough comparable organizations: no segment x spend band "
                      f"stratum holds a participant and at least {min_controls} non-participating "
                      "organization(s)", None)
    incremental = float((matched["participants"].cast(pl.Float64) * matched["effect_minor"]).sum())
    return result("ok", f"{matched_participants} participants matched against {matched_controls} comparable "
                  f"organizations in {matched.height} strata", incremental)


__all__ = ["ProgramROI", "RoiStatus", "program_roi"]
