"""The result commands: metrics, cohorts, rfm, clv, health, and everything about one organization.

Each computes *live* from the database for ``--as-of`` (default yesterday) unless ``--stored`` asks
for the snapshot the last run saved; both go through the same functions of
`allegiance.analytics.report`, so they agree."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from allegiance.analytics.results import Document
from allegiance.analytics.service import AnalyticsService
from allegiance.cli.analytics.common import (
    AsOfOpt,
    ClvModel,
    EngineName,
    EngineOpt,
    Format,
    FormatOpt,
    Live,
    OutputOpt,
    ProgramArg,
    StoredOpt,
    analytics_app,
    fmt_cell,
    fmt_minor,
    fmt_num,
    fmt_pct,
    load_report,
    obtain,
    require_same,
    resolve_format,
    rich_table,
    settings_with,
    write_rows,
)
from allegiance.cli.common import application, console, fail, program_id_for


# -- results -----------------------------------------------------------------------------------------
def headlines(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The overview's headline numbers as rows: metric, value (a number or null), text (readable)."""
    rows: list[dict[str, Any]] = []

    def add(metric: str, value: float | bool | None, text: str) -> None:
        rows.append({"metric": metric, "value": None if value is None else float(value), "text": text})

    repeat = document.get("repeat_customer_rate") or {}
    add("repeat_customer_rate", repeat.get("repeat_rate"),
        f"{fmt_pct(repeat.get('repeat_rate'))} ({repeat.get('repeat_buyers', 0):,} of {repeat.get('buyers', 0):,} "
        f"buyers ordered more than once)")
    frequency = document.get("purchase_frequency") or {}
    add("purchase_frequency", frequency.get("frequency"),
        f"{fmt_num(frequency.get('frequency'))} orders per buyer ({frequency.get('orders', 0):,} orders)")
    aov = document.get("average_order_value") or {}
    add("average_order_value_minor", aov.get("aov_minor"),
        f"{fmt_minor(aov.get('aov_minor'))} (net of returns, minor units)")
    retention = document.get("revenue_retention") or {}
    span = f"{retention.get('base_period')} → {retention.get('next_period')}" if retention else "no base year yet"
    add("gross_revenue_retention", retention.get("grr"), f"{fmt_pct(retention.get('grr'))} ({span})")
    add("net_revenue_retention", retention.get("nrr"), f"{fmt_pct(retention.get('nrr'))} ({span})")
    negative = retention.get("net_negative_churn")
    add("net_negative_churn", negative, "–" if negative is None else "yes" if negative else "no")
    quarters = document.get("churn_by_quarter") or []
    last = quarters[-1] if quarters else {}
    add("churn_rate_last_quarter", last.get("churn_rate"),
        f"{fmt_pct(last.get('churn_rate'))} ({last.get('churned', 0):,} of {last.get('at_risk', 0):,}, quarter from "
        f"{last.get('period')})" if last else "–")
    participation = document.get("participation") or {}
    overall = (participation.get("overall") or [{}])[0]
    days = participation.get("window_days")
    add("participation_enrolled", overall.get("enrolled"), f"{overall.get('enrolled', 0):,} people enrolled")
    add("participation_active", overall.get("active"),
        f"{overall.get('active', 0):,} ({fmt_pct(overall.get('active_rate'))}) active in the last {days} days")
    add("participation_redeeming", overall.get("redeeming"),
        f"{overall.get('redeeming', 0):,} ({fmt_pct(overall.get('redeeming_rate'))}) redeeming in the last {days} days")
    score = document.get("nps") or {}
    add("nps", score.get("score"), f"{fmt_num(score.get('score'), 1)} (CI {fmt_num(score.get('ci_low'), 1)} – "
        f"{fmt_num(score.get('ci_high'), 1)}, {score.get('n', 0):,} answers)")
    add("nps_ci_low", score.get("ci_low"), fmt_num(score.get("ci_low"), 1))
    add("nps_ci_high", score.get("ci_high"), fmt_num(score.get("ci_high"), 1))
    gain = document.get("retention_gain") or {}
    if "unavailable" in gain or not gain:
        add("retention_gain_value_minor", None, f"unavailable: {gain.get('unavailable', 'no data')}")
    else:
        add("retention_gain_value_minor", gain.get("total_uplift_minor"),
            f"{fmt_minor(gain.get('total_uplift_minor'))} over {gain.get('horizon_years')} years for "
            f"+{(gain.get('gain') or 0) * 100:.0f} pts retention ({fmt_pct(gain.get('retention_rate'))} → "
            f"{fmt_pct(gain.get('retention_after'))}; {fmt_minor(gain.get('uplift_per_customer_minor'))} per customer)")
    roi = document.get("program_roi") or {}
    status = roi.get("status") or ("unavailable" if "unavailable" in roi else "–")
    detail = roi.get("message") or roi.get("unavailable")
    add("program_roi_status", None, f"{status}: {detail}" if detail else status)
    add("program_roi", roi.get("roi"), fmt_pct(roi.get("roi")))
    add("program_net_benefit_minor", roi.get("net_benefit_minor"), fmt_minor(roi.get("net_benefit_minor")))
    add("program_incremental_margin_minor", roi.get("incremental_margin_minor"),
        fmt_minor(roi.get("incremental_margin_minor")))
    add("program_cost_minor", roi.get("cost_minor"), fmt_minor(roi.get("cost_minor")))
    return rows


def _overview(service: AnalyticsService, program_id: int, day: date) -> Document:
    return load_report().overview(service.frames(program_id, day), day, service.settings(program_id),
                           service.context.money(program_id))


@analytics_app.command("metrics")
def metrics(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
            output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """The program's vital signs over the trailing twelve months: repeat rate, purchase frequency,
    order value, revenue retention, churn, participation, NPS, the value of retention, ROI."""
    chosen = resolve_format(output_format, output)
    result = obtain(program, "overview", as_of, stored, _overview)
    rows = headlines(result.document)
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    window = result.document.get("window") or {}
    console.print(result.heading("metrics", program) + f", window {window.get('start')} – {window.get('end')} "
                  "(end excluded)", soft_wrap=True)
    table = Table("metric", "value")
    for row in rows:
        table.add_row(row["metric"].replace("_", " "), row["text"])
    console.print(table)


def _cohorts(engine: EngineName) -> Live:
    return lambda service, program_id, day: load_report().cohorts(service.frames(program_id, day), day, engine.value)


@analytics_app.command("cohorts")
def cohorts(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False, engine: EngineOpt =
            EngineName.DUCKDB, output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """Cohort retention: organizations by the month of their first order, and the share still
    ordering (and their revenue against month 0) each month after."""
    chosen = resolve_format(output_format, output)
    result = obtain(program, "cohorts", as_of, stored, _cohorts(engine))
    rows = result.document["rows"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading("cohort retention", program), soft_wrap=True)
    offsets = min(12, max((r["month_offset"] for r in rows), default=0))
    table = Table("cohort", "size", *(f"+{k}" for k in range(offsets + 1)))
    by_cohort: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_cohort.setdefault(row["cohort_month"], {})[row["month_offset"]] = row
    for cohort, months in by_cohort.items():
        size = months[min(months)]["cohort_size"]
        table.add_row(cohort[:7], f"{size:,}", *(f"{months[k]['retention_rate'] * 100:.0f}%" if k in months else ""
                                                 for k in range(offsets + 1)))
    console.print(table)
    console.print(f"share of each cohort ordering k months later; months 0–{offsets} shown "
                  "(--format csv for every month and the revenue retention)", soft_wrap=True)


def _rfm(engine: EngineName) -> Live:
    return lambda service, program_id, day: load_report().rfm(service.frames(program_id, day), day, engine.value)


@analytics_app.command("rfm")
def rfm(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
        engine: EngineOpt = EngineName.DUCKDB, output_format: FormatOpt = Format.TABLE,
        output: OutputOpt = None) -> None:
    """Recency, frequency and monetary scores (1–5) per organization and the segment they put it in."""
    chosen = resolve_format(output_format, output)
    result = obtain(program, "rfm", as_of, stored, _rfm(engine))
    rows = result.document["rows"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading("RFM", program), soft_wrap=True)
    console.print(rich_table(result.document.get("segments", []), [("segment", "segment"), ("organizations",
                  "organizations"), ("monetary_minor", "monetary (minor)")], title="segments"))
    console.print(rich_table(rows, [("org", "organization"), ("segment", "segment"), ("rfm_cell", "RFM"),
                                ("recency_days", "recency (days)"), ("frequency", "orders"),
                                ("monetary_minor", "monetary (minor)"), ("last_order_on", "last order")]))


def _clv(horizon_days: int | None, model: ClvModel | None) -> Live:
    def compute(service: AnalyticsService, program_id: int, day: date) -> Document:
        settings = settings_with(service, program_id, {"clv_horizon_days": horizon_days,
                                                   "clv_model": model.value if model else None},
                             {"clv_horizon_days": "--horizon-days", "clv_model": "--model"})
        return load_report().clv(service.frames(program_id, day), day, settings)

    return compute


@analytics_app.command("clv")
def clv(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
        horizon_days: Annotated[int | None, typer.Option("--horizon-days", help="Value over this many days "
                                                         "(default: the settings' clv_horizon_days)")] = None,
        model: Annotated[ClvModel | None, typer.Option("--model", help="bgnbd or paretonbd (default: the "
                                                       "settings' clv_model)")] = None,
        output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """Predicted customer lifetime value (BG/NBD or Pareto/NBD with Gamma-Gamma) beside the value
    realised so far, per organization."""
    chosen = resolve_format(output_format, output)
    result = obtain(program, "clv", as_of, stored, _clv(horizon_days, model))
    if stored:
        require_same(result.document, {("horizon_days", "--horizon-days"): horizon_days,
                                ("model", "--model"): model.value if model else None})
    rows = result.document["rows"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    doc = result.document
    console.print(result.heading("lifetime value", program), soft_wrap=True)
    params = ", ".join(f"{k} {v:.4g}" for k, v in (doc.get("params") or {}).items())
    console.print(f"model {doc['model']}, horizon {doc['horizon_days']} days, margin {fmt_pct(doc.get('margin'))}; "
                  f"total predicted {fmt_minor(doc.get('total_clv'))} (minor units); converged: "
                  f"{fmt_cell(doc.get('converged'))}; parameters {params}", soft_wrap=True)
    console.print(rich_table(rows, [("org", "organization"), ("clv", "CLV (minor)"), ("p_alive", "P(alive)"),
                                ("expected_purchases", "expected purchases"), ("expected_aov", "expected AOV"),
                                ("historical_clv", "realised margin")]))


def _health(service: AnalyticsService, program_id: int, day: date) -> Document:
    return load_report().health(service.frames(program_id, day), day, service.settings(program_id))


@analytics_app.command("health")
def health(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
           output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """Health score (0–100) per organization and what each component contributes, lowest first."""
    chosen = resolve_format(output_format, output)
    result = obtain(program, "health", as_of, stored, _health)
    rows = result.document["rows"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading(f"health score {result.document.get('version')}", program), soft_wrap=True)
    parts = [c for c in (rows[0] if rows else {}) if c.endswith("_contribution")]
    console.print(rich_table(rows, [("org", "organization"), ("health_score", "score"),
                                *((c, c.removesuffix("_contribution").replace("_", " ")) for c in parts)]))
    backtest = result.document.get("backtest") or {}
    if "unavailable" in backtest:
        console.print(f"backtest unavailable: {backtest['unavailable']}", soft_wrap=True)
    elif backtest:
        console.print(f"backtest at {backtest.get('cutoff')}: AUC {fmt_num(backtest.get('auc'), 3)} against churn in "
                      f"the next {backtest.get('horizon_days')} days, top-decile lift "
                      f"{fmt_num(backtest.get('top_decile_lift'))} ({backtest.get('churners')} churners of "
                      f"{backtest.get('organizations')})", soft_wrap=True)




# -- one organization --------------------------------------------------------------------------------
def _pairs(row: Mapping[str, Any] | None, fields: Iterable[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    for key, label in fields:
        table.add_row(label, fmt_cell((row or {}).get(key)))
    return table


@analytics_app.command("organization")
def organization(program: ProgramArg, external_id: Annotated[str, typer.Argument(help="The organization's "
                                                                                  "external id")],
                 output_format: Annotated[Format, typer.Option("--format", help="table (panels) or json")] =
                 Format.TABLE) -> None:
    """Everything the latest run says about one organization: facts, churn risk and reasons, health
    contributions, lifetime value, RFM, recommendations and up-sell signals."""
    if output_format not in (Format.TABLE, Format.JSON):
        fail("--format: table or json for one organization")
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            found = uow.analytics.organization(program_id, external_id)
    if "as_of" not in found:
        fail("no analytics run yet: run `allegiance analytics run` first")
    if all(found.get(k) is None for k in ("facts", "churn", "health", "clv", "rfm")) and not found.get(
            "recommendations") and not found.get("upsell"):
        fail(f"{external_id!r} is not in the latest analytics results (as of {found['as_of']}): unknown, or added "
             "since the last run")
    if output_format is Format.JSON:
        print(json.dumps(found, indent=2, default=str))
        return
    console.print(f"[bold]{external_id}[/bold] in {program}, analytics as of {found['as_of']}")
    console.print(Panel(_pairs(found.get("facts"), [
        ("kind", "kind"), ("segment", "segment"), ("country", "country"), ("status", "status"), ("tier", "tier"),
        ("revenue_12m", "revenue 12m (minor)"), ("orders_12m", "orders 12m"),
        ("days_since_last_order", "days since last order"), ("nps", "latest NPS answer"), ("people", "people"),
        ("roles", "roles")]), title="facts", title_align="left"))
    risk = found.get("churn")
    if risk:
        reasons = "\n".join(f"• {text}" for text in risk.get("reason_texts") or [])
        console.print(Panel(Group(f"p(churn) [bold]{risk['p_churn']:.3f}[/bold]", reasons,
                                  f"intervention: {risk.get('intervention') or '–'}"),
                            title="churn risk", title_align="left"))
    score = found.get("health")
    if score:
        parts = [(k, k.removesuffix("_contribution").replace("_", " ")) for k in score if k.endswith("_contribution")]
        console.print(Panel(_pairs(score, [("health_score", "score"), *parts]), title="health (contributions)",
                            title_align="left"))
    if found.get("clv"):
        console.print(Panel(_pairs(found["clv"], [("clv", "predicted CLV (minor)"), ("p_alive", "P(alive)"),
                                                  ("expected_purchases", "expected purchases"),
                                                  ("expected_aov", "expected order value"),
                                                  ("historical_clv", "realised margin so far"), ("model", "model")]),
                            title="lifetime value", title_align="left"))
    if found.get("rfm"):
        console.print(Panel(_pairs(found["rfm"], [("segment", "segment"), ("rfm_cell", "R F M"),
                                                  ("recency_days", "days since last order"),
                                                  ("frequency", "orders"), ("monetary_minor", "monetary (minor)")]),
                            title="RFM", title_align="left"))
    if found.get("recommendations"):
        console.print(Panel(rich_table(found["recommendations"], [("rank", "#"), ("item", "item"),
                                                              ("category", "category"), ("reason", "why")]),
                            title="recommendations", title_align="left"))
    if found.get("upsell"):
        console.print(Panel(rich_table(found["upsell"], [("signal", "signal"), ("category", "category"),
                                                     ("reason", "why")]), title="up-sell signals", title_align="left"))
