"""Bulk import of business events: a chunk of rows per write transaction, crash-safe by construction.

Why it is safe to kill at any moment and run again: each chunk commits atomically (its events and
its one ``events.imported`` outbox row together), and an event is deduplicated by
``(program_id, source_id)`` under a unique constraint, so a re-run skips what committed and
imports the rest. Nothing is half-written.

Why it is fast: per chunk, one query resolves the organizations' external ids, one the
participants', one finds the source ids already stored, and one ``executemany`` inserts the new
events — instead of the API path's handful of queries per event. Schemas are compiled once;
subjects are cached across chunks. Fingerprints are the API's (``IncomingEvent.fingerprint``), so an
event sent through the API and then imported is a duplicate, not a conflict.

When the program has rules (``rules.is_idle`` is False) every row goes through
``EventsService.record_one`` instead, so the rules → postings pipeline runs in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from allegiance.bootstrap import Allegiance, UnitOfWork
from allegiance.events.model import IncomingEvent, Outcome
from allegiance.events.rows import PayloadChecker, RowError, parse_row
from allegiance.events.service import EventConflict
from allegiance.kernel.errors import AllegianceError
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit

CONFLICT_REASON = "was already recorded with other content"
IMPORTED_TOPIC = "events.imported"
KEEP_REJECTS = 100
CACHE_LIMIT = 200_000
K = TypeVar("K")
V = TypeVar("V")


class Reject(NamedTuple):
    line: int
    field: str
    reason: str
    source_id: str = ""


@dataclass
class ImportSummary:
    """What an import did. ``rejected`` lists every reject, unless an ``on_reject`` callback took
    them (then only the first ``KEEP_REJECTS``); ``rejected_count`` always counts all of them.
    Conflicts (same source id, other content) are rejects too, and also counted in ``conflicts``."""

    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: list[Reject] = field(default_factory=list)
    rejected_count: int = 0
    chunks: int = 0

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicates + self.rejected_count


class _Bounded(Generic[K, V]):
    """A dict that forgets its oldest entries past ``limit``: memory stays flat on huge programs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data: dict[K, V] = {}

    def lookup(self, keys: Iterable[K], fetch: Callable[[list[K]], Iterable[tuple[K, V]]]) -> dict[K, V]:
        """The values of ``keys``: cached ones, and the rest fetched in one go (absent keys stay absent)."""
        found: dict[K, V] = {}
        missing = []
        for key in keys:
            value = self.data.get(key)
            if value is None:
                missing.append(key)
            else:
                found[key] = value
        if missing:
            for key, value in fetch(missing):
                found[key] = value
                if len(self.data) >= self.limit:
                    del self.data[next(iter(self.data))]
                self.data[key] = value
        return found


class Subjects:
    """Organization and participant ids of one program, fetched a chunk at a time and cached
    across chunks (ids and external ids of both never change once created). Only hits are cached:
    an organization created during a long import is found by the next chunk."""

    def __init__(self, program_id: int, limit: int = CACHE_LIMIT) -> None:
        self.program_id = program_id
        self._orgs_by_ext: _Bounded[str, int] = _Bounded(limit)
        self._orgs_by_id: _Bounded[int, int] = _Bounded(limit)
        self._people_by_ext: _Bounded[str, tuple[int, int]] = _Bounded(limit)
        self._people_by_id: _Bounded[int, int] = _Bounded(limit)  # participant id → its organization
        self._chunk: tuple[dict[str, int], dict[int, int], dict[str, tuple[int, int]], dict[int, int]] = (
            {}, {}, {}, {})

    def _fetch(self, conn: Connection, columns: list[Any], key: Any) -> Callable[[list[Any]], Iterator[Any]]:
        def fetch(keys: list[Any]) -> Iterator[Any]:
            for part in _slices(keys):
                query = select(*columns).where(key.table.c.program_id == self.program_id, key.in_(part))
                for row in conn.execute(query):
                    yield (row[0], row[1]) if len(columns) == 2 else (row[0], (row[1], row[2]))
        return fetch

    def load(self, conn: Connection, events: list[IncomingEvent]) -> None:
        """Look up every subject the chunk's events name: one query per kind of reference."""
        o, p = t.organizations.c, t.participants.c
        self._chunk = (
            self._orgs_by_ext.lookup({e.organization_external_id for e in events if e.organization_id is None
                                      and e.organization_external_id is not None},
                                     self._fetch(conn, [o.external_id, o.id], o.external_id)),
            self._orgs_by_id.lookup({e.organization_id for e in events if e.organization_id is not None},
                                    self._fetch(conn, [o.id, o.id], o.id)),
            self._people_by_ext.lookup({e.participant_external_id for e in events if e.participant_id is None
                                        and e.participant_external_id is not None},
                                       self._fetch(conn, [p.external_id, p.id, p.organization_id], p.external_id)),
            self._people_by_id.lookup({e.participant_id for e in events if e.participant_id is not None},
                                      self._fetch(conn, [p.id, p.organization_id], p.id)),
        )

    def resolve(self, event: IncomingEvent) -> tuple[int | None, int | None] | RowError:
        """(organization id, participant id), with the same rules and messages as the API path."""
        orgs_by_ext, orgs_by_id, people_by_ext, people_by_id = self._chunk
        org = None
        if event.organization_id is not None:
            org = orgs_by_id.get(event.organization_id)
            if org is None:
                return RowError("organization_id", f"organization {event.organization_id} does not exist")
        elif event.organization_external_id is not None:
            org = orgs_by_ext.get(event.organization_external_id)
            if org is None:
                return RowError("organization_external_id",
                                f"no organization with external_id {event.organization_external_id!r}")
        if event.participant_id is not None:
            field_name, person, person_org = "participant_id", event.participant_id, people_by_id.get(
                event.participant_id)
            if person_org is None:
                return RowError(field_name, f"participant {event.participant_id} does not exist")
        elif event.participant_external_id is not None:
            field_name, found = "participant_external_id", people_by_ext.get(event.participant_external_id)
            if found is None:
                return RowError(field_name, f"no participant with external_id {event.participant_external_id!r}")
            person, person_org = found
        else:
            return org, None
        if org is not None and org != person_org:
            return RowError(field_name, "the participant does not belong to that organization")
        return person_org, person


class _Chunk:
    """Collects one chunk's outcomes; they reach the summary only once its transaction committed."""

    def __init__(self) -> None:
        self.accepted = 0
        self.duplicates = 0
        self.conflicts = 0
        self.rejects: list[Reject] = []

    def reject(self, line: int, field_name: str, reason: str, source_id: str = "") -> None:
        self.rejects.append(Reject(line, field_name, reason, source_id))

    def same_or_conflict(self, line: int, event: IncomingEvent, fingerprint: str, stored: str) -> None:
        if stored == fingerprint:
            self.duplicates += 1
        else:
            self.conflicts += 1
            self.reject(line, "source_id", CONFLICT_REASON, event.source_id)


def import_rows(app: Allegiance, program_id: int, rows: Iterable[tuple[int, Mapping[str, Any] | RowError]], *,
                chunk_size: int = 2000, on_progress: Callable[[ImportSummary], None] | None = None,
                on_reject: Callable[[Reject], None] | None = None) -> ImportSummary:
    """Import ``(line, row)`` pairs (as the readers yield them) into one program; see the module doc."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    summary = ImportSummary()
    with app.read() as uow:
        checker = PayloadChecker(event_schemas(uow.conn, program_id))
    subjects = Subjects(program_id)
    with_rules = not app.rules.is_idle(program_id)
    iterator = iter(rows)
    while batch := list(islice(iterator, chunk_size)):
        parsed, chunk = _parse(batch)
        with app.write() as uow:
            if with_rules:
                _record_through_rules(uow, program_id, parsed, chunk)
            else:
                _insert_fast(uow, program_id, parsed, checker, subjects, chunk)
        _add(summary, chunk, on_reject)
        if on_progress is not None:
            on_progress(summary)
    return summary


def event_schemas(conn: Connection, program_id: int) -> dict[str, dict[str, Any]]:
    et = t.event_types
    rows = conn.execute(select(et.c.name, et.c.payload_schema).where(et.c.program_id == program_id))
    return {row.name: dict(row.payload_schema) for row in rows}


def existing_events(conn: Connection, program_id: int, source_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """source id → (event id, fingerprint) of those already stored, in one query per 5,000 ids."""
    e = t.events
    found: dict[str, tuple[int, str]] = {}
    for part in _slices(list(source_ids)):
        query = select(e.c.source_id, e.c.id, e.c.payload_hash).where(e.c.program_id == program_id,
                                                                      e.c.source_id.in_(part))
        for source_id, event_id, fingerprint in conn.execute(query):
            found[source_id] = (event_id, fingerprint)
    return found


def _slices(values: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _parse(batch: list[tuple[int, Mapping[str, Any] | RowError]]) -> tuple[list[tuple[int, IncomingEvent]], _Chunk]:
    chunk = _Chunk()
    parsed = []
    for line, raw in batch:
        event = raw if isinstance(raw, RowError) else parse_row(raw)
        if isinstance(event, RowError):
            source_id = raw.get("source_id") if isinstance(raw, Mapping) else None
            chunk.reject(line, event.field, event.reason, source_id if isinstance(source_id, str) else "")
        else:
            parsed.append((line, event))
    return parsed, chunk


def _add(summary: ImportSummary, chunk: _Chunk, on_reject: Callable[[Reject], None] | None) -> None:
    summary.chunks += 1
    summary.accepted += chunk.accepted
    summary.duplicates += chunk.duplicates
    summary.conflicts += chunk.conflicts
    summary.rejected_count += len(chunk.rejects)
    chunk.rejects.sort()
    if on_reject is None:
        summary.rejected.extend(chunk.rejects)
        return
    for reject in chunk.rejects:
        on_reject(reject)
    summary.rejected.extend(chunk.rejects[:max(0, KEEP_REJECTS - len(summary.rejected))])


def _insert_fast(uow: UnitOfWork, program_id: int, parsed: list[tuple[int, IncomingEvent]],
                 checker: PayloadChecker, subjects: Subjects, chunk: _Chunk) -> None:
    conn = uow.conn
    existing = existing_events(conn, program_id, {event.source_id for _, event in parsed})
    candidates: list[tuple[int, IncomingEvent, str]] = []
    for line, event in parsed:
        fingerprint = event.fingerprint()
        stored = existing.get(event.source_id)
        if stored is not None:
            chunk.same_or_conflict(line, event, fingerprint, stored[1])
        elif (error := checker.check(event)) is not None:
            chunk.reject(line, error.field, error.reason, event.source_id)
        else:
            candidates.append((line, event, fingerprint))
    subjects.load(conn, [event for _, event, _ in candidates])
    now = uow.event_store.clock.now()
    first: dict[str, tuple[int, str]] = {}  # source id → (line, fingerprint): first occurrence wins
    values = []
    for line, event, fingerprint in candidates:
        seen = first.get(event.source_id)
        if seen is not None:
            chunk.same_or_conflict(line, event, fingerprint, seen[1])
            continue
        subject = subjects.resolve(event)
        if isinstance(subject, RowError):
            chunk.reject(line, subject.field, subject.reason, event.source_id)
            continue
        first[event.source_id] = (line, fingerprint)
        values.append({
            "program_id": program_id, "source_id": event.source_id, "type": event.type,
            "organization_id": subject[0], "participant_id": subject[1], "occurred_at": event.occurred_at,
            "payload": event.payload, "payload_hash": fingerprint, "received_at": now,
        })
    if not values:
        return
    inserted = _insert_ignoring_existing(conn, values)
    chunk.accepted += len(inserted)
    if len(inserted) < len(values):  # another importer committed some of them meanwhile
        lost = [v for v in values if v["source_id"] not in inserted]
        stored_now = existing_events(conn, program_id, [v["source_id"] for v in lost])
        for value in lost:
            line = first[value["source_id"]][0]
            stored = stored_now.get(value["source_id"])
            if stored is None:
                chunk.reject(line, "source_id", "could not be stored; run the import again", value["source_id"])
            elif stored[1] == value["payload_hash"]:
                chunk.duplicates += 1
            else:
                chunk.conflicts += 1
                chunk.reject(line, "source_id", CONFLICT_REASON, value["source_id"])
    if inserted:
        ids = inserted.values()
        emit(conn, uow.event_store.clock, program_id, IMPORTED_TOPIC,
             {"first_event_id": min(ids), "last_event_id": max(ids), "count": len(inserted)}, None)


def _insert_ignoring_existing(conn: Connection, values: list[dict[str, Any]]) -> dict[str, int]:
    """One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING: source id → new event id of the rows
    this transaction actually inserted. On PostgreSQL a concurrent importer of the same source id
    makes the row wait for the other transaction and then be skipped, instead of failing the chunk;
    rows go in source-id order there so two importers take the unique-index locks in one order."""
    if conn.dialect.name == "postgresql":
        statement: Any = pg_insert(t.events)
        values = sorted(values, key=lambda v: v["source_id"])
    else:
        statement = sqlite_insert(t.events)
    statement = statement.on_conflict_do_nothing(index_elements=["program_id", "source_id"]).returning(
        t.events.c.source_id, t.events.c.id)
    return {source_id: event_id for source_id, event_id in conn.execute(statement, values)}


def _record_through_rules(uow: UnitOfWork, program_id: int, parsed: list[tuple[int, IncomingEvent]],
                          chunk: _Chunk) -> None:
    """The slower path for programs with rules: the full pipeline per event, a savepoint each, so
    a bad row is rejected without losing the rest of the chunk."""
    ids = []
    for line, event in parsed:
        for attempt in (1, 2):
            try:
                with uow.conn.begin_nested():
                    recorded = uow.events.record_one(program_id, event)
            except EventConflict:
                chunk.conflicts += 1
                chunk.reject(line, "source_id", CONFLICT_REASON, event.source_id)
            except AllegianceError as exc:
                chunk.reject(line, exc.field or "row", exc.message, event.source_id)
            except IntegrityError:
                if attempt == 1:  # a concurrent importer stored it first: now it is a duplicate
                    continue
                raise
            else:
                if recorded.outcome is Outcome.ACCEPTED:
                    chunk.accepted += 1
                    ids.append(recorded.event_id)
                else:
                    chunk.duplicates += 1
            break
    if ids:
        emit(uow.conn, uow.event_store.clock, program_id, IMPORTED_TOPIC,
             {"first_event_id": min(ids), "last_event_id": max(ids), "count": len(ids)}, None)
