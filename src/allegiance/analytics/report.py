"""Each analytics result as a JSON-ready document: what the snapshots store, the API returns and
the CLI and pages show.

One function per kind of result, each pure over `Frames` and the settings; `run_all` strings
them together for the nightly job. The models' own modules hold the science; this module only
chooses the windows (trailing twelve months ending on ``as_of``, training cutoffs one step apart
before it) and turns frames into records.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Literal

import polars as pl

from allegiance.analytics import distributed, distributed_clv, sql
from allegiance.analytics.churn import (
    INTERVENTIONS,
    churn_profiles,
    evaluate_churn,
    fit_churn_model,
)
from allegiance.analytics.churn.model import ClassifierMetrics
from allegiance.analytics.clv import historical_clv
from allegiance.analytics.frames import Frames
from allegiance.analytics.metrics import (
    average_order_value,
    churn_rate,
    nps,
    participation_funnel,
    program_roi,
    purchase_frequency,
    repeat_customer_rate,
    retention_gain_value,
    revenue_retention,
)
from allegiance.analytics.recommend import evaluate as evaluate_recommendations
from allegiance.analytics.recommend import recommend, upsell
from allegiance.analytics.results import KINDS, Document, NotEnoughData, ProgramMoney, RunResult, records
from allegiance.analytics.scoring import backtest_score
from allegiance.analytics.segments import FACT_SCHEMA
from allegiance.analytics.settings import AnalyticsSettings

# Fewer examples of a class than this and the calibration folds cannot each hold one of it: the
# model would be fitted on noise (and scikit-learn warns). Say so instead.
MIN_CLASS_ROWS = 10

__all__ = ["KINDS", "Document", "NotEnoughData", "ProgramMoney", "RunResult", "records"]


def _window(as_of: dt.date, days: int = 365) -> tuple[dt.date, dt.date]:
    end = as_of + dt.timedelta(days=1)
    return end - dt.timedelta(days=days), end


def _first(frame: pl.DataFrame) -> dict[str, Any] | None:
    return records(frame.head(1))[0] if frame.height else None


def _classifier(metrics: ClassifierMetrics) -> dict[str, Any]:
    out = asdict(metrics)
    out["reliability"] = [asdict(b) for b in metrics.reliability]
    return json.loads(json.dumps(out, default=str))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# -- overview: the program's vital signs ------------------------------------------------------------
def overview(frames: Frames, as_of: dt.date, settings: AnalyticsSettings, money: ProgramMoney) -> Document:
    """Trailing-twelve-month metrics and the trends the dashboard charts."""
    start, end = _window(as_of)
    orders, returns = frames.orders, frames.returns
    doc: Document = {"window": {"start": start.isoformat(), "end": end.isoformat()}}
    doc["repeat_customer_rate"] = _first(repeat_customer_rate(orders, start, end))
    doc["purchase_frequency"] = _first(purchase_frequency(orders, start, end, period=None))
    doc["average_order_value"] = _first(average_order_value(orders, start, end, returns=returns, as_of=as_of))
    doc["monthly"] = records(purchase_frequency(orders, *_window(as_of, 730), period="month"))
    retention = revenue_retention(orders, returns=returns, trailing_months=12, as_of=as_of)
    doc["revenue_retention"] = _first(retention.tail(1))
    doc["churn_by_quarter"] = records(churn_rate(orders, frames.organizations, period="quarter", as_of=as_of,
                                                 kinds=settings.kinds))
    funnel = participation_funnel(frames.organizations, frames.people, frames.program, frames.activity, as_of,
                                  orders=orders)
    doc["participation"] = {"window_days": funnel.window_days, "overall": records(funnel.overall),
                            "by_role": records(funnel.by_role)}
    doc["nps"] = _first(nps(frames.responses, start=start, end=end))
    doc["nps_by_quarter"] = records(nps(frames.responses, start=_window(as_of, 730)[0], end=end, period="quarter"))
    doc["retention_gain"] = _guarded(lambda: asdict(retention_gain_value(
        margin=settings.margin, orders=orders, returns=returns, as_of=as_of,
        discount_rate=settings.discount_rate_yearly)))
    doc["program_roi"] = _guarded(lambda: _roi(frames, as_of, settings, money))
    return dict(_clean(doc))


def _guarded(compute: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
    """A metric the data cannot support yet says why instead of failing the whole overview."""
    try:
        return dict(compute())
    except ValueError as exc:
        return {"unavailable": str(exc)}


def _roi(frames: Frames, as_of: dt.date, settings: AnalyticsSettings, money: ProgramMoney) -> dict[str, Any]:
    before = (as_of - dt.timedelta(days=729), as_of - dt.timedelta(days=364))
    after = (as_of - dt.timedelta(days=364), as_of + dt.timedelta(days=1))
    program = frames.program
    at = pl.col("occurred_at").dt.date()
    redeemed = int(program.filter((pl.col("kind") == "redeemed") & (at >= after[0]) & (at < after[1]))["amount"]
                   .sum() or 0)
    points_cost = round(redeemed * money.point_value_minor) if money.point_value_minor is not None else 0
    cost = settings.program_cost_minor_per_year + points_cost
    participating = program.filter(pl.col("kind") == "earned").select("org").unique()
    result = program_roi(frames.orders, frames.returns, frames.organizations, participating, cost_minor=cost,
                         liability_minor=money.liability_minor, margin=settings.margin, period_before=before,
                         period_after=after, kinds=settings.kinds)
    out = {k: v for k, v in asdict(result).items() if k != "strata"}
    out["redeemed_points"] = redeemed
    return out


# -- cohorts and RFM (the SQL engine) ----------------------------------------------------------------
def _orders_until(frames: Frames, as_of: dt.date) -> pl.DataFrame:
    cut = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return frames.orders.filter(pl.col("occurred_at") < cut)


def cohorts(frames: Frames, as_of: dt.date, engine: str = "duckdb") -> Document:
    table = sql.cohort_retention(_orders_until(frames, as_of), engine=engine)
    return {"engine": engine, "rows": records(table)}


def rfm(frames: Frames, as_of: dt.date, engine: str = "duckdb") -> Document:
    table = sql.rfm(_orders_until(frames, as_of), as_of, engine=engine)
    counts = table.group_by("segment").agg(organizations=pl.len(), monetary_minor=pl.col("monetary_minor").sum())
    return {"engine": engine, "rows": records(table), "segments": records(counts.sort("organizations",
                                                                                            descending=True))}


# -- lifetime value ----------------------------------------------------------------------------------
def clv(frames: Frames, as_of: dt.date, settings: AnalyticsSettings, *, engine: str = "duckdb") -> Document:
    """Forecast lifetime value per organization; on ``engine="spark"`` the RFM summary and the
    predictions run per bucket of organizations and the fits on the driver (`distributed_clv`)."""
    monthly = (1 + settings.discount_rate_yearly) ** (1 / 12) - 1
    try:
        predicted = distributed_clv.predict_clv_on(engine, frames.orders, as_of=as_of,
                                               horizon_days=settings.clv_horizon_days, model=settings.clv_model,
                                               margin=settings.margin, discount_rate=monthly)
    except ValueError as exc:
        raise NotEnoughData(f"lifetime value: {exc}") from exc
    realised = historical_clv(frames.orders, frames.returns, margin=settings.margin, until=as_of)
    params = {c.removeprefix("param_"): predicted[c][0] for c in predicted.columns
              if c.startswith("param_") and predicted[c][0] is not None}
    table = predicted.drop([c for c in predicted.columns if c.startswith("param_")]).join(
        realised.select("org", "net_minor", "historical_clv"), on="org", how="left")
    values = table["clv"].drop_nulls()
    bins = _histogram(values.to_list())
    return _clean({"model": settings.clv_model, "horizon_days": settings.clv_horizon_days, "margin": settings.margin,
                   "params": params, "converged": bool(table["converged"].all()) if table.height else None,
                   "total_clv": float(values.sum()), "distribution": bins,
                   "rows": records(table.sort("clv", descending=True, nulls_last=True))})


def _histogram(values: list[float], bins: int = 20) -> list[dict[str, float]]:
    """Equal-width bins of the (finite) values, for the CLV distribution chart."""
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return []
    low, high = finite[0], finite[-1]
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for v in finite:
        counts[min(int((v - low) / width), bins - 1)] += 1
    return [{"from": low + i * width, "to": low + (i + 1) * width, "organizations": c} for i, c in enumerate(counts)]


# -- churn -------------------------------------------------------------------------------------------
def churn_cutoffs(frames: Frames, as_of: dt.date, settings: AnalyticsSettings) -> tuple[list[dt.date], dt.date]:
    """Training cutoffs and the test cutoff of a time-split evaluation whose labels are all known
    on ``as_of``: test = as_of - horizon, training cutoffs one step apart before test - horizon."""
    horizon = dt.timedelta(days=settings.churn_horizon_days)
    test = as_of - horizon
    last_train = test - horizon
    step = dt.timedelta(days=settings.churn_cutoff_step_days)
    train = [last_train - i * step for i in range(settings.churn_training_cutoffs)][::-1]
    first_order = frames.orders["occurred_at"].min()
    if not isinstance(first_order, dt.datetime):
        raise NotEnoughData("churn: no orders yet")
    first_day = first_order.date()
    usable = [c for c in train if c > first_day + dt.timedelta(days=90)]  # a quarter of history to learn from
    if not usable:
        raise NotEnoughData(f"churn: the history from {first_day} is too short for a {settings.churn_horizon_days}-day "
                            f"horizon ending on {as_of}: it needs about {2 * settings.churn_horizon_days + 90} days")
    return usable, test


def churn_evaluation(frames: Frames, as_of: dt.date, settings: AnalyticsSettings) -> Document:
    """Time-split evaluation of the booster against logistic regression (same rows, same run)."""
    train, test = churn_cutoffs(frames, as_of, settings)
    kinds = tuple(settings.kinds)
    try:
        found = evaluate_churn(frames, train, test, settings.churn_horizon_days, rule=settings.churn_rule,
                               kinds=kinds)
    except ValueError as exc:
        raise NotEnoughData(f"churn: {exc}") from exc
    return _clean({"train_cutoffs": [c.isoformat() for c in found.train_cutoffs], "test_cutoff": test.isoformat(),
                   "horizon_days": found.horizon_days, "rule": found.rule, "model": _classifier(found.model),
                   "baseline_logistic_regression": _classifier(found.baseline)})


def churn(frames: Frames, as_of: dt.date, settings: AnalyticsSettings, value: pl.DataFrame | None = None, *,
          engine: str = "duckdb") -> Document:
    """Train on every cutoff whose label is known on ``as_of``, score ``as_of``: p(churn), the top
    reasons per organization and the profiles at-risk organizations share. On ``engine="spark"``
    the training features and the scoring run per bucket of organizations; the fit stays on the
    driver (`distributed`)."""
    train_cutoffs, test = churn_cutoffs(frames, as_of, settings)
    cutoffs = [*train_cutoffs, test]
    kinds = tuple(settings.kinds)
    try:
        train = distributed.training_set_on(engine, frames, cutoffs, settings.churn_horizon_days,
                                            rule=settings.churn_rule, kinds=kinds)
        churned = int(train["churned"].sum())
        if min(churned, train.height - churned) < MIN_CLASS_ROWS:
            raise ValueError(f"the training rows hold {churned} churned and {train.height - churned} retained "
                             f"organizations; the model needs at least {MIN_CLASS_ROWS} of each")
        model = fit_churn_model(train)
    except ValueError as exc:
        raise NotEnoughData(f"churn: {exc}") from exc
    scores = distributed.score_churn_on(engine, frames, model, as_of, kinds)
    features, scored = scores.features, scores.scored
    profiles = churn_profiles(scored, features, threshold=settings.churn_threshold, value=value)
    churn_share = train["churned"].cast(pl.Float64).mean()
    return _clean({"horizon_days": settings.churn_horizon_days, "rule": settings.churn_rule,
                   "threshold": settings.churn_threshold, "trained_on": [c.isoformat() for c in cutoffs],
                   "training_rows": train.height, "training_churn_rate": churn_share,
                   "at_risk": int((scored["p_churn"] >= settings.churn_threshold).sum()),
                   "interventions": dict(INTERVENTIONS),
                   "rows": records(scored.drop("cutoff")), "profiles": records(profiles)})


# -- health score ------------------------------------------------------------------------------------
def health(frames: Frames, as_of: dt.date, settings: AnalyticsSettings, *, engine: str = "duckdb") -> Document:
    """Health scores at ``as_of`` (per bucket of organizations on ``engine="spark"``) and their
    backtest at ``as_of - horizon`` (embedded)."""
    config = settings.health.config()
    table = distributed.health_on(engine, frames, as_of, config, tuple(settings.kinds))
    doc: Document = {"config": settings.health.model_dump(), "version": config.version,
                     "rows": records(table.drop("cutoff").sort("health_score"))}
    cutoff = as_of - dt.timedelta(days=settings.churn_horizon_days)
    try:
        found = backtest_score(config, frames, cutoff, settings.churn_horizon_days, rule=settings.churn_rule,
                               kinds=tuple(settings.kinds))
        doc["backtest"] = asdict(found)
    except ValueError as exc:
        doc["backtest"] = {"unavailable": str(exc)}
    return dict(_clean(doc))


# -- cross-sell and up-sell --------------------------------------------------------------------------
def recommendation_evaluation(frames: Frames, as_of: dt.date, settings: AnalyticsSettings,
                              level: Literal["sku", "category"] | None = None, k: int | None = None) -> Document:
    """Holdout evaluation: lines before ``as_of - holdout`` train, the holdout tests."""
    split = as_of - dt.timedelta(days=settings.recommend_holdout_days)
    if frames.order_lines.height == 0:
        raise NotEnoughData("recommendations: no order lines (payload.lines of order.placed events) yet")
    chosen = level or settings.recommend_level
    found = evaluate_recommendations(frames.order_lines, frames.organizations, split, k=k or settings.recommend_k,
                                     level=chosen,
                                     end_date=as_of + dt.timedelta(days=1))
    return _clean({"level": found.level, "k": found.k, "split_date": found.split_date.date().isoformat(),
                   "organizations": found.n_orgs, "training_organizations": found.n_train_orgs,
                   "items": found.n_items, "new_items_per_org": found.new_items_per_org,
                   "methods": {name: {"hit": {str(at): v for at, v in m.hit.items()}, "precision": m.precision,
                                      "recall": m.recall} for name, m in found.metrics.items()},
                   "ratio_vs_global": {str(at): found.ratio(at) for at in sorted(found.metrics["model"].hit)},
                   "ratio_vs_segment": {str(at): found.ratio(at, "segment_popularity")
                                        for at in sorted(found.metrics["model"].hit)}})


def recommendations(frames: Frames, as_of: dt.date, settings: AnalyticsSettings,
                    tier_progress: pl.DataFrame | None = None) -> Document:
    cut = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    lines = frames.order_lines.filter(pl.col("occurred_at") < cut)
    if lines.height == 0:
        raise NotEnoughData("recommendations: no order lines (payload.lines of order.placed events) yet")
    table = recommend(lines, frames.organizations, k=settings.recommend_k,
                      level=settings.recommend_level)
    signals = upsell(lines, frames.organizations, tier_progress=tier_progress, as_of=as_of, people=frames.people)
    return {"level": settings.recommend_level, "k": settings.recommend_k, "rows": records(table),
            "upsell": records(signals)}


# -- organization facts (what segments query) --------------------------------------------------------
def facts(frames: Frames, as_of: dt.date, results: Mapping[str, Document],
          tiers: Mapping[str, str] | None = None) -> pl.DataFrame:
    """One row per organization with every field a segment may test (``segments.FACT_FIELDS``),
    from the frames and the documents of this run (churn, health, clv, rfm)."""
    orgs = frames.organizations.select("org", "kind", "segment", "country", "status")
    start, end = _window(as_of)
    at = pl.col("occurred_at").dt.date()
    trailing = frames.orders.filter((at >= start) & (at < end)).group_by("org").agg(
        revenue_12m=pl.col("amount_minor").sum().cast(pl.Float64), orders_12m=pl.len().cast(pl.Float64))
    last = frames.orders.filter(at < end).group_by("org").agg(last=pl.col("occurred_at").max().dt.date())
    people = frames.people.filter(pl.col("left_on").is_null() & (pl.col("status") != "left")).group_by("org").agg(
        people=pl.len().cast(pl.Float64), roles=pl.col("role").unique().sort())
    latest_nps = frames.responses.filter(at < end).sort("occurred_at").group_by("org").agg(
        nps=pl.col("score").last().cast(pl.Float64))
    table = (orgs.join(trailing, on="org", how="left").join(last, on="org", how="left")
             .join(people, on="org", how="left").join(latest_nps, on="org", how="left")
             .with_columns(days_since_last_order=(pl.lit(as_of) - pl.col("last")).dt.total_days().cast(pl.Float64),
                           revenue_12m=pl.col("revenue_12m").fill_null(0.0),
                           orders_12m=pl.col("orders_12m").fill_null(0.0), people=pl.col("people").fill_null(0.0),
                           roles=pl.col("roles").fill_null([])))
    table = table.join(_from_rows(results.get("churn"), "churn_risk", "p_churn"), on="org", how="left")
    table = table.join(_from_rows(results.get("health"), "health_score", "health_score"), on="org", how="left")
    table = table.join(_from_rows(results.get("clv"), "clv", "clv"), on="org", how="left")
    table = table.join(_from_rows(results.get("rfm"), "rfm_segment", "segment", pl.String()), on="org", how="left")
    tier_frame = pl.DataFrame({"org": list((tiers or {}).keys()), "tier": list((tiers or {}).values())},
                              schema={"org": pl.String(), "tier": pl.String()})
    table = table.join(tier_frame, on="org", how="left")
    return table.select([pl.col(name).cast(dtype) for name, dtype in FACT_SCHEMA.items()])


def _from_rows(document: Document | None, name: str, source: str,
               dtype: pl.DataType | None = None) -> pl.DataFrame:
    kind = dtype or pl.Float64()
    rows = [(r["org"], r.get(source)) for r in (document or {}).get("rows", [])]
    return pl.DataFrame(rows, schema={"org": pl.String(), name: kind}, orient="row")

