"""Churn reasons in words: what a feature says about one organization, from its own values
("NPS fell from 8.7 to 3.5", "no order for 212 days"), for the features the model's tree-SHAP
contributions push highest (``model.score_churn``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .features import FEATURE_BY_NAME


def _n(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or v == round(v) else f"{v:,.1f}"


def _change(what: str, recent: float, prior: float) -> str:
    if recent < prior:
        return f"{what} fell from {_n(prior)} to {_n(recent)} per 90 days"
    if recent > prior:
        return f"{what} rose from {_n(prior)} to {_n(recent)} per 90 days"
    return f"{what}: {_n(recent)} in each of the last two 90-day periods"


def _nps(row: Mapping[str, Any]) -> str:
    recent, baseline, latest = row["nps_recent"], row["nps_baseline"], row["nps_latest"]
    if _known(recent) and _known(baseline):
        verb = "fell" if recent < baseline else "rose" if recent > baseline else "stayed"
        return f"NPS {verb} from {baseline:.1f} to {recent:.1f}" if verb != "stayed" else f"NPS steady at {recent:.1f}"
    if _known(latest):
        return f"latest NPS answer: {latest:.0f}"
    return "no NPS answer on record"


def _known(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _key_person(row: Mapping[str, Any]) -> str:
    days = row["days_since_key_person_left"]
    if days < 730:
        return f"owner or purchasing manager left {days:.0f} days ago"
    return "no owner or purchasing manager left in the last two years"


_TEXTS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "recency_days": lambda r: f"no order for {r['recency_days']:.0f} days",
    "spend_365d": lambda r: f"spend in the last 12 months: {_n(r['spend_365d'])}",
    "return_rate_180d": lambda r: f"returns: {100 * r['return_rate_180d']:.0f} % of order value in the last 180 days",
    "roles_engaged_180d": lambda r: f"{r['roles_engaged_180d']:.0f} role(s) active in the last 180 days",
    "paid_ratio": lambda r: (f"{100 * r['paid_ratio']:.0f} % of due invoices paid" if _known(r["paid_ratio"])
                             else "no invoice due in the last 180 days"),
    "people_left_180d": lambda r: f"{r['people_left_180d']:.0f} people left in the last 180 days",
    "key_person_left_180d": _key_person,
    "days_since_key_person_left": _key_person,
    "headcount": lambda r: f"{r['headcount']:.0f} people at the organization",
    "tenure_days": lambda r: f"customer for {r['tenure_days'] / 365.25:.1f} years",
    "program_movements_90d": lambda r: f"{r['program_movements_90d']:.0f} loyalty-program movements in 90 days",
    "program_redeemed_90d": lambda r: f"{_n(r['program_redeemed_90d'])} points redeemed in 90 days",
}
for _name in ("orders_90d", "orders_prior_90d", "order_trend"):
    _TEXTS[_name] = lambda r: _change("orders", r["orders_90d"], r["orders_prior_90d"])
for _name in ("spend_90d", "spend_prior_90d", "spend_trend"):
    _TEXTS[_name] = lambda r: _change("spend", r["spend_90d"], r["spend_prior_90d"])
for _name in ("complaints_90d", "complaints_prior_90d", "complaints_trend"):
    _TEXTS[_name] = lambda r: _change("complaints", r["complaints_90d"], r["complaints_prior_90d"])
for _name in ("competitor_90d", "competitor_prior_90d", "competitor_trend"):
    _TEXTS[_name] = lambda r: _change("price objections and lost quotes", r["competitor_90d"],
                                      r["competitor_prior_90d"])
for _name in ("engagement_90d", "engagement_trend"):
    _TEXTS[_name] = lambda r: f"{r['engagement_90d']:.0f} trainings, contracts or other engagement events in 90 days"
for _name in ("program_earned_90d", "program_trend"):
    _TEXTS[_name] = lambda r: f"{_n(r['program_earned_90d'])} points earned in the last 90 days"
for _name in ("nps_latest", "nps_recent", "nps_baseline", "nps_trend"):
    _TEXTS[_name] = _nps


def reason_text(feature: str, row: Mapping[str, Any]) -> str:
    """A sentence saying what `feature` is for this organization, from its feature `row` (a dict)."""
    writer = _TEXTS.get(feature)
    if writer is not None:
        return writer(row)
    if feature.startswith("segment_"):
        return f"segment: {row.get('segment') or 'unknown'}"
    value = row[feature]
    return f"{FEATURE_BY_NAME[feature].label}: {_n(value) if _known(value) else 'unknown'}"


class Row(Mapping[str, Any]):
    """One row of column lists, read as a mapping without building a dict per row."""

    __slots__ = ("_columns", "_index")

    def __init__(self, columns: Mapping[str, list[Any]], index: int) -> None:
        self._columns, self._index = columns, index

    def __getitem__(self, key: str) -> Any:
        return self._columns[key][self._index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)
