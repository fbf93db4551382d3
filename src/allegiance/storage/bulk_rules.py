"""Bulk import for programs with rules: the rules → postings pipeline runs for every new event, in
the chunk's transaction, in the file's order — the outcome of ``EventsService.record_one`` row by
row, at a fraction of the cost.

Per chunk (``_in_bulk``):

1. Rows are parsed and prepared as the rule-less importer does (shape, fingerprint, payload
   schema), their subjects resolved with one query per kind of reference (``bulk_subjects``), and
   the source ids already stored looked up in one query. Each row then gets, in file order, the
   outcome ``record_one`` would give it: reject, duplicate, conflict, or new.
2. The new events are inserted in one statement, in file order (ids as event by event), and their
   organizations and people read in one query each.
3. What the events will ask for one by one is read and locked in a few queries (``_prefetch``):
   their organizations' accounts, the counters their caps, ladders and contests can touch, the
   pending awards their release events can release.
4. For each new event, in file order, ``EventsService.process`` — the very steps ``record_one``
   runs after its insert — against ports whose writes wait in memory (``chunk_writes``): ids are
   allocated up front, locks are held to the commit, and the chunk's transactions, postings,
   lots, balances, chain head, awards, counters, tier credits and outbox rows are written by one
   ``flush`` in about fifteen bulk statements. What does not change within a chunk (program
   settings, the organization tree) is read once.

   The tiers observer runs after each event as through the API, on ``chunk_tiers.BufferedTiers``
   (window totals kept current in memory, daily totals written by the flush).

The chunk commits as one transaction, as before: its events, postings and outbox rows together
or not at all. A chunk goes event by event instead (``_one_by_one``, the former path: a savepoint
per row) when one of its events may convert a referral (a qualifying order of an organization
still waiting: the conversion records derived events as it lands), when a concurrent importer
stored one of its source ids first, or when the pipeline refused one of its events (any
``AllegianceError``): that chunk is rolled back and redone, so every row gets the same outcome
as through the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from allegiance.bootstrap import Allegiance, UnitOfWork
from allegiance.events.model import IncomingEvent, Outcome
from allegiance.events.prepare import (
    P_ERROR,
    P_FINGERPRINT,
    P_LINE,
    P_OCCURRED_AT,
    P_PAYLOAD,
    P_SOURCE_ID,
    P_TYPE,
    Prepared,
    ready,
    utc_text,
)
from allegiance.events.rows import PayloadChecker, RowError, parse_row
from allegiance.events.service import EventConflict, EventsService
from allegiance.kernel.errors import AllegianceError
from allegiance.ledger.service import LedgerService
from allegiance.programs.model import ProgramSettings
from allegiance.rules.evaluate import MISSING, read
from allegiance.rules.model import Stepped
from allegiance.rules.service import RulesService
from allegiance.rules.settle import CounterKey, period_key, subject_of
from allegiance.storage import bulk_subjects
from allegiance.storage import tables as t
from allegiance.storage.bulk_subjects import Subjects
from allegiance.storage.bulk_summary import (
    CONFLICT_REASON,
    ImportSummary,
    OnReject,
    Progress,
    Tally,
    add,
    emit_imported,
)
from allegiance.storage.bulk_write import Row, existing_events, import_done, insert_events_in_order
from allegiance.storage.chunk_ports import BufferedEvents, BufferedLedger, BufferedRules
from allegiance.storage.chunk_tiers import BufferedTiers
from allegiance.storage.chunk_writes import ChunkWrites, Redo
from allegiance.tiers.service import TiersService

Batch = list[tuple[int, Mapping[str, Any] | RowError]]


def import_through_rules(app: Allegiance, program_id: int, rows: Iterable[tuple[int, Mapping[str, Any] | RowError]],
                          chunk_size: int, on_progress: Progress, on_reject: OnReject, *,
                          zone: str | None = None) -> ImportSummary:
    """Import ``(line, row)`` pairs into a program whose events have rules to run; see the module doc."""
    summary = ImportSummary()
    checker = PayloadChecker(_schemas(app, program_id), zone)
    subjects = Subjects(program_id, bulk_subjects.CACHE_LIMIT)
    iterator = iter(rows)
    while batch := list(islice(iterator, chunk_size)):
        try:
            tally = _in_bulk(app, program_id, batch, checker, subjects)
        except Redo:
            tally = None
        if tally is None:
            tally = _one_by_one(app, program_id, batch, checker)
        add(summary, tally, on_reject, on_progress)
    if app.db.is_sqlite:
        with app.write() as uow:
            import_done(uow.conn)
    return summary


def _schemas(app: Allegiance, program_id: int) -> dict[str, dict[str, Any]]:
    et = t.event_types
    with app.read() as uow:
        rows = uow.conn.execute(select(et.c.name, et.c.payload_schema).where(et.c.program_id == program_id))
        return {row.name: dict(row.payload_schema) for row in rows}


# -- in bulk ------------------------------------------------------------------------------------
def _in_bulk(app: Allegiance, program_id: int, batch: Batch, checker: PayloadChecker,
             subjects: Subjects) -> Tally | None:
    """One chunk as ``record_one`` would store it row by row (module doc); None if it must go
    event by event. Raises ``Redo`` (its transaction rolled back) when it turns out it must."""
    tally = Tally()
    with app.write() as uow:
        chunked = (uow.tiers, uow.referrals)  # run in the chunk, or asked below
        if not all(observer.is_idle(program_id) for observer in uow.events.observers if observer not in chunked):
            return None
        parsed = _parse(batch, checker, tally)
        subjects.load(uow.conn, [prepared for _, prepared in parsed])
        new = _classify(uow, program_id, parsed, subjects, tally, utc_text(app.clock.now()))
        if not uow.referrals.quiet_for(program_id, [(event.type, values[3]) for event, values in new]):
            return None  # a conversion records derived events as it lands: this chunk goes event by event
        event_ids = insert_events_in_order(uow.conn, [values for _, values in new])
        if event_ids is None:
            raise Redo("a source id was stored concurrently")
        orgs, people = uow.rule_store.subjects(program_id, {v[3] for _, v in new if v[3] is not None},
                                               {v[4] for _, v in new if v[4] is not None})
        writes = ChunkWrites(uow.conn, app.clock)
        _prefetch(uow, writes, program_id, new, event_ids, orgs, people)
        pipeline = _pipeline(app, uow, writes)
        for (event, values), event_id in zip(new, event_ids, strict=True):
            org = orgs.get(values[3]) if values[3] is not None else None
            person = people.get(values[4]) if values[4] is not None else None
            try:
                pipeline.process(program_id, event_id, event, org, person)
            except AllegianceError as exc:
                raise Redo(f"event {event.source_id!r} was refused: {exc}") from exc
            tally.stored(1, event_id, event_id)
        writes.flush()
        emit_imported(uow, app, program_id, tally)
    return tally


def _parse(batch: Batch, checker: PayloadChecker, tally: Tally) -> list[tuple[IncomingEvent, Prepared]]:
    """Shape errors are rejects at once (as in ``_one_by_one``); the rest are prepared rows, with
    the event as ``parse_row`` builds it (the rules see that very payload)."""
    out = []
    for line, raw in batch:
        folded = raw if isinstance(raw, RowError) else checker.fold(raw)
        event = folded if isinstance(folded, RowError) else parse_row(folded)
        if isinstance(event, RowError):
            source_id = raw.get("source_id") if isinstance(raw, Mapping) else None
            tally.reject(line, event.field, event.reason, source_id if isinstance(source_id, str) else "")
            continue
        prepared = ready(line, event.source_id, event.type, event.occurred_at, event.payload, event.organization_id,
                         event.organization_external_id, event.participant_id, event.participant_external_id,
                         checker)
        if isinstance(prepared, RowError):
            tally.reject(line, prepared.field, prepared.reason, event.source_id)
            continue
        out.append((event, prepared))
    return out


def _classify(uow: UnitOfWork, program_id: int, parsed: list[tuple[IncomingEvent, Prepared]], subjects: Subjects,
              tally: Tally, received_at: str) -> list[tuple[IncomingEvent, Row]]:
    """Each row's outcome in file order, as ``record_one`` decides it: a source id stored before
    (in an earlier chunk or run, or earlier in this chunk) makes a duplicate or a conflict,
    whatever else is wrong with the row; otherwise a schema or subject error rejects it; otherwise
    it is new. Returns the new events with the values to insert."""
    stored = {source_id: fingerprint for source_id, (_, fingerprint) in
              existing_events(uow.conn, program_id, {prepared[P_SOURCE_ID] for _, prepared in parsed}).items()}
    new: list[tuple[IncomingEvent, Row]] = []
    for event, prepared in parsed:
        line, source_id, fingerprint = prepared[P_LINE], prepared[P_SOURCE_ID], prepared[P_FINGERPRINT]
        if source_id in stored:
            tally.same_or_conflict(line, source_id, fingerprint, stored[source_id])
            continue
        error: tuple[str, str] | None = prepared[P_ERROR]
        subject = subjects.resolve(prepared) if error is None else RowError(*error)
        if isinstance(subject, RowError):
            tally.reject(line, subject.field, subject.reason, source_id)
            continue
        stored[source_id] = fingerprint
        new.append((event, (program_id, source_id, prepared[P_TYPE], subject[0], subject[1],
                            prepared[P_OCCURRED_AT], prepared[P_PAYLOAD], fingerprint, received_at)))
    return new


def _prefetch(uow: UnitOfWork, writes: ChunkWrites, program_id: int, new: list[tuple[IncomingEvent, Row]],
              event_ids: list[int], orgs: dict[int, dict[str, Any]], people: dict[int, dict[str, Any]]) -> None:
    """Read (and lock) in a few queries what the chunk's events will ask for one by one: the
    organizations' accounts, the cap, ladder and contest counters their events can touch, and the
    pending awards their release events can release. A guess by the rule set's shape (caps,
    ladders, contests, ``timing.until_event``), never a decision: a key it misses is read when
    used, one it adds is only read and locked."""
    writes.prefetch_accounts(program_id, {values[3] for _, values in new if values[3] is not None})
    compiled = uow.rule_store.active(program_id)
    if compiled is None:
        return
    rule_set = compiled.rule_set
    ladders = [(rule.code, rule.action.period) for rule in rule_set.rules if isinstance(rule.action, Stepped)]
    releases: dict[str, set[str]] = {}
    for rule in rule_set.rules:
        if rule.timing.until_event:
            releases.setdefault(rule.timing.until_event, set()).add(rule.timing.key)
    counters: set[CounterKey] = set()
    pending: set[tuple[str, str]] = set()
    for (event, values), event_id in zip(new, event_ids, strict=True):
        org_id, person_id = values[3], values[4]
        if org_id is None:  # rules never run on an event without an organization
            continue
        at = event.occurred_at
        for cap in rule_set.caps:  # a rule paying the organization only counts a person's cap on it
            period = period_key(cap.period, at)
            subjects = {subject_of(cap.scope, org_id, person_id), subject_of(cap.scope, org_id, None)}
            counters.update(CounterKey(f"cap:{cap.code}", subject, period) for subject in subjects)
        counters.update(CounterKey(f"steps:{code}", f"o:{org_id}", period_key(period, at)) for code, period in ladders)
        counters.update(CounterKey(f"contest:{c.code}", f"o:{org_id}", period_key(c.period, at))
                        for c in rule_set.contests)
        if event.type in releases:
            subject = {"payload": event.payload, "organization": orgs.get(org_id) or {},
                       "participant": people.get(person_id) or {} if person_id is not None else {},
                       "event": {"type": event.type, "occurred_at": at.isoformat(), "id": event_id}}
            for path in releases[event.type]:
                value = read(subject, path)
                if value is not MISSING and value is not None:
                    pending.add((event.type, str(value)[:200]))
    writes.prefetch_counters(program_id, counters)
    writes.prefetch_pending(program_id, pending)


class _ChunkTiers:
    """The rules' view of tiers for one chunk: an organization's tier and multiplier read once, and
    again after a status changed (an upgrade earlier in the chunk raises the multiplier of the
    organization's next events, and of its subsidiaries' when they share it)."""

    def __init__(self, tiers: TiersService, port: BufferedTiers) -> None:
        self.tiers = tiers
        self.port = port
        self.known: dict[tuple[int, int], tuple[str | None, Decimal]] = {}
        self.seen = port.status_writes

    def tier_of(self, program_id: int, organization_id: int, *,
                organization: Mapping[str, Any] | None = None) -> tuple[str | None, Decimal]:
        if self.seen != self.port.status_writes:
            self.known.clear()
            self.seen = self.port.status_writes
        key = (program_id, organization_id)
        if key not in self.known:
            self.known[key] = self.tiers.tier_of(program_id, organization_id, organization=organization)
        return self.known[key]

    def add_qualifying_credit(self, program_id: int, organization_id: int, participant_id: int | None, amount: int,
                              occurred_at: datetime, event_id: int | None, rule: str) -> None:
        self.tiers.add_qualifying_credit(program_id, organization_id, participant_id, amount, occurred_at, event_id,
                                         rule)


def _pipeline(app: Allegiance, uow: UnitOfWork, writes: ChunkWrites) -> EventsService:
    """The services ``record_one`` runs after its insert, wired to the chunk's buffered ports."""
    conn, clock = uow.conn, app.clock
    ledger = LedgerService(BufferedLedger(conn, clock, writes), clock)
    settings: dict[int, ProgramSettings] = {}

    def settings_of(program_id: int) -> ProgramSettings:
        if program_id not in settings:
            settings[program_id] = uow.programs.settings(program_id)
        return settings[program_id]

    rule_store = BufferedRules(conn, clock, writes)
    tier_store = BufferedTiers(conn, clock, writes)
    tiers = TiersService(tier_store, uow.programs, uow.program_store, clock, declared_types=rule_store.declared_types)
    rules = RulesService(rule_store, ledger, settings_of, clock, tiers=_ChunkTiers(tiers, tier_store),
                         declared_types=rule_store.declared_types)
    return EventsService(BufferedEvents(conn, clock, writes), uow.program_store, ledger, app.rules, clock,
                         observers=(tiers,), rule_book=rules)


# -- event by event -------------------------------------------------------------------------------
def _one_by_one(app: Allegiance, program_id: int, batch: Batch, checker: PayloadChecker) -> Tally:
    """The full pipeline per event through ``record_one``, a savepoint each, so a bad row is
    rejected without losing the rest of the chunk."""
    tally = Tally()
    with app.write() as uow:
        for line, raw in batch:
            folded = raw if isinstance(raw, RowError) else checker.fold(raw)
            event = folded if isinstance(folded, RowError) else parse_row(folded)
            if isinstance(event, RowError):
                source_id = raw.get("source_id") if isinstance(raw, Mapping) else None
                tally.reject(line, event.field, event.reason, source_id if isinstance(source_id, str) else "")
                continue
            for attempt in (1, 2):
                try:
                    with uow.conn.begin_nested():
                        recorded = uow.events.record_one(program_id, event)
                except EventConflict:
                    tally.conflicts += 1
                    tally.reject(line, "source_id", CONFLICT_REASON, event.source_id)
                except AllegianceError as exc:
                    tally.reject(line, exc.field or "row", exc.message, event.source_id)
                except IntegrityError:
                    if attempt == 1:  # a concurrent importer stored it first: now it is a duplicate
                        continue
                    raise
                else:
                    if recorded.outcome is Outcome.ACCEPTED:
                        tally.stored(1, recorded.event_id, recorded.event_id)
                    else:
                        tally.duplicates += 1
                break
        emit_imported(uow, app, program_id, tally)
    return tally

