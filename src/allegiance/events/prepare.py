"""Rows of a bulk file → chunks of ready-to-store values: all the per-row work that needs no database.

Shape, time, payload JSON, fingerprint and schema validation are done here, once per row, so that
the writer (``storage.bulk_events``) is left with what only it can do: subjects, duplicates, the
insert. That split is what lets a second process prepare chunk k+1 while the writer stores chunk
k (``events.producer``); ``prepare_pairs`` is also called in-process for small files and for rows
that are not in a file.

A prepared row is a plain tuple (cheap to pickle between the processes), laid out as the ``P_*``
indices say. ``P_ERROR`` holds the schema error as ``(field, reason)``, or ``None``: whether it
matters depends on the database (a row already stored is a duplicate or a conflict, whatever its
payload says now), so the writer decides. Shape errors are final: they go to ``rejects`` at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from allegiance.events.model import event_fingerprint
from allegiance.events.rows import COLUMNS, PayloadChecker, RowError, parse_general, typical, unknown_columns
from allegiance.kernel.hashing import canonical_json_bytes

(P_LINE, P_SOURCE_ID, P_FINGERPRINT, P_ERROR, P_ORG_ID, P_ORG_EXT, P_PERSON_ID, P_PERSON_EXT, P_TYPE,
 P_OCCURRED_AT, P_PAYLOAD) = range(11)
Prepared = tuple[Any, ...]
Reject = tuple[int, str, str, str]  # line, field, reason, source id ("" when unknown)
NUL_IN_JSON = b"\\u0000"


@dataclass(slots=True)
class PreparedChunk:
    """One chunk: its ready rows in file order, its final rejects, and how many input rows it covers."""

    rows: list[Prepared] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    count: int = 0


def utc_text(at: datetime) -> str:
    """What the events table stores on SQLite (``UTCDateTime``: naive UTC, ``YYYY-MM-DD
    HH:MM:SS.ffffff``); PostgreSQL reads the same text as a UTC timestamp."""
    if at.utcoffset():
        at = at.astimezone(UTC)
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


def times(at: datetime, text: Any = None) -> tuple[str, str]:
    """``(at.isoformat(), utc_text(at))`` — the fingerprint's spelling and the stored one — by
    slicing strings for the usual whole-second UTC time (4x faster). ``text`` is what ``at`` was
    parsed from, if anything: when it is already that exact spelling it is reused as is."""
    if not (type(text) is str and len(text) == 25 and text.endswith("+00:00") and text[10] == "T"
            and text[4] == text[7] == "-" and text[13] == text[16] == ":" and text.isascii()):
        text = at.isoformat()
        if not (len(text) == 25 and text.endswith("+00:00")):
            return text, utc_text(at)
    return text, f"{text[:10]} {text[11:19]}.000000"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _has_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def ready(line: int, source_id: str, type_: str, at: datetime, payload: dict[str, Any], org_id: int | None,
          org_ext: str | None, person_id: int | None, person_ext: str | None,
          checker: PayloadChecker, at_text: Any = None) -> Prepared | RowError:
    """The prepared row of an event whose shape is valid (see the module doc for the layout);
    ``at_text`` is the text ``at`` was parsed from, if any (see ``times``)."""
    try:
        payload_json = canonical_json_bytes(payload)
    except (TypeError, ValueError) as exc:  # a payload built in Python, or a lone surrogate
        return RowError("payload", f"cannot be stored as JSON: {exc}")
    if NUL_IN_JSON in payload_json and _has_nul(payload):
        return RowError("payload", "must not contain a NUL character (\\u0000)")
    iso, stored_at = times(at, at_text)
    fingerprint = event_fingerprint(type_, iso, org_id or org_ext, person_id or person_ext, payload_json)
    error = checker.check_payload(type_, payload)
    return (line, source_id, fingerprint, None if error is None else (error.field, error.reason), org_id, org_ext,
            person_id, person_ext, type_, stored_at, payload_json.decode())


def _general(line: int, raw: Mapping[str, Any], checker: PayloadChecker) -> Prepared | RowError:
    folded = checker.fold(raw)
    if isinstance(folded, RowError):
        return folded
    raw = folded
    if not COLUMNS.issuperset(raw):
        return unknown_columns(raw)
    event = parse_general(raw)
    if isinstance(event, RowError):
        return event
    return ready(line, event.source_id, event.type, event.occurred_at, event.payload, event.organization_id,
                 event.organization_external_id, event.participant_id, event.participant_external_id, checker)


def _add(chunk: PreparedChunk, line: int, result: Prepared | RowError, source_id: Any) -> None:
    if isinstance(result, RowError):
        chunk.rejects.append((line, result.field, result.reason, source_id if isinstance(source_id, str) else ""))
    else:
        chunk.rows.append(result)


def prepare_pairs(batch: Iterable[tuple[int, Mapping[str, Any] | RowError]], checker: PayloadChecker) -> PreparedChunk:
    """Prepare ``(line, row)`` pairs as the readers yield them (a row may already be a ``RowError``)."""
    chunk = PreparedChunk()
    rows, rejects = chunk.rows, chunk.rejects
    for line, raw in batch:
        chunk.count += 1
        if isinstance(raw, RowError):
            rejects.append((line, raw.field, raw.reason, ""))
            continue
        fields = typical(raw.get("source_id"), raw.get("type"), raw.get("occurred_at"), raw.get("payload"),
                         raw.get("organization_external_id"), raw.get("participant_external_id"),
                         raw.get("organization_id"), raw.get("participant_id")) \
            if COLUMNS.issuperset(raw) else None
        if fields is None:
            _add(chunk, line, _general(line, raw, checker), raw.get("source_id"))
            continue
        source_id, type_, at, payload, org, person = fields
        result = ready(line, source_id, type_, at, payload, None, org, None, person, checker, raw.get("occurred_at"))
        if type(result) is tuple:
            rows.append(result)
        else:
            _add(chunk, line, result, source_id)
    return chunk


def prepare_columns(first_line: int, columns: Mapping[str, Sequence[Any]], checker: PayloadChecker) -> PreparedChunk:
    """Prepare a batch of columns (the Parquet reader's), row ``i`` being on line ``first_line + i``:
    the same outcome as ``prepare_pairs`` on the rows, without building a dict per typical row."""
    if not COLUMNS.issuperset(columns):
        names = list(columns)
        return prepare_pairs(((first_line + i, dict(zip(names, values, strict=True)))
                              for i, values in enumerate(zip(*columns.values(), strict=True))), checker)
    size = len(next(iter(columns.values()), ()))
    nothing = [None] * size
    chunk = PreparedChunk(count=size)
    rows = chunk.rows
    wanted = ("source_id", "type", "occurred_at", "payload", "organization_external_id", "participant_external_id",
              "organization_id", "participant_id")
    for line, values in enumerate(zip(*(columns.get(name, nothing) for name in wanted), strict=True),
                                  start=first_line):
        fields = typical(*values)
        if fields is None:
            raw = {name: column[line - first_line] for name, column in columns.items()}
            _add(chunk, line, _general(line, raw, checker), raw.get("source_id"))
            continue
        source_id, type_, at, payload, org, person = fields
        result = ready(line, source_id, type_, at, payload, None, org, None, person, checker, values[2])
        if type(result) is tuple:
            rows.append(result)
        else:
            _add(chunk, line, result, source_id)
    return chunk
