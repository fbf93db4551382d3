"""``allegiance finance``: announce expiring points (a daily job) and export the ledger for finance."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from allegiance.cli.common import application, console, fail, guarded, program_id_for
from allegiance.kernel.periods import day_range

finance_app = typer.Typer(help="Liability and finance: expiring-soon announcements, reconciling exports.",
                          no_args_is_help=True)
POSTING_COLUMNS = ("transaction_id", "chain_seq", "created_at", "kind", "memo", "rule", "rule_set_version",
                   "partner_code", "reverses_id", "event_id", "hash", "posting_id", "account_id", "address",
                   "account_kind", "organization_id", "participant_id", "unit", "amount")
TOTAL_COLUMNS = ("account_id", "address", "account_kind", "organization_id", "participant_id", "unit", "opening",
                 "movement", "closing")
BATCH = 10_000


class Format(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"


def _programs(app: Any, program: str | None) -> list[int]:
    if program is not None:
        return [program_id_for(app, program)]
    from allegiance.storage import tables as t

    with app.read() as uow:
        return list(uow.conn.execute(t.programs.select().with_only_columns(t.programs.c.id)
                                     .order_by(t.programs.c.id)).scalars())


@finance_app.command("expiring")
def expiring(
    days: Annotated[int, typer.Option(help="Announce lots expiring within this many days")] = 30,
    program: Annotated[str | None, typer.Option(help="One program's slug (default: every program)")] = None,
) -> None:
    """Write one ``points.expiring_soon`` event per organization, unit and expiry day to the outbox;
    idempotent (run it daily: what was announced before is not announced again)."""
    table = Table("program", "found", "announced")
    with application() as app:
        for program_id in _programs(app, program):
            def run(program_id: int = program_id) -> dict[str, Any]:
                with app.write() as uow:
                    return uow.finance.notify_expiring(program_id, days)

            result = guarded(run)
            table.add_row(str(program_id), str(result["found"]), str(result["announced"]))
    console.print(table)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def _write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(_plain(row))
            count += 1
    return count


INTEGER = ("transaction_id", "chain_seq", "rule_set_version", "reverses_id", "event_id", "posting_id", "account_id",
           "organization_id", "participant_id", "amount", "opening", "movement", "closing")


def _schema(columns: tuple[str, ...]) -> Any:
    import pyarrow as pa

    def kind(column: str) -> Any:
        if column == "created_at":
            return pa.timestamp("us", tz="UTC")
        return pa.int64() if column in INTEGER else pa.string()

    return pa.schema([(column, kind(column)) for column in columns])


def _write_parquet(path: Path, rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> int:
    """Streamed in row groups of BATCH rows, so memory stays flat at any ledger size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _schema(columns)
    count = 0
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(str(path), schema) as writer:
        for row in rows:
            batch.append({c: row.get(c) for c in columns})
            count += 1
            if len(batch) >= BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch.clear()
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return count


@finance_app.command("export")
def export(
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day (UTC), included")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (UTC), included")],
    output: Annotated[Format, typer.Option("--format", help="csv or parquet")] = Format.CSV,
    out: Annotated[Path, typer.Option(help="Directory to write postings.* and account_totals.* into")] = Path("."),
    program: Annotated[str | None, typer.Option(help="The program's slug (default: the only program)")] = None,
) -> None:
    """Export the period's postings (with transaction kind, memo, rule version and hash) and per-account
    totals (opening + movement = closing = the ledger balance at the period's end)."""
    with application() as app:
        programs = _programs(app, program)
        if len(programs) != 1:
            fail("name the program with --program" if programs else "there is no program yet")
        program_id = programs[0]
        first, last = guarded(lambda: day_range(start.date(), end.date()))
        out.mkdir(parents=True, exist_ok=True)
        write = _write_csv if output is Format.CSV else _write_parquet
        suffix = output.value
        with app.read() as uow:
            postings = write(out / f"postings.{suffix}", uow.finance.export_postings(program_id, first, last),
                             POSTING_COLUMNS)
        with app.read() as uow:
            totals = write(out / f"account_totals.{suffix}", uow.finance.export_totals(program_id, first, last),
                           TOTAL_COLUMNS)
    console.print(f"wrote {postings} postings and {totals} account totals to {out}")
