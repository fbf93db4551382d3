"""``allegiance analytics``: run the analytics job, read its results, keep settings and segments as files.

Every result command computes *live* from the database for ``--as-of`` (default yesterday) unless
``--stored`` asks for the snapshot the last run saved; both go through the same functions of
`allegiance.analytics.report`, so they agree. ``--format csv|json|parquet`` writes the result's
rows (the main frame of the document) to ``--output FILE``, or to stdout for csv and json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import polars as pl
import typer
import yaml
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from allegiance.analytics.results import KINDS, Document, NotEnoughData, RunResult
from allegiance.analytics.service import AnalyticsService
from allegiance.analytics.settings import AnalyticsSettings, AnalyticsSettingsInvalid, parse_settings
from allegiance.analytics.sql import EngineUnavailable, spark_unavailable_reason
from allegiance.bootstrap import Allegiance
from allegiance.cli.common import application, console, fail, guarded, program_id_for
from allegiance.cli.rules import line_of, load_document
from allegiance.kernel.errors import AllegianceError, NotFound

analytics_app = typer.Typer(help="Retention, churn, lifetime value, health and recommendations: run the job, "
                                 "read the results (live or stored), keep settings and segments as files.",
                            no_args_is_help=True)
churn_app = typer.Typer(help="Churn risk: score organizations, evaluate the model against a baseline.",
                        no_args_is_help=True)
recommend_app = typer.Typer(help="Cross-sell recommendations: list them, evaluate them against popularity.",
                            no_args_is_help=True)
settings_app = typer.Typer(help="The program's analytics settings (versioned): show, apply a file.",
                           no_args_is_help=True)
segments_app = typer.Typer(help="Segments (saved queries over organization facts): apply a file, list, members.",
                           no_args_is_help=True)
analytics_app.add_typer(churn_app, name="churn")
analytics_app.add_typer(recommend_app, name="recommend")
analytics_app.add_typer(settings_app, name="settings")
analytics_app.add_typer(segments_app, name="segments")

TABLE_LIMIT = 25  # rows a terminal table shows when no --top is given (files get every row)


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    PARQUET = "parquet"


class EngineName(StrEnum):
    DUCKDB = "duckdb"
    SPARK = "spark"


class ClvModel(StrEnum):
    BGNBD = "bgnbd"
    PARETONBD = "paretonbd"


class Level(StrEnum):
    SKU = "sku"
    CATEGORY = "category"


ProgramArg = Annotated[str, typer.Argument(help="The program's slug")]
AsOfOpt = Annotated[datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"],
                                                  help="Day the results are for (default: yesterday)")]
StoredOpt = Annotated[bool, typer.Option("--stored", help="Read the snapshot the last run stored (of --as-of's "
                                                          "day when given) instead of computing live")]
FormatOpt = Annotated[Format, typer.Option("--format", help="table, or the result rows as csv, json or parquet")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", dir_okay=False,
                                                help="Write the rows to this file (csv/json default to stdout)")]
EngineOpt = Annotated[EngineName, typer.Option("--engine", help="SQL engine for cohorts and RFM")]


# -- formatting ------------------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _minor(value: float | None) -> str:
    """An amount in minor units of the order currency, rounded (the currency is the program's)."""
    return "–" if value is None else f"{round(value):,}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() or abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.3f}"
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def _table(rows: Iterable[Mapping[str, Any]], columns: Iterable[tuple[str, str]], title: str | None = None) -> Table:
    chosen = list(columns)
    table = Table(*(header for _, header in chosen), title=title, title_justify="left")
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key, _ in chosen))
    return table


# -- output: table, or the rows as csv / json / parquet ------------------------------------------------
def _format(chosen: Format, output: Path | None) -> Format:
    """The format to write; a table with --output takes the file's suffix. Checked before any work."""
    if chosen is Format.TABLE and output is not None:
        by_suffix = {".csv": Format.CSV, ".json": Format.JSON, ".parquet": Format.PARQUET}.get(output.suffix.lower())
        if by_suffix is None:
            fail("--output: give --format csv, json or parquet (or a file ending in .csv, .json or .parquet)")
            raise AssertionError("unreachable")
        return by_suffix
    if chosen is Format.PARQUET and output is None:
        fail("--format parquet needs --output FILE")
    return chosen


def _flat(value: Any) -> Any:
    """A CSV cell: lists joined with '; ', mappings as JSON."""
    if isinstance(value, list):
        return "; ".join("" if v is None else json.dumps(v) if isinstance(v, dict | list) else str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return value


def _frame(rows: list[dict[str, Any]], *, flat: bool) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame()
    if flat:
        rows = [{k: _flat(v) for k, v in row.items()} for row in rows]
    return pl.from_dicts(rows, infer_schema_length=None)


def write_rows(rows: list[dict[str, Any]], chosen: Format, output: Path | None) -> None:
    """The rows as csv or json (to ``output`` or stdout) or parquet (to ``output``)."""
    if chosen is Format.JSON:
        text = json.dumps(rows, indent=2, default=str)
        if output is None:
            print(text)
        else:
            output.write_text(text + "\n", encoding="utf-8")
    elif chosen is Format.CSV:
        frame = _frame(rows, flat=True)
        if output is None:
            print(frame.write_csv(), end="")
        else:
            frame.write_csv(output)
    else:
        assert output is not None
        _frame(rows, flat=False).write_parquet(output)
    if output is not None:
        console.print(f"wrote {len(rows):,} rows to {output}", soft_wrap=True)


@dataclass(frozen=True)
class Result:
    document: Document
    as_of: date
    source: str  # "computed live" or "stored …"

    def heading(self, what: str, program: str) -> str:
        return f"[bold]{what}[/bold] of {program} as of {self.as_of} ({self.source})"


Live = Callable[[AnalyticsService, int, date], Document]


def _snapshot(service: AnalyticsService, program_id: int, kind: str, day: date | None) -> dict[str, Any]:
    if day is None:
        return service.latest(program_id, kind)
    for found in reversed(service.history(program_id, kind)):
        if str(found["as_of"]) == day.isoformat():
            return found
    raise NotFound(f"no stored {kind} result for {day}: drop --stored to compute it live, "
                   f"or run `allegiance analytics run --as-of {day}`")


def obtain(program: str, kind: str, as_of: datetime | None, stored: bool, live: Live) -> Result:
    """The result of ``kind``: computed live for the day, or the stored snapshot."""
    day = as_of.date() if as_of is not None else None
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            service = uow.analytics
            if stored:
                found = guarded(lambda: _snapshot(service, program_id, kind, day))
                saved = found.get("created_at")
                when = f", saved {saved:%Y-%m-%d %H:%M} UTC" if isinstance(saved, datetime) else ""
                return Result(found["document"], date.fromisoformat(str(found["as_of"])), f"stored{when}")
            resolved = guarded(lambda: service.as_of(day))
            try:
                document = live(service, program_id, resolved)
            except (AllegianceError, NotEnoughData, EngineUnavailable) as exc:
                fail(str(exc))
                raise
    return Result(document, resolved, "computed live")


def _settings(service: AnalyticsService, program_id: int, overrides: Mapping[str, Any],
              options: Mapping[str, str]) -> AnalyticsSettings:
    """The program's settings with command-line overrides; a bad override names its option."""
    chosen = {k: v for k, v in overrides.items() if v is not None}
    if not chosen:
        return service.settings(program_id)
    try:
        return parse_settings({**service.settings(program_id).model_dump(mode="json"), **chosen})
    except AnalyticsSettingsInvalid as exc:
        fail(f"{options.get(exc.field, exc.field)}: {exc.reason}")
        raise


def _same(document: Mapping[str, Any], wanted: Mapping[tuple[str, str], Any]) -> None:
    """A stored result was made with its settings; an option asking for others cannot be served from it."""
    for (key, option), value in wanted.items():
        if value is not None and document.get(key) != value:
            fail(f"{option}: the stored result used {document.get(key)!r}; drop --stored to compute it with {value!r}")


# -- the job -----------------------------------------------------------------------------------------
def _size(document: Mapping[str, Any]) -> str:
    rows = document.get("rows")
    if isinstance(rows, list):
        return f"{len(rows):,} rows"
    return f"{len(json.dumps(document, default=str)) / 1024:.1f} kB"


def run_table(result: RunResult) -> Table:
    table = Table("kind", "rows / size", "seconds", "status")
    for kind in KINDS:
        if kind in result.documents:
            status = "stored"
            size = _size(result.documents[kind])
        elif kind in result.skipped:
            status, size = f"skipped: {result.skipped[kind]}", ""
        else:
            continue
        seconds = result.seconds.get(kind)
        table.add_row(kind, size, "" if seconds is None else f"{seconds:.2f}", status)
    return table


def run_summary(result: RunResult, seconds: float) -> str:
    """One line: what a run stored, for which day, how long it took and what it skipped."""
    stored = [k for k in KINDS if k in result.documents]
    line = (f"analytics as of {result.as_of}: {len(stored)} result{'' if len(stored) == 1 else 's'} stored in "
            f"{seconds:.1f} s")
    if result.skipped:
        line += "; skipped " + ", ".join(f"{kind} ({why})" for kind, why in result.skipped.items())
    return line


def run_job(app: Allegiance, program_id: int, as_of: date | None = None, *, engine: str = "duckdb",
            kinds: tuple[str, ...] = KINDS) -> tuple[RunResult, float]:
    """Run and store; also the wall time of the whole run (reading the data included)."""
    began = time.perf_counter()
    with app.write() as uow:
        result = uow.analytics.run(program_id, as_of, engine=engine, kinds=kinds)
    return result, time.perf_counter() - began


def _kinds(only: list[str] | None) -> tuple[str, ...]:
    if not only:
        return KINDS
    chosen = [k.strip() for item in only for k in item.split(",") if k.strip()]
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        fail(f"--only: unknown kind {unknown[0]!r}; one of {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in chosen)


@analytics_app.command("run")
def run(
    program: ProgramArg,
    as_of: AsOfOpt = None,
    engine: EngineOpt = EngineName.DUCKDB,
    only: Annotated[list[str] | None, typer.Option("--only", help="Compute only this kind (repeat, or "
                                                   "comma-separate): " + ", ".join(KINDS))] = None,
) -> None:
    """Compute and store the results for a day (a re-run replaces that day's snapshots) and refresh
    segment membership. A result the history cannot support yet is skipped with the reason."""
    kinds = _kinds(only)
    if engine is EngineName.SPARK:
        reason = spark_unavailable_reason()
        if reason:
            fail(f"--engine spark: {reason}")
    with application() as app:
        program_id = program_id_for(app, program)
        try:
            result, seconds = guarded(lambda: run_job(app, program_id, as_of.date() if as_of else None,
                                                      engine=engine.value, kinds=kinds))
        except EngineUnavailable as exc:
            fail(f"--engine {engine.value}: {exc}")
            raise
    console.print(f"analytics run for [bold]{program}[/bold] as of {result.as_of} ({engine.value})")
    console.print(run_table(result))
    members = result.documents.get("segments", {}).get("members")
    if members:
        console.print("segments: " + ", ".join(f"{code} {count:,}" for code, count in members.items()),
                      soft_wrap=True)
    console.print(run_summary(result, seconds), soft_wrap=True)


# -- results -----------------------------------------------------------------------------------------
def headlines(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The overview's headline numbers as rows: metric, value (a number or null), text (readable)."""
    rows: list[dict[str, Any]] = []

    def add(metric: str, value: float | bool | None, text: str) -> None:
        rows.append({"metric": metric, "value": None if value is None else float(value), "text": text})

    repeat = document.get("repeat_customer_rate") or {}
    add("repeat_customer_rate", repeat.get("repeat_rate"),
        f"{_pct(repeat.get('repeat_rate'))} ({repeat.get('repeat_buyers', 0):,} of {repeat.get('buyers', 0):,} "
        f"buyers ordered more than once)")
    frequency = document.get("purchase_frequency") or {}
    add("purchase_frequency", frequency.get("frequency"),
        f"{_num(frequency.get('frequency'))} orders per buyer ({frequency.get('orders', 0):,} orders)")
    aov = document.get("average_order_value") or {}
    add("average_order_value_minor", aov.get("aov_minor"),
        f"{_minor(aov.get('aov_minor'))} (net of returns, minor units)")
    retention = document.get("revenue_retention") or {}
    span = f"{retention.get('base_period')} → {retention.get('next_period')}" if retention else "no base year yet"
    add("gross_revenue_retention", retention.get("grr"), f"{_pct(retention.get('grr'))} ({span})")
    add("net_revenue_retention", retention.get("nrr"), f"{_pct(retention.get('nrr'))} ({span})")
    negative = retention.get("net_negative_churn")
    add("net_negative_churn", negative, "–" if negative is None else "yes" if negative else "no")
    quarters = document.get("churn_by_quarter") or []
    last = quarters[-1] if quarters else {}
    add("churn_rate_last_quarter", last.get("churn_rate"),
        f"{_pct(last.get('churn_rate'))} ({last.get('churned', 0):,} of {last.get('at_risk', 0):,}, quarter from "
        f"{last.get('period')})" if last else "–")
    participation = document.get("participation") or {}
    overall = (participation.get("overall") or [{}])[0]
    days = participation.get("window_days")
    add("participation_enrolled", overall.get("enrolled"), f"{overall.get('enrolled', 0):,} people enrolled")
    add("participation_active", overall.get("active"),
        f"{overall.get('active', 0):,} ({_pct(overall.get('active_rate'))}) active in the last {days} days")
    add("participation_redeeming", overall.get("redeeming"),
        f"{overall.get('redeeming', 0):,} ({_pct(overall.get('redeeming_rate'))}) redeeming in the last {days} days")
    score = document.get("nps") or {}
    add("nps", score.get("score"), f"{_num(score.get('score'), 1)} (CI {_num(score.get('ci_low'), 1)} – "
        f"{_num(score.get('ci_high'), 1)}, {score.get('n', 0):,} answers)")
    add("nps_ci_low", score.get("ci_low"), _num(score.get("ci_low"), 1))
    add("nps_ci_high", score.get("ci_high"), _num(score.get("ci_high"), 1))
    gain = document.get("retention_gain") or {}
    if "unavailable" in gain or not gain:
        add("retention_gain_value_minor", None, f"unavailable: {gain.get('unavailable', 'no data')}")
    else:
        add("retention_gain_value_minor", gain.get("total_uplift_minor"),
            f"{_minor(gain.get('total_uplift_minor'))} over {gain.get('horizon_years')} years for "
            f"+{(gain.get('gain') or 0) * 100:.0f} pts retention ({_pct(gain.get('retention_rate'))} → "
            f"{_pct(gain.get('retention_after'))}; {_minor(gain.get('uplift_per_customer_minor'))} per customer)")
    roi = document.get("program_roi") or {}
    status = roi.get("status") or ("unavailable" if "unavailable" in roi else "–")
    detail = roi.get("message") or roi.get("unavailable")
    add("program_roi_status", None, f"{status}: {detail}" if detail else status)
    add("program_roi", roi.get("roi"), _pct(roi.get("roi")))
    add("program_net_benefit_minor", roi.get("net_benefit_minor"), _minor(roi.get("net_benefit_minor")))
    add("program_incremental_margin_minor", roi.get("incremental_margin_minor"),
        _minor(roi.get("incremental_margin_minor")))
    add("program_cost_minor", roi.get("cost_minor"), _minor(roi.get("cost_minor")))
    return rows


def _overview(service: AnalyticsService, program_id: int, day: date) -> Document:
    return _report().overview(service.frames(program_id, day), day, service.settings(program_id),
                           service.context.money(program_id))


@analytics_app.command("metrics")
def metrics(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
            output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """The program's vital signs over the trailing twelve months: repeat rate, purchase frequency,
    order value, revenue retention, churn, participation, NPS, the value of retention, ROI."""
    chosen = _format(output_format, output)
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
    return lambda service, program_id, day: _report().cohorts(service.frames(program_id, day), day, engine.value)


@analytics_app.command("cohorts")
def cohorts(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False, engine: EngineOpt =
            EngineName.DUCKDB, output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """Cohort retention: organizations by the month of their first order, and the share still
    ordering (and their revenue against month 0) each month after."""
    chosen = _format(output_format, output)
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
    return lambda service, program_id, day: _report().rfm(service.frames(program_id, day), day, engine.value)


@analytics_app.command("rfm")
def rfm(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
        engine: EngineOpt = EngineName.DUCKDB, output_format: FormatOpt = Format.TABLE,
        output: OutputOpt = None) -> None:
    """Recency, frequency and monetary scores (1–5) per organization and the segment they put it in."""
    chosen = _format(output_format, output)
    result = obtain(program, "rfm", as_of, stored, _rfm(engine))
    rows = result.document["rows"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading("RFM", program), soft_wrap=True)
    console.print(_table(result.document.get("segments", []), [("segment", "segment"), ("organizations",
                  "organizations"), ("monetary_minor", "monetary (minor)")], title="segments"))
    console.print(_table(rows, [("org", "organization"), ("segment", "segment"), ("rfm_cell", "RFM"),
                                ("recency_days", "recency (days)"), ("frequency", "orders"),
                                ("monetary_minor", "monetary (minor)"), ("last_order_on", "last order")]))


def _clv(horizon_days: int | None, model: ClvModel | None) -> Live:
    def compute(service: AnalyticsService, program_id: int, day: date) -> Document:
        settings = _settings(service, program_id, {"clv_horizon_days": horizon_days,
                                                   "clv_model": model.value if model else None},
                             {"clv_horizon_days": "--horizon-days", "clv_model": "--model"})
        return _report().clv(service.frames(program_id, day), day, settings)

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
    chosen = _format(output_format, output)
    result = obtain(program, "clv", as_of, stored, _clv(horizon_days, model))
    if stored:
        _same(result.document, {("horizon_days", "--horizon-days"): horizon_days,
                                ("model", "--model"): model.value if model else None})
    rows = result.document["rows"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    doc = result.document
    console.print(result.heading("lifetime value", program), soft_wrap=True)
    params = ", ".join(f"{k} {v:.4g}" for k, v in (doc.get("params") or {}).items())
    console.print(f"model {doc['model']}, horizon {doc['horizon_days']} days, margin {_pct(doc.get('margin'))}; "
                  f"total predicted {_minor(doc.get('total_clv'))} (minor units); converged: "
                  f"{_cell(doc.get('converged'))}; parameters {params}", soft_wrap=True)
    console.print(_table(rows, [("org", "organization"), ("clv", "CLV (minor)"), ("p_alive", "P(alive)"),
                                ("expected_purchases", "expected purchases"), ("expected_aov", "expected AOV"),
                                ("historical_clv", "realised margin")]))


def _health(service: AnalyticsService, program_id: int, day: date) -> Document:
    return _report().health(service.frames(program_id, day), day, service.settings(program_id))


@analytics_app.command("health")
def health(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
           output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """Health score (0–100) per organization and what each component contributes, lowest first."""
    chosen = _format(output_format, output)
    result = obtain(program, "health", as_of, stored, _health)
    rows = result.document["rows"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading(f"health score {result.document.get('version')}", program), soft_wrap=True)
    parts = [c for c in (rows[0] if rows else {}) if c.endswith("_contribution")]
    console.print(_table(rows, [("org", "organization"), ("health_score", "score"),
                                *((c, c.removesuffix("_contribution").replace("_", " ")) for c in parts)]))
    backtest = result.document.get("backtest") or {}
    if "unavailable" in backtest:
        console.print(f"backtest unavailable: {backtest['unavailable']}", soft_wrap=True)
    elif backtest:
        console.print(f"backtest at {backtest.get('cutoff')}: AUC {_num(backtest.get('auc'), 3)} against churn in "
                      f"the next {backtest.get('horizon_days')} days, top-decile lift "
                      f"{_num(backtest.get('top_decile_lift'))} ({backtest.get('churners')} churners of "
                      f"{backtest.get('organizations')})", soft_wrap=True)


# -- churn -------------------------------------------------------------------------------------------
def _churn_live(service: AnalyticsService, program_id: int, day: date) -> Document:
    """As the run scores it: the value at risk of a profile is each organization's predicted CLV."""
    frames = service.frames(program_id, day)
    settings = service.settings(program_id)
    try:
        lifetime = _report().clv(frames, day, settings)
    except NotEnoughData:
        value = None
    else:
        value = pl.DataFrame([(r["org"], round(r["clv"] or 0)) for r in lifetime["rows"]],
                             schema={"org": pl.String(), "value_minor": pl.Int64()}, orient="row")
    return _report().churn(frames, day, settings, value)


def churn_rows(document: Mapping[str, Any], top: int | None) -> list[dict[str, Any]]:
    rows = sorted(document["rows"], key=lambda r: (-(r.get("p_churn") or 0.0), r["org"]))
    return rows if top is None else rows[:top]


@churn_app.command("score")
def churn_score(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
                top: Annotated[int | None, typer.Option("--top", min=1, help="Only the N riskiest (a table "
                                                        f"shows {TABLE_LIMIT} unless given)")] = None,
                output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """p(churn) within the horizon per organization, the top reasons in words, the intervention
    for the main one; and the profiles at-risk organizations share."""
    chosen = _format(output_format, output)
    result = obtain(program, "churn", as_of, stored, _churn_live)
    doc = result.document
    if chosen is not Format.TABLE:
        write_rows(churn_rows(doc, top), chosen, output)
        return
    rows = churn_rows(doc, top or TABLE_LIMIT)
    console.print(result.heading("churn risk", program) + f": {doc['at_risk']:,} of {len(doc['rows']):,} "
                  f"organizations at p ≥ {doc['threshold']} within {doc['horizon_days']} days (rule "
                  f"{doc['rule']}, trained on {doc['training_rows']:,} rows)", soft_wrap=True)
    table = Table("organization", "p(churn)", "reasons", "intervention")
    for row in rows:
        table.add_row(row["org"], f"{row['p_churn']:.3f}", "; ".join(row.get("reason_texts") or []),
                      row.get("intervention") or "")
    console.print(table)
    if len(rows) < len(doc["rows"]):
        console.print(f"{len(rows)} of {len(doc['rows']):,} shown (--top N, or --format csv for all)")
    if doc.get("profiles"):
        console.print(_table(doc["profiles"], [("profile", "profile"), ("organizations", "organizations"),
                                               ("value_at_risk_minor", "value at risk"),
                                               ("expected_loss_minor", "expected loss"),
                                               ("mean_p_churn", "mean p"), ("main_reasons", "main reasons"),
                                               ("intervention", "intervention")], title="at-risk profiles"))
    else:
        console.print("no organization is at risk, so there are no profiles")


METHODS = (("model", "model"), ("baseline_logistic_regression", "logistic regression"))
CLASSIFIER = ("auc", "precision_at_10pct", "brier", "rows", "positives")


def evaluation_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"method": key, **{m: document[key].get(m) for m in CLASSIFIER}} for key, _ in METHODS]


@churn_app.command("evaluate")
def churn_evaluate(program: ProgramArg, as_of: AsOfOpt = None, stored: StoredOpt = False,
                   horizon_days: Annotated[int | None, typer.Option("--horizon-days", help="Churn within this "
                                                                    "many days (default: the settings')")] = None,
                   output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """A time-split test: train on earlier cutoffs, predict the last one whose outcome is known, and
    compare the model with logistic regression on the same rows (AUC, precision@10%, Brier, calibration)."""
    chosen = _format(output_format, output)

    def live(service: AnalyticsService, program_id: int, day: date) -> Document:
        overrides = {"churn_horizon_days": horizon_days} if horizon_days is not None else None
        return service.evaluate_churn(program_id, day, overrides)

    result = obtain(program, "churn", as_of, stored, live)
    doc = result.document
    if stored:
        doc = doc.get("evaluation") or {}
        if "unavailable" in doc or not doc:
            fail(f"the stored churn result has no evaluation: {doc.get('unavailable', 'not made')}")
        _same(doc, {("horizon_days", "--horizon-days"): horizon_days})
    rows = evaluation_rows(doc)
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading("churn model evaluation", program) + f": trained on cutoffs "
                  f"{', '.join(doc['train_cutoffs'])}, tested at {doc['test_cutoff']}, horizon "
                  f"{doc['horizon_days']} days, rule {doc['rule']}", soft_wrap=True)
    table = Table("", *(label for _, label in METHODS))
    for metric, label, shown in (("auc", "AUC", 3), ("precision_at_10pct", "precision@10%", 3),
                                 ("brier", "Brier", 4), ("rows", "rows", 0), ("positives", "churned", 0)):
        table.add_row(label, *(_num(doc[key].get(metric), shown) for key, _ in METHODS))
    console.print(table)
    bins: dict[tuple[float, float], dict[str, dict[str, Any]]] = {}
    for key, _ in METHODS:
        for b in doc[key].get("reliability", []):
            bins.setdefault((b["lower"], b["upper"]), {})[key] = b
    reliability = Table("predicted", *(f"{label}: {what}" for _, label in METHODS
                                       for what in ("n", "mean p", "observed")), title="reliability")
    for (lower, upper), found in sorted(bins.items()):
        cells = []
        for key, _ in METHODS:
            b = found.get(key)
            cells += [f"{b['count']:,}", _num(b["mean_predicted"], 3), _num(b["observed_rate"], 3)] if b else \
                ["", "", ""]
        reliability.add_row(f"{lower:.1f}–{upper:.1f}", *cells)
    console.print(reliability)


# -- recommendations ---------------------------------------------------------------------------------
LevelOpt = Annotated[Level | None, typer.Option("--level", help="sku or category (default: the settings')")]
KOpt = Annotated[int | None, typer.Option("--k", help="Recommendations per organization (default: the settings')")]
REC_OPTIONS = {"recommend_level": "--level", "recommend_k": "--k"}


@recommend_app.command("list")
def recommend_list(program: ProgramArg,
                   org: Annotated[str | None, typer.Option("--org", help="One organization's external id")] = None,
                   level: LevelOpt = None, k: KOpt = None, as_of: AsOfOpt = None, stored: StoredOpt = False,
                   output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """What each organization is likely to buy next and why (peers, items bought together)."""
    chosen = _format(output_format, output)
    overrides = {"recommend_level": level.value if level else None, "recommend_k": k}

    def live(service: AnalyticsService, program_id: int, day: date) -> Document:
        settings = _settings(service, program_id, overrides, REC_OPTIONS)
        return _report().recommendations(service.frames(program_id, day), day, settings,
                                      service.context.tier_progress(program_id))

    result = obtain(program, "recommendations", as_of, stored, live)
    doc = result.document
    if stored:
        _same(doc, {("level", "--level"): overrides["recommend_level"], ("k", "--k"): k})
    rows = [r for r in doc["rows"] if org is None or r["org"] == org]
    if org is not None and not rows and all(s["org"] != org for s in doc.get("upsell", [])):
        fail(f"--org: no recommendations for {org!r} (unknown organization, or nothing to recommend)")
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading(f"recommendations ({doc['level']}, top {doc['k']})", program), soft_wrap=True)
    limit = None if org is not None else TABLE_LIMIT * doc["k"]
    console.print(_table(rows[:limit], [("org", "organization"), ("rank", "#"), ("item", "item"),
                                        ("category", "category"), ("score", "score"), ("reason", "why")]))
    if limit is not None and len(rows) > limit:
        console.print(f"{limit} of {len(rows):,} rows shown (--org ID, or --format csv for all)")
    if org is not None:
        signals = [s for s in doc.get("upsell", []) if s["org"] == org]
        if signals:
            console.print(_table(signals, [("signal", "signal"), ("category", "category"), ("reason", "why")],
                                 title="up-sell signals"))


def recommendation_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method: hit@n, precision, recall, and how many times the model's hit rate it is
    outdone by (model ÷ this method, null for the model itself)."""
    ratios = {"global_popularity": document.get("ratio_vs_global", {}),
              "segment_popularity": document.get("ratio_vs_segment", {})}
    rows = []
    for method, found in document["methods"].items():
        row: dict[str, Any] = {"method": method}
        row.update({f"hit_at_{at}": value for at, value in found["hit"].items()})
        row["precision"], row["recall"] = found["precision"], found["recall"]
        row.update({f"model_ratio_at_{at}": ratios.get(method, {}).get(at) for at in found["hit"]})
        rows.append(row)
    return rows


@recommend_app.command("evaluate")
def recommend_evaluate(program: ProgramArg, level: LevelOpt = None, k: KOpt = None, as_of: AsOfOpt = None,
                       output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """A holdout test (always live): train on the lines before the holdout, then check how often the
    model's top picks are what organizations bought for the first time, against global and segment
    popularity."""
    chosen = _format(output_format, output)

    def live(service: AnalyticsService, program_id: int, day: date) -> Document:
        overrides = {key: value for key, value in (("recommend_level", level.value if level else None),
                                                   ("recommend_k", k)) if value is not None}
        return service.evaluate_recommendations(program_id, day, overrides)

    result = obtain(program, "recommendations", as_of, False, live)
    doc = result.document
    rows = recommendation_rows(doc)
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(result.heading(f"recommendation evaluation ({doc['level']}, k {doc['k']})", program)
                  + f": holdout from {doc['split_date']}, {doc['organizations']:,} organizations bought "
                  f"{_num(doc['new_items_per_org'])} new items each on average ({doc['items']:,} items)",
                  soft_wrap=True)
    ats = list(doc["methods"]["model"]["hit"])
    table = Table("method", *(f"hit@{at}" for at in ats), "precision", "recall",
                  *(f"model ÷ this hit@{at}" for at in ats))
    for row in rows:
        table.add_row(row["method"].replace("_", " "), *(_pct(row[f"hit_at_{at}"]) for at in ats),
                      _pct(row["precision"]), _pct(row["recall"]),
                      *(_num(row[f"model_ratio_at_{at}"]) for at in ats))
    console.print(table)


# -- settings and segments as files ------------------------------------------------------------------
def _fail_on(path: Path, text: str, exc: AllegianceError, prefix: str = "") -> None:
    """Exit 2 naming the field path and, when it can be found in the file, its line."""
    field = exc.field or ""
    line = line_of(text, field.removeprefix(prefix)) if field else None
    where = f"{path}:{line}" if line else str(path)
    message = exc.message.removeprefix(f"{field}: ") if field else exc.message
    fail(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def _mapping(document: Any, file: Path) -> dict[str, Any]:
    if not isinstance(document, dict):
        fail(f"{file}: expected a mapping (key: value lines) at the top, not {type(document).__name__}")
        raise AssertionError("unreachable")
    return document


@settings_app.command("show")
def settings_show(program: ProgramArg,
                  as_json: Annotated[bool, typer.Option("--json", help="JSON instead of YAML")] = False) -> None:
    """The settings in force (every field, defaults filled in), ready to edit and apply."""
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            found = uow.analytics.settings_document(program_id)
    if as_json:
        print(json.dumps(found["settings"], indent=2))
        return
    print(f"# analytics settings of {program}, version {found['version']} (0: the defaults)")
    print(yaml.safe_dump(found["settings"], sort_keys=False, allow_unicode=True), end="")


@settings_app.command("apply")
def settings_apply(program: ProgramArg,
                   file: Annotated[Path, typer.Argument(help="Settings as YAML or JSON (see `settings show`)",
                                                        exists=True, dir_okay=False, readable=True)]) -> None:
    """Validate and save the file as the next version; the next run (and live results) use it."""
    document, text = load_document(file)
    document = _mapping(document, file)
    with application() as app:
        program_id = program_id_for(app, program)
        try:
            with app.write() as uow:
                saved = uow.analytics.save_settings(program_id, document, by="cli")
        except AllegianceError as exc:
            _fail_on(file, text, exc)
            raise
    console.print(f"analytics settings version [bold]{saved['version']}[/bold] saved")


@segments_app.command("apply")
def segments_apply(program: ProgramArg,
                   file: Annotated[Path, typer.Argument(help="Segments as YAML or JSON: segments: [{code, name, "
                                                        "conditions: [{field, op, value}]}]", exists=True,
                                                        dir_okay=False, readable=True)]) -> None:
    """Validate and save the definitions; membership is recomputed at once when a run exists."""
    document, text = load_document(file)
    document = _mapping(document, file)
    with application() as app:
        program_id = program_id_for(app, program)
        try:
            with app.write() as uow:
                saved = uow.analytics.save_segments(program_id, document, by="cli")
        except AllegianceError as exc:
            _fail_on(file, text, exc, prefix="segments.")
            raise
    members = saved["members"]
    counts = ", ".join(f"{code} {count:,}" for code, count in members.items()) if members else \
        "membership follows with the first `allegiance analytics run`"
    console.print(f"segments version [bold]{saved['version']}[/bold] saved ({len(saved['segments'])} segments): "
                  f"{counts}", soft_wrap=True)


def _condition(condition: Mapping[str, Any]) -> str:
    value = condition.get("value")
    shown = "" if value is None and condition["op"] == "exists" else f" {json.dumps(value)}"
    return f"{condition['field']} {condition['op']}{shown}"


@segments_app.command("list")
def segments_list(program: ProgramArg, output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """The saved segments with their conditions and how many organizations the latest facts put in each."""
    chosen = _format(output_format, output)
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            version, segments = uow.analytics.segments(program_id)
            rows: list[dict[str, Any]] = []
            for segment in segments.segments:
                try:
                    count: int | None = len(uow.analytics.segment_members(program_id, segment.code)["organizations"])
                except NotFound:
                    count = None
                rows.append({"code": segment.code, "name": segment.name,
                             "conditions": [_condition(c.model_dump(mode="json")) for c in segment.conditions],
                             "members": count})
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    if not rows:
        console.print("no segments yet: `allegiance analytics segments apply PROGRAM FILE`")
        return
    table = Table("code", "name", "conditions (all must hold)", "members", title=f"segments version {version}",
                  title_justify="left")
    for row in rows:
        table.add_row(row["code"], row["name"], "\n".join(row["conditions"]) or "(every organization)",
                      "no run yet" if row["members"] is None else f"{row['members']:,}")
    console.print(table)


@segments_app.command("members")
def segments_members(program: ProgramArg, code: Annotated[str, typer.Argument(help="The segment's code")],
                     output_format: FormatOpt = Format.TABLE, output: OutputOpt = None) -> None:
    """The organizations the latest facts put in a segment, with those facts."""
    chosen = _format(output_format, output)
    with application() as app:
        program_id = program_id_for(app, program)
        with app.read() as uow:
            found = guarded(lambda: uow.analytics.segment_members(program_id, code))
    rows = found["organizations"]
    if chosen is not Format.TABLE:
        write_rows(rows, chosen, output)
        return
    console.print(f"segment [bold]{code}[/bold]: {len(rows):,} organizations (facts as of {found['as_of']})")
    console.print(_table(rows, [("org", "organization"), ("kind", "kind"), ("tier", "tier"),
                                ("rfm_segment", "RFM"), ("churn_risk", "p(churn)"), ("health_score", "health"),
                                ("clv", "CLV"), ("revenue_12m", "revenue 12m"), ("roles", "roles")]))


# -- one organization --------------------------------------------------------------------------------
def _pairs(row: Mapping[str, Any] | None, fields: Iterable[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    for key, label in fields:
        table.add_row(label, _cell((row or {}).get(key)))
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
        console.print(Panel(_table(found["recommendations"], [("rank", "#"), ("item", "item"),
                                                              ("category", "category"), ("reason", "why")]),
                            title="recommendations", title_align="left"))
    if found.get("upsell"):
        console.print(Panel(_table(found["upsell"], [("signal", "signal"), ("category", "category"),
                                                     ("reason", "why")]), title="up-sell signals", title_align="left"))


def demo_run(app: Allegiance, program_id: int, *, just_loaded: bool) -> str | None:
    """After `allegiance demo` loads: run the job once (when just loaded, or nothing is stored yet)
    so the dashboard has data. Returns the line to print (None when nothing was run)."""
    if not just_loaded:
        with app.read() as uow:
            try:
                uow.analytics.latest(program_id, "overview")
                return None
            except NotFound:
                pass
    try:
        result, seconds = run_job(app, program_id)
    except (AllegianceError, ValueError, RuntimeError) as exc:  # the demo still serves without analytics
        return f"[yellow]analytics run failed[/yellow]: {exc} (retry: allegiance analytics run demo)"
    return run_summary(result, seconds)


def _report() -> ModuleType:
    """The computations, imported when a command computes (not when the CLI starts)."""
    from allegiance.analytics import report

    return report
