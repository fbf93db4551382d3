"""What every ``allegiance analytics`` command shares: the Typer apps, options, number formatting,
the table / csv / json / parquet output, and reading a result live or from the stored snapshot."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import polars as pl
import typer
from rich.table import Table

from allegiance.analytics.results import Document, NotEnoughData
from allegiance.analytics.service import AnalyticsService
from allegiance.analytics.settings import AnalyticsSettings, AnalyticsSettingsInvalid, parse_settings
from allegiance.analytics.sql import EngineUnavailable
from allegiance.cli.common import application, console, fail, guarded, program_id_for
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
def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def fmt_num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def fmt_minor(value: float | None) -> str:
    """An amount in minor units of the order currency, rounded (the currency is the program's)."""
    return "–" if value is None else f"{round(value):,}"


def fmt_cell(value: Any) -> str:
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
        return "; ".join(fmt_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def rich_table(rows: Iterable[Mapping[str, Any]], columns: Iterable[tuple[str, str]],
               title: str | None = None) -> Table:
    chosen = list(columns)
    table = Table(*(header for _, header in chosen), title=title, title_justify="left")
    for row in rows:
        table.add_row(*(fmt_cell(row.get(key)) for key, _ in chosen))
    return table


# -- output: table, or the rows as csv / json / parquet ------------------------------------------------
def resolve_format(chosen: Format, output: Path | None) -> Format:
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


def stored_snapshot(service: AnalyticsService, program_id: int, kind: str, day: date | None) -> dict[str, Any]:
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
                found = guarded(lambda: stored_snapshot(service, program_id, kind, day))
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


def settings_with(service: AnalyticsService, program_id: int, overrides: Mapping[str, Any],
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


def require_same(document: Mapping[str, Any], wanted: Mapping[tuple[str, str], Any]) -> None:
    """A stored result was made with its settings; an option asking for others cannot be served from it."""
    for (key, option), value in wanted.items():
        if value is not None and document.get(key) != value:
            fail(f"{option}: the stored result used {document.get(key)!r}; drop --stored to compute it with {value!r}")




def load_report() -> ModuleType:
    """The computations, imported when a command computes (not when the CLI starts)."""
    from allegiance.analytics import report

    return report
