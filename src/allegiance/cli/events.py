"""``allegiance events import``: bulk-load business events from CSV, JSON Lines or Parquet.

Safe to interrupt and re-run: each chunk commits on its own and events are deduplicated by source
id, so a second run skips what the first stored. Bad rows never stop the import: they go to a
rejects CSV (line, field, reason, source_id) and the command exits 2 so scripts notice. A large
file is read and checked by a second process while this one writes (``--no-parallel`` to not).
"""

from __future__ import annotations

import csv
import time
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from allegiance.cli.common import application, console, err, fail, program_id_for
from allegiance.events.producer import ProducerFailed
from allegiance.events.readers import UnreadableFile, open_rows
from allegiance.events.rows import known_zone
from allegiance.storage.bulk_events import CHUNK_SIZE, ImportSummary, Reject, import_file

events_app = typer.Typer(help="Business events: bulk import from CSV, JSON Lines or Parquet.", no_args_is_help=True)
SHOWN_REJECTS = 5


class FileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} rows/s", style="progress.data.speed")


class _RejectsFile:
    """Created on the first reject only; a clean run removes the stale file of an earlier run, so
    the file next to the input always describes the latest import."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[str] | None = None
        self.writer: csv.DictWriter[str] | None = None

    def write(self, reject: Reject) -> None:
        if self.writer is None:
            self.handle = self.path.open("w", encoding="utf-8", newline="")
            self.writer = csv.DictWriter(self.handle, fieldnames=["line", "field", "reason", "source_id"])
            self.writer.writeheader()
        self.writer.writerow(reject._asdict())

    def __enter__(self) -> _RejectsFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.handle is not None:
            self.handle.close()
        elif kind is None and self.path.is_file():
            self.path.unlink()


@events_app.command("import")
def import_events(
    file: Annotated[Path, typer.Argument(help="Events file: .csv, .jsonl or .parquet", show_default=False)],
    program: Annotated[str, typer.Option(help="Program slug")],
    file_format: Annotated[FileFormat | None, typer.Option(
        "--format", help="File format (default: from the file's extension)")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per database transaction")] = CHUNK_SIZE,
    rejects: Annotated[Path | None, typer.Option(
        help="CSV of rejected rows (line, field, reason, source_id); default FILE.rejects.csv")] = None,
    parallel: Annotated[bool | None, typer.Option(
        "--parallel/--no-parallel", show_default=False,
        help="Read and check the file in a second process while this one writes (default: for files of 4 MiB "
             "or more)")] = None,
    timezone: Annotated[str | None, typer.Option(
        "--timezone", show_default=False,
        help="Time zone of occurred_at values written without an offset, e.g. Europe/Berlin (default: such "
             "rows are rejected)")] = None,
) -> None:
    """Import events (columns: source_id, type, occurred_at, organization_external_id or
    organization_id, participant_external_id or participant_id, and payload as a JSON object and/or
    one payload.FIELD column per payload field, typed by the event type's schema). Already imported source
    ids are skipped, so re-running after a failure or an interruption is safe. Exits 2 if any row
    was rejected (the others are imported) or the file cannot be read."""
    rejects_path = rejects or Path(f"{file}.rejects.csv")
    if timezone is not None and not known_zone(timezone):
        fail(f"--timezone: {timezone!r} is not a time zone name (such as Europe/Berlin, Europe/Istanbul, "
             f"Asia/Seoul or UTC)")
        return
    try:
        source = open_rows(file, file_format.value if file_format else None)
    except UnreadableFile as exc:
        fail(exc.message)
        return
    with application() as app, source:
        program_id = program_id_for(app, program)
        progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn(), console=console,
                            disable=not console.is_terminal)
        started = time.perf_counter()
        try:
            with progress, _RejectsFile(rejects_path) as rejects_file:
                task = progress.add_task(f"importing {file.name}", total=source.total)
                summary = import_file(app, program_id, source, chunk_size=chunk_size, parallel=parallel,
                                      zone=timezone,
                                      on_progress=lambda done: progress.update(task, completed=done.rows),
                                      on_reject=rejects_file.write)
        except UnreadableFile as exc:
            fail(f"{exc.message}. The chunks before it were imported; fix the file and run the same "
                 f"command again (what is already stored is skipped).")
            return
        except ProducerFailed as exc:  # its own error is above, on stderr
            fail(f"{exc}. The chunks before it were imported; run the same command again (what is already "
                 f"stored is skipped), or with --no-parallel.", code=1)
            return
    _report(summary, time.perf_counter() - started, rejects_path)


def _report(summary: ImportSummary, seconds: float, rejects_path: Path) -> None:
    table = Table("", Column("count", justify="right"), title="events import")
    table.add_row("accepted", f"{summary.accepted:,}")
    table.add_row("duplicates", f"{summary.duplicates:,}")
    table.add_row("rejected", f"{summary.rejected_count:,}" + (
        f" ({summary.conflicts:,} conflicts)" if summary.conflicts else ""))
    table.add_row("seconds", f"{seconds:.2f}")
    table.add_row("rows/s", f"{summary.rows / seconds if seconds > 0 else 0:,.0f}")
    console.print(table)
    if not summary.rejected_count:
        return
    for reject in summary.rejected[:SHOWN_REJECTS]:
        err.print(f"line {reject.line}: {reject.field}: {reject.reason}", markup=False, highlight=False)
    more = summary.rejected_count - min(SHOWN_REJECTS, len(summary.rejected))
    err.print(f"{summary.rejected_count:,} rows rejected{f' ({more:,} more not shown)' if more else ''}; "
              f"all of them are in {rejects_path}", markup=False, highlight=False)
    raise typer.Exit(2)
