"""``allegiance analytics run``: the analytics job (nightly from cron, or by hand), and the run
`allegiance demo` does once so the dashboard has data."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from allegiance.analytics.results import KINDS, RunResult
from allegiance.analytics.sql import EngineUnavailable, spark_unavailable_reason
from allegiance.bootstrap import Allegiance
from allegiance.cli.analytics.common import (
    AsOfOpt,
    EngineName,
    EngineOpt,
    ProgramArg,
    analytics_app,
)
from allegiance.cli.common import application, console, fail, guarded, program_id_for
from allegiance.kernel.errors import AllegianceError, NotFound


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
