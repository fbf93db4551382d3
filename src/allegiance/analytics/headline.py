"""The headline numbers of an ``overview`` document: what the dashboard's cards show and what its
trend charts plot day by day.

The API's ``GET /analytics/overview/history`` and the operator pages both read them from here, so
a trend line and a card can never disagree about which number "NRR" is. Every value is ``None``
when the run could not compute it (a program too young for a year-over-year comparison, no survey
answers yet...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADLINE_FIELDS = (
    "repeat_rate", "purchase_frequency", "orders", "buyers", "aov_minor", "nrr", "grr", "churn_rate",
    "churn_period", "nps", "nps_ci_low", "nps_ci_high", "nps_responses", "active_rate", "redeeming_rate",
    "retention_gain_minor", "retention_gain_per_customer_minor", "roi", "roi_status",
)


def _part(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key)
    return value if isinstance(value, Mapping) else {}


def headline(document: Mapping[str, Any]) -> dict[str, Any]:
    """One flat record of the overview's vital signs (keys: ``HEADLINE_FIELDS``).

    ``churn_rate`` is the latest complete quarter of ``churn_by_quarter``; ``roi_status`` says why
    ``roi`` is missing when it is (``not_enough_comparables``...)."""
    repeat = _part(document, "repeat_customer_rate")
    frequency = _part(document, "purchase_frequency")
    retention = _part(document, "revenue_retention")
    nps = _part(document, "nps")
    gain = _part(document, "retention_gain")
    roi = _part(document, "program_roi")
    quarters = document.get("churn_by_quarter") or []
    last_quarter: Mapping[str, Any] = quarters[-1] if quarters else {}
    overall = _part(document, "participation").get("overall") or []
    participation: Mapping[str, Any] = overall[0] if overall else {}
    return {
        "repeat_rate": repeat.get("repeat_rate"),
        "purchase_frequency": frequency.get("frequency"),
        "orders": frequency.get("orders"),
        "buyers": frequency.get("buyers"),
        "aov_minor": _part(document, "average_order_value").get("aov_minor"),
        "nrr": retention.get("nrr"),
        "grr": retention.get("grr"),
        "churn_rate": last_quarter.get("churn_rate"),
        "churn_period": last_quarter.get("period"),
        "nps": nps.get("score"),
        "nps_ci_low": nps.get("ci_low"),
        "nps_ci_high": nps.get("ci_high"),
        "nps_responses": nps.get("n"),
        "active_rate": participation.get("active_rate"),
        "redeeming_rate": participation.get("redeeming_rate"),
        "retention_gain_minor": gain.get("total_uplift_minor"),
        "retention_gain_per_customer_minor": gain.get("uplift_per_customer_minor"),
        "roi": roi.get("roi"),
        "roi_status": roi.get("status") or ("unavailable" if "unavailable" in roi else None),
    }
