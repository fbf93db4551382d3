"""Write a synthetic program to disk as Parquet and/or JSON Lines, in bounded memory.

Both formats carry the same flat columns so an importer can read either. Payloads differ per
event type, so Parquet stores them as a JSON string column rather than a sparse union of structs;
JSON Lines stores them as objects. Events are consumed once, in chunks, and each chunk goes to
every requested format, so a 100,000-organization program never sits in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from .model import EventRecord, SyntheticProgram

FORMATS = ("parquet", "jsonl")
EVENT_COLUMNS = (
    "source_id",
    "type",
    "organization_external_id",
    "participant_external_id",
    "occurred_at",
    "payload",
)
_STR = pa.string()
_DATE = pa.date32()
ORGANIZATION_SCHEMA = pa.schema([
    ("external_id", _STR), ("name", _STR), ("kind", _STR), ("parent_external_id", _STR),
    ("segment", _STR), ("country", _STR), ("locale", _STR), ("status", _STR),
    ("joined_on", _DATE), ("left_on", _DATE),
])
PARTICIPANT_SCHEMA = pa.schema([
    ("external_id", _STR), ("organization_external_id", _STR), ("name", _STR),
    ("email", _STR), ("role", _STR), ("is_org_admin", pa.bool_()), ("locale", _STR),
    ("time_zone", _STR), ("birthday", _DATE), ("preferred_channel", _STR), ("status", _STR),
    ("left_on", _DATE),
])
EVENT_SCHEMA = pa.schema([
    ("source_id", _STR), ("type", _STR), ("organization_external_id", _STR),
    ("participant_external_id", _STR), ("occurred_at", pa.timestamp("us", tz="UTC")),
    ("payload", _STR),
])


# Compact and UTF-8 as-is: Korean and Turkish names stay readable and files stay small. One
# shared encoder, since json.dumps with options builds a new one per call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def iter_event_rows(program: SyntheticProgram) -> Iterator[dict[str, Any]]:
    """Events as flat, JSON-ready dicts: occurred_at as ISO-8601 with offset, payload a dict.

    This is exactly one JSON Lines record per event; the Parquet file holds the same values with
    occurred_at as a UTC timestamp and payload as a JSON string.
    """
    return map(_event_row, program.events())


def _event_row(e: EventRecord) -> dict[str, Any]:
    return {
        "source_id": e.source_id,
        "type": e.type,
        "organization_external_id": e.organization_external_id,
        "participant_external_id": e.participant_external_id,
        "occurred_at": e.occurred_at.isoformat(),
        "payload": e.payload,
    }


Columns = dict[str, list[Any]]


def _record_columns(records: list[Any], names: Sequence[str]) -> Columns:
    return {n: [getattr(r, n) for r in records] for n in names}


def _record_lines(records: list[Any], names: Sequence[str], _columns: Columns | None,
                  ) -> Iterator[str]:
    for r in records:
        yield _dumps({n: _json_value(getattr(r, n)) for n in names})


def _event_columns(events: list[EventRecord], names: Sequence[str]) -> Columns:
    columns = _record_columns(events, names[:-1])
    columns["payload"] = [_dumps(e.payload) for e in events]
    return columns


def _event_lines(events: list[EventRecord], names: Sequence[str], columns: Columns | None,
                 ) -> Iterator[str]:
    # Payloads are the bulk of each line: reuse the JSON already made for Parquet if there is.
    payloads = columns["payload"] if columns else [_dumps(e.payload) for e in events]
    for e, payload in zip(events, payloads, strict=True):
        head = _dumps({
            "source_id": e.source_id,
            "type": e.type,
            "organization_external_id": e.organization_external_id,
            "participant_external_id": e.participant_external_id,
            "occurred_at": e.occurred_at.isoformat(),
        })
        yield f'{head[:-1]},"payload":{payload}}}'


def _write(out_dir: Path, name: str, records: Iterable[Any], schema: pa.Schema,
           formats: Sequence[str], chunk_rows: int,
           to_columns: Callable[[list[Any], Sequence[str]], Columns],
           to_lines: Callable[[list[Any], Sequence[str], Columns | None], Iterator[str]]) -> int:
    """Stream `records` into `name`.parquet / `name`.jsonl; files appear only when complete."""
    names = schema.names
    paths = {fmt: out_dir / f"{name}.{fmt}" for fmt in formats}
    partial = {fmt: path.with_name(path.name + ".partial") for fmt, path in paths.items()}
    parquet = pq.ParquetWriter(partial["parquet"], schema) if "parquet" in formats else None
    jsonl: IO[str] | None = None
    if "jsonl" in formats:
        jsonl = open(partial["jsonl"], "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    count = 0
    try:
        iterator = iter(records)
        while chunk := list(islice(iterator, chunk_rows)):
            count += len(chunk)
            columns = to_columns(chunk, names) if parquet is not None else None
            if parquet is not None:
                parquet.write_table(pa.Table.from_pydict(columns, schema=schema))
            if jsonl is not None:
                jsonl.writelines(line + "\n" for line in to_lines(chunk, names, columns))
    except BaseException:
        _close(parquet, jsonl)
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    _close(parquet, jsonl)
    for fmt, path in paths.items():
        os.replace(partial[fmt], path)
    return count


def _close(parquet: pq.ParquetWriter | None, jsonl: IO[str] | None) -> None:
    if parquet is not None:
        parquet.close()
    if jsonl is not None:
        jsonl.close()


def write_dataset(program: SyntheticProgram, out_dir: Path,
                  formats: Sequence[str] = FORMATS, chunk_rows: int = 50_000) -> dict[str, int]:
    """Write organizations, participants and events; return the row count of each.

    Generation runs once: events are pulled from `program.events()` a chunk at a time and each
    chunk is written to every requested format.
    """
    chosen = tuple(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {list(formats)}")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "organizations": _write(out, "organizations", program.organizations,
                                ORGANIZATION_SCHEMA, chosen, chunk_rows, _record_columns,
                                _record_lines),
        "participants": _write(out, "participants", program.participants, PARTICIPANT_SCHEMA,
                               chosen, chunk_rows, _record_columns, _record_lines),
        "events": _write(out, "events", program.events(), EVENT_SCHEMA, chosen, chunk_rows,
                         _event_columns, _event_lines),
    }
