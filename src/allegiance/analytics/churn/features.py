"""Per-organization churn features as of a cutoff date, computed from the analytics frames.

Why these features: a B2B customer rarely cancels; it drifts. The drift shows first in what the
account team can see before revenue falls: fewer and smaller orders, fewer trainings and program
movements, falling NPS, more complaints, price objections and quotes lost to a competitor, and
the departure of the owner or purchasing manager who championed the supplier. Every feature is
computed from events strictly before ``cutoff`` (00:00 UTC of the cutoff date), so the same
function builds training rows at past cutoffs and scoring rows today without leaking the future.

Windows: "last 90 days" is [cutoff - 90 d, cutoff), "prior 90 days" is [cutoff - 180 d, cutoff - 90 d).

Every feature has a human-readable label and a family (`FEATURES`); the churn model turns its
per-feature contributions into reasons ("NPS fell from 9.0 to 4.0") and the family picks an
intervention. The population is one row per organization of the chosen kinds that had joined by
the cutoff and had not left before it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from allegiance.analytics.frames import RESPONSE_TYPES, Frames

DAY = dt.timedelta(days=1)
CAP_DAYS = 730  # "days since" features saturate at two years
KEY_ROLES = ("owner", "purchasing_manager")
COMPLAINT_TYPES = ("complaint.opened",)
COMPETITOR_TYPES = ("price.objection", "quote.lost")
PAYMENT_TYPES = ("invoice.paid",)
# Activity that is neither a payment, a signal of trouble, a survey answer nor a departure counts
# as engagement (trainings, contracts, recycling, anything an operator adds).
NOT_ENGAGEMENT = frozenset({*COMPLAINT_TYPES, *COMPETITOR_TYPES, *PAYMENT_TYPES, *RESPONSE_TYPES,
                            "participant.left"})
SEGMENTS = ("enterprise", "mid-market", "small-business", "public-sector", "education")


@dataclass(frozen=True, slots=True)
class Feature:
    """A feature's meaning: the label reasons are written with, and the family of churn driver."""

    name: str
    label: str
    family: str


def _f(name: str, label: str, family: str) -> Feature:
    return Feature(name, label, family)


# In model-matrix order. Families: usage, engagement, satisfaction, complaints, champion_left,
# competitor_price, payments, returns, profile.
FEATURES: tuple[Feature, ...] = (
    _f("recency_days", "days since the last order", "usage"),
    _f("orders_90d", "orders in the last 90 days", "usage"),
    _f("orders_prior_90d", "orders in the prior 90 days", "usage"),
    _f("order_trend", "order frequency trend (log ratio, last 90 d vs prior 90 d)", "usage"),
    _f("spend_90d", "spend in the last 90 days (major units)", "usage"),
    _f("spend_prior_90d", "spend in the prior 90 days (major units)", "usage"),
    _f("spend_trend", "spend trend (log ratio, last 90 d vs prior 90 d)", "usage"),
    _f("spend_365d", "spend in the last 12 months (major units)", "usage"),
    _f("return_rate_180d", "returned share of order value in the last 180 days", "returns"),
    _f("complaints_90d", "complaints in the last 90 days", "complaints"),
    _f("complaints_prior_90d", "complaints in the prior 90 days", "complaints"),
    _f("complaints_trend", "complaint trend (last 90 d minus prior 90 d)", "complaints"),
    _f("nps_latest", "latest NPS answer", "satisfaction"),
    _f("nps_recent", "mean NPS of the last 120 days", "satisfaction"),
    _f("nps_baseline", "mean NPS before the last 120 days", "satisfaction"),
    _f("nps_trend", "NPS trend (recent mean minus earlier mean)", "satisfaction"),
    _f("competitor_90d", "price objections and quotes lost to competitors in the last 90 days",
       "competitor_price"),
    _f("competitor_prior_90d", "price objections and lost quotes in the prior 90 days", "competitor_price"),
    _f("competitor_trend", "competitor-pressure trend (last 90 d minus prior 90 d)", "competitor_price"),
    _f("engagement_90d", "trainings, contracts and other engagement events in the last 90 days", "engagement"),
    _f("engagement_trend", "engagement trend (log ratio, last 90 d vs prior 90 d)", "engagement"),
    _f("program_movements_90d", "loyalty-program movements (earned or redeemed) in the last 90 days",
       "engagement"),
    _f("program_earned_90d", "points earned in the last 90 days", "engagement"),
    _f("program_redeemed_90d", "points redeemed in the last 90 days", "engagement"),
    _f("program_trend", "points-earned trend (log ratio, last 90 d vs prior 90 d)", "engagement"),
    _f("roles_engaged_180d", "distinct roles that acted in the last 180 days", "engagement"),
    _f("paid_ratio", "invoices paid per order due (last 180 days)", "payments"),
    _f("people_left_180d", "people who left in the last 180 days", "champion_left"),
    _f("key_person_left_180d", "owner or purchasing manager left in the last 180 days", "champion_left"),
    _f("days_since_key_person_left", "days since an owner or purchasing manager left", "champion_left"),
    _f("headcount", "people at the organization", "profile"),
    _f("tenure_days", "days since the organization joined", "profile"),
    *(_f(f"segment_{s}", f"segment is {s}", "profile") for s in SEGMENTS),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def population(organizations: pl.DataFrame, cutoff: dt.date,
               kinds: tuple[str, ...] | None = ("customer",)) -> pl.DataFrame:
    """Organizations at risk at `cutoff`: of `kinds` (None = all), joined by then, not yet left.

    Expects the ``organizations`` frame; returns org, segment, joined_on, left_on.
    """
    orgs = organizations
    if kinds is not None:
        orgs = orgs.filter(pl.col("kind").is_in(list(kinds)))
    return orgs.filter(
        (pl.col("joined_on").is_null() | (pl.col("joined_on") <= cutoff))
        & (pl.col("left_on").is_null() | (pl.col("left_on") >= cutoff))
    ).select("org", "segment", "joined_on", "left_on").unique("org", keep="first", maintain_order=True)


def _log_ratio(recent: str, prior: str) -> pl.Expr:
    return ((pl.col(recent) + 1.0) / (pl.col(prior) + 1.0)).log()


def churn_features(frames: Frames, cutoff: dt.date, *,
                   kinds: tuple[str, ...] | None = ("customer",)) -> pl.DataFrame:
    """One row per organization at risk at `cutoff`, with every feature of `FEATURES`.

    Reads the frames declared in `allegiance.analytics.frames` (orders, returns, activity,
    responses, people, program, organizations); uses only events before 00:00 UTC of `cutoff`.
    Returns org (str), cutoff (date), segment (str|null), then the `FEATURE_NAMES` columns as
    Float64. Counts and amounts without events are 0; NPS features are null when the organization
    never answered (nps_trend when either side of it is missing), paid_ratio when no order was
    due. Vectorized: one group-by per frame, no per-organization Python.
    """
    c = _midnight(cutoff)
    d90, d120, d180, d365 = c - 90 * DAY, c - 120 * DAY, c - 180 * DAY, c - 365 * DAY
    base = population(frames.organizations, cutoff, kinds)
    at = pl.col("occurred_at")

    orders = frames.orders.lazy().filter(at < c).group_by("org").agg(
        last_order=at.max(),
        orders_90d=(at >= d90).sum(),
        orders_prior_90d=((at >= d180) & (at < d90)).sum(),
        spend_90d=pl.col("amount_minor").filter(at >= d90).sum(),
        spend_prior_90d=pl.col("amount_minor").filter((at >= d180) & (at < d90)).sum(),
        spend_180d=pl.col("amount_minor").filter(at >= d180).sum(),
        spend_365d=pl.col("amount_minor").filter(at >= d365).sum(),
        orders_due=((at >= c - 210 * DAY) & (at < c - 30 * DAY)).sum(),
    )
    returns = frames.returns.lazy().filter((at < c) & (at >= d180)).group_by("org").agg(
        returned_180d=pl.col("amount_minor").sum())

    typ = pl.col("type")
    recent, prior = at >= d90, (at >= d180) & (at < d90)
    engaged = ~typ.is_in(list(NOT_ENGAGEMENT))
    complaint, rival = typ.is_in(list(COMPLAINT_TYPES)), typ.is_in(list(COMPETITOR_TYPES))
    activity = frames.activity.lazy().filter((at < c) & (at >= d180)).group_by("org").agg(
        complaints_90d=(complaint & recent).sum(),
        complaints_prior_90d=(complaint & prior).sum(),
        competitor_90d=(rival & recent).sum(),
        competitor_prior_90d=(rival & prior).sum(),
        engagement_90d=(engaged & recent).sum(),
        engagement_prior_90d=(engaged & prior).sum(),
        invoices_paid=(typ.is_in(list(PAYMENT_TYPES))).sum(),
    )

    score = pl.col("score").cast(pl.Float64)
    responses = frames.responses.lazy().filter(at < c).sort("occurred_at").group_by("org").agg(
        nps_latest=score.last(),
        nps_recent=score.filter(at >= d120).mean(),
        nps_baseline=score.filter(at < d120).mean(),
    )

    amount, kind = pl.col("amount"), pl.col("kind")
    program = frames.program.lazy().filter((at < c) & (at >= d180)).group_by("org").agg(
        program_movements_90d=recent.sum(),
        program_earned_90d=amount.filter(recent & (kind == "earned")).sum(),
        program_earned_prior_90d=amount.filter(prior & (kind == "earned")).sum(),
        program_redeemed_90d=amount.filter(recent & (kind == "redeemed")).sum(),
    )

    people = frames.people.lazy()
    left = pl.col("left_on")
    key = pl.col("role").is_in(list(KEY_ROLES))
    gone = left.is_not_null() & (left < cutoff)
    staff = people.group_by("org").agg(
        headcount=(~gone).sum(),
        people_left_180d=(gone & (left >= cutoff - 180 * DAY)).sum(),
        key_person_left_180d=(gone & key & (left >= cutoff - 180 * DAY)).any(),
        last_key_left=left.filter(gone & key).max(),
    )
    role_of = people.select("participant", "role")
    acted = pl.concat([
        frames.orders.lazy().select("participant", "occurred_at"),
        frames.activity.lazy().select("participant", "occurred_at"),
        frames.program.lazy().select("participant", "occurred_at"),
    ]).filter((at < c) & (at >= d180) & pl.col("participant").is_not_null())
    roles = acted.select("participant").unique().join(role_of, on="participant", how="inner").join(
        people.select("participant", "org"), on="participant", how="inner",
    ).group_by("org").agg(roles_engaged_180d=pl.col("role").n_unique())

    zero_fill = ["orders_90d", "orders_prior_90d", "spend_90d", "spend_prior_90d", "spend_180d", "spend_365d",
                 "orders_due", "returned_180d", "complaints_90d", "complaints_prior_90d", "competitor_90d",
                 "competitor_prior_90d", "engagement_90d", "engagement_prior_90d", "invoices_paid",
                 "program_movements_90d", "program_earned_90d", "program_earned_prior_90d",
                 "program_redeemed_90d", "headcount", "people_left_180d", "roles_engaged_180d"]
    joined = (
        base.lazy()
        .join(orders, on="org", how="left").join(returns, on="org", how="left")
        .join(activity, on="org", how="left").join(responses, on="org", how="left")
        .join(program, on="org", how="left").join(staff, on="org", how="left")
        .join(roles, on="org", how="left")
        .with_columns([pl.col(n).fill_null(0).cast(pl.Float64) for n in zero_fill])
        # Money in major units from here on: reasons read "spend 1,234", not "123,400".
        .with_columns([pl.col(n) / 100.0 for n in ("spend_90d", "spend_prior_90d", "spend_180d", "spend_365d",
                                                   "returned_180d")])
    )
    tenure = (pl.lit(cutoff) - pl.col("joined_on")).dt.total_days().cast(pl.Float64)
    since_order = (pl.lit(c) - pl.col("last_order")).dt.total_days().cast(pl.Float64)
    since_key = (pl.lit(cutoff) - pl.col("last_key_left")).dt.total_days().cast(pl.Float64)
    out = joined.with_columns(
        cutoff=pl.lit(cutoff),
        tenure_days=tenure.fill_null(float(CAP_DAYS)),
        recency_days=pl.min_horizontal(
            pl.coalesce(since_order, tenure, pl.lit(float(CAP_DAYS))), pl.lit(float(CAP_DAYS))),
        order_trend=_log_ratio("orders_90d", "orders_prior_90d"),
        spend_trend=_log_ratio("spend_90d", "spend_prior_90d"),
        return_rate_180d=pl.when(pl.col("spend_180d") > 0)
        .then(pl.min_horizontal(pl.col("returned_180d") / pl.col("spend_180d"), pl.lit(1.0)))
        .otherwise(0.0),
        complaints_trend=pl.col("complaints_90d") - pl.col("complaints_prior_90d"),
        nps_trend=pl.col("nps_recent") - pl.col("nps_baseline"),
        competitor_trend=pl.col("competitor_90d") - pl.col("competitor_prior_90d"),
        engagement_trend=_log_ratio("engagement_90d", "engagement_prior_90d"),
        program_trend=_log_ratio("program_earned_90d", "program_earned_prior_90d"),
        paid_ratio=pl.when(pl.col("orders_due") > 0)
        .then(pl.min_horizontal(pl.col("invoices_paid") / pl.col("orders_due"), pl.lit(1.5))),
        key_person_left_180d=pl.col("key_person_left_180d").fill_null(False).cast(pl.Float64),
        days_since_key_person_left=pl.min_horizontal(since_key.fill_null(float(CAP_DAYS)), pl.lit(float(CAP_DAYS))),
        **{f"segment_{s}": (pl.col("segment") == s).fill_null(False).cast(pl.Float64) for s in SEGMENTS},
    )
    return out.select(
        "org", "cutoff", "segment", *[pl.col(n).cast(pl.Float64) for n in FEATURE_NAMES],
    ).sort("org").collect()


def feature_matrix(features: pl.DataFrame) -> NDArray[np.float64]:
    """The model matrix of a `churn_features` frame: float64, columns in `FEATURE_NAMES` order, NaN = missing."""
    return features.select(FEATURE_NAMES).to_numpy().astype(np.float64)
