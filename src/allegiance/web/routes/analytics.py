"""Analytics pages (issue 5): the dashboard of the program's vital signs with their trends, cohort
retention, customer value, churn risk, recommendations, and one organization's analytics.

The pages only read what the analytics job stored (``uow.analytics``: latest snapshot per result
and the history of the overview), so they show exactly the numbers of the API and the CLI. Charts
are Vega-Lite specs rendered to inline SVG on the server (``web.charts``): no script, printable,
readable on a phone. Before the first run every page explains how to start one.

Queries per page are fixed: the stored documents (one query each), the external id → id map of
the program's organizations and the names of the organizations shown (one query each).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import polars as pl
from fastapi import Query, Request
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from allegiance.analytics.headline import headline
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import AllegianceError, NotFound
from allegiance.storage import queries, web_queries
from allegiance.web import charts
from allegiance.web.auth import CsrfChecked, Operator, OperatorDep, get_allegiance
from allegiance.web.rendering import render, with_query
from allegiance.web.routing import web_router

router = web_router()

TREND_DAYS = 365  # overview snapshots the trend charts plot
REVENUE_CAP = 2.0  # cohort revenue retention is drawn up to 200 % (one big order must not wash out the rest)
TOP_VALUE = 20  # organizations in the "top by lifetime value" table
RISK_ROWS = 50  # at-risk organizations listed
HIGHEST_WHEN_NONE = 10  # riskiest organizations shown when none reaches the threshold
BROWSE = 25  # organizations listed on the recommendations page before a search

Text = Annotated[str | None, Query(max_length=200)]


# -- formatting ---------------------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _compact(value: Any) -> str:
    """1,059,302 → 1.1M: axis labels that fit under a bar on a phone."""
    number = _finite(value) or 0.0
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= size:
            return f"{number / size:.1f}{suffix}"
    return f"{number:.0f}"


class Fmt:
    """Numbers as operators read them; ``—`` for a number the run could not compute. Money is in
    minor units of the order currency: shown in that currency when a unit of the program names one
    (its ``cost_per_point``), otherwise as a plain amount of minor units."""

    def __init__(self, operator: Operator) -> None:
        self.money_of = operator.money
        settings = operator.settings
        costs = [u.cost_per_point for u in settings.units if u.cost_per_point] if settings else []
        self.currency = costs[0].currency if costs else None

    @staticmethod
    def pct(value: Any, digits: int = 1) -> str:
        number = _finite(value)
        return "—" if number is None else f"{number * 100:,.{digits}f} %"

    @staticmethod
    def num(value: Any, digits: int = 0) -> str:
        number = _finite(value)
        return "—" if number is None else f"{number:,.{digits}f}"

    @staticmethod
    def prob(value: Any) -> str:
        number = _finite(value)
        return "—" if number is None else f"{number:.2f}"

    def money(self, value: Any) -> str:
        number = _finite(value)
        if number is None:
            return "—"
        if self.currency:
            return self.money_of.currency(round(number), self.currency)
        return f"{number:,.0f}"

    @property
    def money_note(self) -> str:
        return "" if self.currency else "Amounts are in minor units of the order currency (cents for EUR or USD)."


# -- reading what the runs stored ----------------------------------------------------------------------
def _stored(uow: UnitOfWork, program_id: int, kind: str) -> dict[str, Any] | None:
    try:
        return uow.analytics.latest(program_id, kind)
    except NotFound:
        return None


def _directory(uow: UnitOfWork, program_id: int, externals: Iterable[str]) -> dict[str, dict[str, Any]]:
    """external id -> {id, name} for the organizations a page shows (two queries, any number of rows)."""
    wanted = set(externals)
    ids = {ext: oid for oid, ext in uow.analytics_store.organization_keys(program_id).items() if ext in wanted}
    names, _ = web_queries.names(uow.conn, program_id, list(ids.values()), [])
    return {ext: {"id": oid, "name": names.get(oid, ext)} for ext, oid in ids.items()}


def _common(operator: Operator, section: str, **context: Any) -> dict[str, Any]:
    program = operator.program or {}
    return {"operator": operator, "section": section, "fmt": Fmt(operator),
            "run_command": f"allegiance analytics run {program.get('slug', 'PROGRAM')}", **context}


def _long(rows: Iterable[Mapping[str, Any]], x: str, series: Mapping[str, str]) -> pl.DataFrame:
    """Rows → (x, series, value) for a multi-line chart, leaving out values that are missing."""
    data = [(row[x], label, _finite(row.get(key))) for row in rows for key, label in series.items()]
    frame = pl.DataFrame(data, schema={x: pl.String(), "series": pl.String(), "value": pl.Float64()}, orient="row")
    return frame.drop_nulls("value")


def _line(frame: pl.DataFrame, x: str, y: str, *, title: str, color: str | None = None,
          y_format: str = ",.0f") -> Markup | None:
    return charts.line(frame, x, y, title=title, color=color, y_format=y_format) if frame.height else None


# -- the dashboard -------------------------------------------------------------------------------------
def _cards(document: Mapping[str, Any]) -> dict[str, Any]:
    head = headline(document)
    roi = document.get("program_roi") or {}
    gain = document.get("retention_gain") or {}
    return {"head": head, "repeat": document.get("repeat_customer_rate") or {}, "roi": roi, "gain": gain,
            "window": document.get("window") or {}}


@router.get("/analytics")
def dashboard(request: Request, operator: OperatorDep, done: Text = None) -> Response:
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        overview = _stored(uow, program_id, "overview")
        history = uow.analytics.history(program_id, "overview", limit=TREND_DAYS) if overview else []
    context = _common(operator, "dashboard", overview=overview, done=done, error=None)
    if overview is not None:
        context.update(_dashboard_charts(overview["document"], str(overview["as_of"]), [
            {"as_of": str(s["as_of"]), **headline(s["document"])} for s in history]))
        context.update(_cards(overview["document"]))
    return render(request, "analytics/dashboard.html", context)


def _dashboard_charts(document: Mapping[str, Any], as_of: str, trend: list[dict[str, Any]]) -> dict[str, Any]:
    # the month of as_of is not over (unless as_of is its last day): left out rather than drawn as a drop
    months = [m for m in document.get("monthly") or [] if str(m.get("period", ""))[:7] < as_of[:7]]
    monthly = _long(months, "period", {"orders": "Orders", "buyers": "Buyers"})
    quarters = _long(document.get("churn_by_quarter") or [], "period", {"churn_rate": "Churn rate"})
    nps_quarters = _long(document.get("nps_by_quarter") or [], "period", {"score": "NPS"})
    rates = _long(trend, "as_of", {"nrr": "NRR", "grr": "GRR", "repeat_rate": "Repeat rate",
                                   "churn_rate": "Churn rate", "active_rate": "Active people"})
    nps = _long(trend, "as_of", {"nps": "NPS", "nps_ci_low": "CI low", "nps_ci_high": "CI high"})
    return {"charts": [chart for chart in (
        _line(monthly, "period", "value", color="series", title="Orders and buyers per month"),
        _line(rates, "as_of", "value", color="series", y_format=".0%", title="Retention and participation by run"),
        _line(nps, "as_of", "value", color="series", y_format=",.0f", title="NPS by run (95 % interval)"),
        _line(quarters, "period", "value", y_format=".0%", title="Churn rate per quarter"),
        _line(nps_quarters, "period", "value", y_format=",.0f", title="NPS per quarter"),
    ) if chart is not None], "trend_runs": len(trend)}


@router.post("/analytics/run", dependencies=[CsrfChecked])
def run_now(request: Request, operator: OperatorDep) -> Response:
    """Run the job for yesterday now (what ``allegiance analytics run`` does nightly), then show the
    dashboard again (post / redirect / get: a reload does not run it twice)."""
    program_id = operator.program_id
    try:
        with get_allegiance(request).write() as uow:
            result = uow.analytics.run(program_id)
    except AllegianceError as exc:
        with get_allegiance(request).read() as uow:
            overview = _stored(uow, program_id, "overview")
        context = _common(operator, "dashboard", overview=overview, done=None, error=str(exc), charts=[],
                          trend_runs=0)
        if overview is not None:
            context.update(_cards(overview["document"]))
        return render(request, "analytics/dashboard.html", context, status=exc.status)
    skipped = ",".join(sorted(result.skipped)) or None
    return RedirectResponse(with_query("/analytics", done="run", skipped=skipped), status_code=303)


# -- retention -----------------------------------------------------------------------------------------
@router.get("/analytics/retention")
def retention(request: Request, operator: OperatorDep) -> Response:
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        cohorts = _stored(uow, program_id, "cohorts")
        overview = _stored(uow, program_id, "overview")
    context = _common(operator, "retention", cohorts=cohorts, revenue=None, charts=[])
    if overview is not None:
        context["revenue"] = overview["document"].get("revenue_retention")
    if cohorts is not None:
        rows = cohorts["document"].get("rows") or []
        frame = pl.DataFrame(rows, orient="row") if rows else pl.DataFrame()
        if frame.height:
            frame = frame.with_columns(pl.col("cohort_month").cast(pl.String).str.slice(0, 7))
            context["charts"] = [
                charts.heatmap(frame.drop_nulls("retention_rate"), "month_offset", "cohort_month", "retention_rate",
                               title="Share of each cohort ordering N months after its first order"),
                charts.heatmap(frame.drop_nulls("revenue_retention").with_columns(
                    pl.col("revenue_retention").clip(upper_bound=REVENUE_CAP)), "month_offset", "cohort_month",
                    "revenue_retention", title="Cohort revenue N months later, share of its first month"),
            ]
            context["cohort_count"] = frame["cohort_month"].n_unique()
    return render(request, "analytics/retention.html", context)


# -- value ---------------------------------------------------------------------------------------------
@router.get("/analytics/value")
def value(request: Request, operator: OperatorDep) -> Response:
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        clv = _stored(uow, program_id, "clv")
        rfm = _stored(uow, program_id, "rfm")
        top = (clv["document"].get("rows") or [])[:TOP_VALUE] if clv else []
        directory = _directory(uow, program_id, [r["org"] for r in top])
    context = _common(operator, "value", clv=clv, rfm=rfm, top=top, directory=directory, clv_chart=None,
                      rfm_chart=None)
    if clv is not None:
        bins = clv["document"].get("distribution") or []
        if bins:
            frame = pl.DataFrame([{"value": f"≤ {_compact(b['to'])}", "organizations": b["organizations"]}
                                  for b in bins], orient="row")
            context["clv_chart"] = charts.bars(frame, "value", "organizations",
                                               title="Organizations by predicted lifetime value")
    if rfm is not None and rfm["document"].get("segments"):
        frame = pl.DataFrame(rfm["document"]["segments"], orient="row").select("segment", "organizations")
        context["rfm_chart"] = charts.bars(frame, "segment", "organizations", horizontal=True, sort="-x",
                                           title="Organizations per RFM segment")
    return render(request, "analytics/value.html", context)


# -- risk ----------------------------------------------------------------------------------------------
@router.get("/analytics/risk")
def risk(request: Request, operator: OperatorDep) -> Response:
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        churn = _stored(uow, program_id, "churn")
        health = _stored(uow, program_id, "health")
        rows: list[dict[str, Any]] = []
        at_risk = 0
        if churn is not None:
            document = churn["document"]
            ranked = sorted(document.get("rows") or [], key=lambda r: -(_finite(r.get("p_churn")) or 0.0))
            above = [r for r in ranked if (_finite(r.get("p_churn")) or 0.0) >= document["threshold"]]
            at_risk = len(above)
            rows = above[:RISK_ROWS] if above else ranked[:HIGHEST_WHEN_NONE]
        directory = _directory(uow, program_id, [r["org"] for r in rows])
    scores = {r["org"]: r.get("health_score") for r in (health["document"].get("rows") or [])} if health else {}
    evaluation = churn["document"].get("evaluation") if churn else None
    chart = _risk_bands(churn["document"].get("rows") or []) if churn else None
    return render(request, "analytics/risk.html", _common(
        operator, "risk", churn=churn, health=health, rows=rows, at_risk=at_risk, directory=directory,
        scores=scores, evaluation=evaluation or {}, chart=chart,
        profiles=(churn["document"].get("profiles") or []) if churn else []))


def _risk_bands(rows: list[dict[str, Any]]) -> Markup | None:
    """Organizations per tenth of p(churn): how the risk spreads over the book."""
    values = [v for v in (_finite(r.get("p_churn")) for r in rows) if v is not None]
    if not values:
        return None
    counts = [0] * 10
    for v in values:
        counts[min(int(v * 10), 9)] += 1
    frame = pl.DataFrame({"p(churn)": [f"{i / 10:.1f}–{(i + 1) / 10:.1f}" for i in range(10)], "organizations": counts})
    return charts.bars(frame, "p(churn)", "organizations", title="Organizations by churn risk")


# -- recommendations -----------------------------------------------------------------------------------
@router.get("/analytics/recommendations")
def recommendations(request: Request, operator: OperatorDep, q: Text = None, org: Text = None,
                    evaluate: Text = None) -> Response:
    program_id = operator.program_id
    q = (q or "").strip() or None
    evaluation: dict[str, Any] | None = None
    evaluation_error = None
    with get_allegiance(request).read() as uow:
        stored = _stored(uow, program_id, "recommendations")
        document = stored["document"] if stored else {}
        rows = document.get("rows") or []
        upsell = document.get("upsell") or []
        with_items = sorted({r["org"] for r in rows} | {r["org"] for r in upsell})
        matches: list[dict[str, Any]] = []
        if q and stored:
            found = queries.organizations(uow.conn, program_id, visible=None, q=q, limit=BROWSE)
            matches = [m for m in found if m["external_id"] in set(with_items)][:BROWSE]
            if len(matches) == 1 and org is None:
                org = matches[0]["external_id"]
        listed = [m["external_id"] for m in matches] if q else with_items[:BROWSE]
        directory = _directory(uow, program_id, [*listed, *([org] if org else [])])
        if evaluate and stored:
            try:
                evaluation = uow.analytics.evaluate_recommendations(program_id)
            except (AllegianceError, ValueError) as exc:
                evaluation_error = str(exc)
    first: dict[str, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(row["org"], row)
    chart = _recommended_categories(rows)
    chosen = {"org": org, "items": [r for r in rows if r["org"] == org],
              "upsell": [r for r in upsell if r["org"] == org]} if org else None
    return render(request, "analytics/recommendations.html", _common(
        operator, "recommendations", stored=stored, q=q or "", listed=listed, first=first, directory=directory,
        chosen=chosen, evaluation=evaluation or document.get("evaluation"), evaluation_error=evaluation_error,
        organizations=len(with_items), chart=chart))


def _recommended_categories(rows: list[dict[str, Any]], top: int = 10) -> Markup | None:
    """The categories recommended to the most organizations (cross-sell potential by category)."""
    counts: dict[str, set[str]] = {}
    for row in rows:
        counts.setdefault(str(row.get("category") or row.get("item")), set()).add(row["org"])
    if not counts:
        return None
    ranked = sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]
    frame = pl.DataFrame({"category": [c.replace("_", " ") for c, _ in ranked],
                          "organizations": [len(orgs) for _, orgs in ranked]})
    return charts.bars(frame, "category", "organizations", horizontal=True, sort="-x",
                       title="Categories recommended to the most organizations")


# -- one organization ----------------------------------------------------------------------------------
@router.get("/analytics/organizations/{organization_id}")
def organization(request: Request, operator: OperatorDep, organization_id: int) -> Response:
    """Everything the latest results say about one organization: risk and why, health by component,
    lifetime value, RFM, recommendations and up-sell signals."""
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        org = uow.programs.organization(program_id, organization_id)  # NotFound → 404 page
        ancestors = web_queries.ancestors(uow.conn, program_id, organization_id)
        found = uow.analytics.organization(program_id, org["external_id"])
    health = found.get("health") or {}
    components = [{"component": key.removesuffix("_contribution").replace("_", " "), "contribution": v,
                   "score": health.get(key.replace("_contribution", "_score"))}
                  for key, v in health.items() if key.endswith("_contribution") and _finite(v) is not None]
    chart = None
    if components:
        frame = pl.DataFrame([(c["component"], float(c["contribution"])) for c in components],
                             schema={"component": pl.String(), "points": pl.Float64()}, orient="row")
        chart = charts.bars(frame, "component", "points", horizontal=True, sort="-x", y_format=",.1f",
                            title="Health score: points per component")
    return render(request, "analytics/organization.html", _common(
        operator, "organization", organization=org, ancestors=ancestors, current_url=f"/organizations/{org['id']}",
        found=found, components=components, chart=chart))
