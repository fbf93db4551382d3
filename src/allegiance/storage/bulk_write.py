"""The bulk importer's statements: insert a chunk of events, find the events already stored.

Both go to the driver as plain values through the unit of work's own connection (so, its
transaction): SQLAlchemy's per-row parameter processing cost a fifth of an import. Inserts say
``ON CONFLICT (program_id, source_id) DO NOTHING``: a source id stored before (by an earlier run,
the API or a concurrent importer) is skipped, never an error, and the writer classifies what was
skipped afterwards. Rows go in source-id order: neighbouring keys share index pages, and on
PostgreSQL two importers take the unique-index locks in one order, so they cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from allegiance.storage import tables as t
from allegiance.storage.bulk_subjects import slices

SQLITE_CACHE_KIB = 65_536  # the unique index on source ids is written at random places: keep it in memory
# Checkpoint the WAL every 20,000 pages (~80 MB) rather than SQLite's 1,000 while importing: chunks
# rewrite the same index pages, which are then copied to the database once instead of after nearly
# every commit (measured at 1 M rows: 18% less CPU per row, system time 6.1 -> 4.0 us).
SQLITE_IMPORT_CHECKPOINT = 20_000
SQLITE_DEFAULT_CHECKPOINT = 1_000
COLUMNS = ("program_id", "source_id", "type", "organization_id", "participant_id", "occurred_at", "payload",
           "payload_hash", "received_at")
SQLITE_INSERT = (f"INSERT INTO {t.events.name} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
                 "ON CONFLICT (program_id, source_id) DO NOTHING")
POSTGRES_INSERT = (
    f"INSERT INTO {t.events.name} ({', '.join(COLUMNS)}) "
    "SELECT %(program_id)s, s, ty, o, p, at AT TIME ZONE 'UTC', pl::jsonb, h, %(received_at)s::timestamp "
    "AT TIME ZONE 'UTC' FROM unnest("
    "%(source_id)b::varchar[], %(type)b::varchar[], %(organization_id)b::bigint[], %(participant_id)b::bigint[], "
    "%(occurred_at)b::text[]::timestamp[], %(payload)b::text[], %(payload_hash)b::varchar[]) "
    "AS r(s, ty, o, p, at, pl, h) ORDER BY s ON CONFLICT (program_id, source_id) DO NOTHING RETURNING source_id, id")
# The same, for a program with rules: rows keep the file's order (and so get ids in it), as the
# per-event path gave them; ``bulk_rules`` runs the rules in that order.
POSTGRES_INSERT_IN_ORDER = POSTGRES_INSERT.replace(") AS r(s, ty, o, p, at, pl, h) ORDER BY s",
                                                   ") WITH ORDINALITY AS r(s, ty, o, p, at, pl, h, n) ORDER BY n")
assert POSTGRES_INSERT_IN_ORDER != POSTGRES_INSERT
# A row to insert, in COLUMNS order; times are ``prepare.utc_text`` (naive UTC) on both databases.
Row = tuple[int, str, str, int | None, int | None, str, str, str, str]
_SOURCE_ID = itemgetter(1)


@dataclass
class Inserted:
    """What one insert did: how many rows it stored, their id range, the source ids it skipped
    (``lost``: stored before), and which event ids are its own (``ours``)."""

    count: int = 0
    first_id: int = 0
    last_id: int = 0
    lost: list[str] = field(default_factory=list)
    above: int | None = None  # SQLite: every id above this one is ours
    returned: set[int] = field(default_factory=set)  # PostgreSQL: the ids RETURNING named

    def ours(self, event_id: int) -> bool:
        return event_id > self.above if self.above is not None else event_id in self.returned


def _driver(conn: Connection) -> Any:
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver


def insert_events(conn: Connection, rows: list[Row]) -> Inserted:
    """Insert one chunk's new events (unique source ids, one program) in the caller's transaction."""
    rows.sort(key=_SOURCE_ID)
    if conn.dialect.name == "sqlite":
        return _insert_sqlite(conn, rows)
    return _insert_postgres(conn, rows)


def _insert_sqlite(conn: Connection, rows: list[Row]) -> Inserted:
    """One executemany. SQLite has one writer (the chunk holds BEGIN IMMEDIATE) and gives a new row
    the largest id + 1, so the rows inserted are the ids above the largest before."""
    with closing(_driver(conn).cursor()) as cursor:
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_IMPORT_CHECKPOINT}")
        before = cursor.execute(f"SELECT max(id) FROM {t.events.name}").fetchone()[0] or 0
        cursor.executemany(SQLITE_INSERT, rows)
        count, first_id, last_id = cursor.execute(
            f"SELECT count(*), min(id), max(id) FROM {t.events.name} WHERE id > ?", (before,)).fetchone()
        done = Inserted(count, first_id or 0, last_id or 0, above=before)
        if count < len(rows):
            ours = {sid for (sid,) in cursor.execute(f"SELECT source_id FROM {t.events.name} WHERE id > ?",
                                                     (before,))}
            done.lost = [row[1] for row in rows if row[1] not in ours]
        return done


def insert_events_in_order(conn: Connection, rows: list[Row]) -> list[int] | None:
    """Insert one chunk's new events (unique source ids, one program) in the given order; their
    ids in that order, or None when some source id turned out to be stored already (a concurrent
    importer): the caller then redoes the chunk event by event."""
    if not rows:
        return []
    if conn.dialect.name == "sqlite":
        with closing(_driver(conn).cursor()) as cursor:
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            before = cursor.execute(f"SELECT max(id) FROM {t.events.name}").fetchone()[0] or 0
            cursor.executemany(SQLITE_INSERT, rows)
            ids = {sid: event_id for event_id, sid in cursor.execute(
                f"SELECT id, source_id FROM {t.events.name} WHERE id > ?", (before,))}
    else:
        columns = dict(zip(COLUMNS, zip(*rows, strict=True), strict=True))
        params: dict[str, Any] = {name: list(columns[name]) for name in COLUMNS[1:-1]}
        params.update(program_id=rows[0][0], received_at=rows[0][-1])
        with _driver(conn).cursor() as cursor:
            cursor.execute(POSTGRES_INSERT_IN_ORDER, params)
            ids = dict(cursor.fetchall())
    if len(ids) < len(rows):
        return None
    return [ids[row[1]] for row in rows]


def import_done(conn: Connection) -> None:
    """Back to SQLite's checkpoint interval (on the connection at hand: one, in a single-threaded
    import; a pooled connection that keeps the import's interval only lets its WAL grow larger)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_DEFAULT_CHECKPOINT}")


def _insert_postgres(conn: Connection, rows: list[Row]) -> Inserted:
    """INSERT ... SELECT FROM unnest(arrays) ... RETURNING: nine parameters whatever the chunk size
    (a multi-row VALUES list made psycopg parse thousands of placeholders per chunk), sent in binary
    (%b) so no element is escaped as text. A source id that a concurrent importer is inserting makes
    its row wait for that transaction and then be skipped, instead of failing the chunk."""
    columns = dict(zip(COLUMNS, zip(*rows, strict=True), strict=True))
    params: dict[str, Any] = {name: list(columns[name]) for name in COLUMNS[1:-1]}
    params.update(program_id=rows[0][0], received_at=rows[0][-1])
    with _driver(conn).cursor() as cursor:
        cursor.execute(POSTGRES_INSERT, params)
        inserted: dict[str, int] = dict(cursor.fetchall())
    done = Inserted(len(inserted), returned=set(inserted.values()))
    if inserted:
        done.first_id, done.last_id = min(done.returned), max(done.returned)
    if len(inserted) < len(rows):
        done.lost = [row[1] for row in rows if row[1] not in inserted]
    return done


def existing_events(conn: Connection, program_id: int, source_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """source id → (event id, fingerprint) of those already stored, one query per 5,000 ids."""
    wanted = list(source_ids)
    found: dict[str, tuple[int, str]] = {}
    if not wanted:
        return found
    sqlite = conn.dialect.name == "sqlite"
    with closing(_driver(conn).cursor()) as cursor:
        for part in slices(wanted):
            if sqlite:
                cursor.execute(f"SELECT source_id, id, payload_hash FROM {t.events.name} WHERE program_id = ? "
                               f"AND source_id IN ({', '.join('?' * len(part))})", (program_id, *part))
            else:
                cursor.execute(f"SELECT source_id, id, payload_hash FROM {t.events.name} WHERE program_id = %s "
                               "AND source_id = ANY(%s)", (program_id, part))
            for source_id, event_id, fingerprint in cursor.fetchall():
                found[source_id] = (event_id, fingerprint)
    return found
