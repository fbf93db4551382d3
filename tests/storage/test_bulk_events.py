"""Bulk import: chunked, deduplicated, same outcome as the API path, safe to replay and to race."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

import allegiance.storage.bulk_events as bulk
from allegiance.api.schemas import EventIn
from allegiance.bootstrap import Allegiance, build
from allegiance.events.model import IncomingEvent
from allegiance.events.rows import RowError
from allegiance.rules.engine import AwardIntent, EventContext
from allegiance.storage import bulk_subjects
from allegiance.storage import tables as t
from allegiance.storage.bulk_events import CONFLICT_REASON, Reject, import_rows
from allegiance.synthetic import SynthConfig, SyntheticProgram, event_type_catalog, generate, iter_event_rows
from tests.conftest import ProgramFixture, make_settings
from tests.storage.overlap import import_at_once, overlapping_halves

SMALL = SynthConfig(seed=3, organizations=8, months=3, dealers=2)


def seed_program(app: Allegiance, program_id: int, world: SyntheticProgram) -> None:
    """Declare the synthetic event types and create its organizations (parents first) and people."""
    with app.write() as uow:
        for name, schema in event_type_catalog().items():
            uow.events.declare_type(program_id, name, schema)
        ids: dict[str, int] = {}
        pending = list(world.organizations)
        while pending:
            waiting = []
            for org in pending:
                if org.parent_external_id is not None and org.parent_external_id not in ids:
                    waiting.append(org)
                    continue
                ids[org.external_id] = uow.programs.create_organization(program_id, {
                    "external_id": org.external_id, "name": org.name, "kind": org.kind,
                    "parent_id": ids.get(org.parent_external_id or "")})["id"]
            assert len(waiting) < len(pending), "an organization's parent is missing"
            pending = waiting
        for person in world.participants:
            uow.programs.create_participant(program_id, {
                "external_id": person.external_id, "name": person.name, "role": person.role,
                "organization_id": ids[person.organization_external_id]})


def numbered(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    return ((line, row) for line, row in enumerate(rows, start=2))


def snapshot(app: Allegiance) -> dict[str, list[tuple[Any, ...]]]:
    with app.read() as uow:
        return {table.name: [tuple(r) for r in uow.conn.execute(select(table).order_by(table.c.id))]
                for table in (t.events, t.outbox, t.transactions, t.postings, t.lots, t.accounts)}


@pytest.fixture
def world(allegiance: Allegiance, program: ProgramFixture) -> SyntheticProgram:
    synthetic = generate(SMALL)
    seed_program(allegiance, program.id, synthetic)
    return synthetic


def event_row(**changes: Any) -> dict[str, Any]:
    return {"source_id": "inv-1", "type": "invoice.paid", "occurred_at": "2024-02-01T09:30:00+01:00",
            "organization_external_id": "CUS-000001",
            "payload": {"invoice_id": "I-1", "order_id": "O-1", "amount_minor": 990}, **changes}


def test_synthetic_events_are_stored_with_their_subjects_and_one_outbox_row_per_chunk(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    rows = list(iter_event_rows(world))
    summary = import_rows(allegiance, program.id, numbered(rows), chunk_size=50)
    assert (summary.accepted, summary.duplicates, summary.rejected) == (len(rows), 0, [])
    with allegiance.read() as uow:
        o, p, e = t.organizations, t.participants, t.events
        stored = uow.conn.execute(
            select(e.c.source_id, e.c.type, o.c.external_id, p.c.external_id, e.c.occurred_at, e.c.payload, e.c.id)
            .join(o, o.c.id == e.c.organization_id).outerjoin(p, p.c.id == e.c.participant_id)
            .where(e.c.program_id == program.id).order_by(e.c.source_id)).all()
        messages = uow.conn.execute(select(t.outbox.c.payload).where(t.outbox.c.topic == "events.imported")
                                    .order_by(t.outbox.c.id)).scalars().all()
    assert [tuple(s[:-1]) for s in stored] == sorted(
        (r["source_id"], r["type"], r["organization_external_id"], r["participant_external_id"],
         datetime.fromisoformat(r["occurred_at"]), r["payload"]) for r in rows)
    id_of = {s.source_id: s.id for s in stored}
    chunks = [sorted(id_of[r["source_id"]] for r in rows[i:i + 50]) for i in range(0, len(rows), 50)]
    assert messages == [{"first_event_id": c[0], "last_event_id": c[-1], "count": len(c)} for c in chunks]


def test_replaying_a_file_changes_nothing(allegiance: Allegiance, program: ProgramFixture,
                                          world: SyntheticProgram) -> None:
    rows = list(iter_event_rows(world))
    import_rows(allegiance, program.id, numbered(rows), chunk_size=64)
    before = snapshot(allegiance)
    again = import_rows(allegiance, program.id, numbered(rows), chunk_size=64)
    assert (again.accepted, again.duplicates, again.rejected_count) == (0, len(rows), 0)
    assert snapshot(allegiance) == before


def test_an_event_sent_through_the_api_and_then_imported_is_a_duplicate_not_a_conflict(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    sent = event_row(occurred_at="2024-02-01T08:30:00Z")  # as a client would send it to POST /events
    with allegiance.write() as uow:
        uow.events.record(program.id, [IncomingEvent(**EventIn.model_validate(sent).model_dump())])
    same = event_row(occurred_at="2024-02-01T08:30:00+00:00")  # the same instant, as an export writes it
    changed = event_row(payload={**sent["payload"], "amount_minor": 991})
    summary = import_rows(allegiance, program.id, [(2, same), (3, changed)])
    assert (summary.accepted, summary.duplicates, summary.conflicts) == (0, 1, 1)
    assert summary.rejected == [Reject(3, "source_id", CONFLICT_REASON, "inv-1")]


def test_within_a_chunk_the_first_valid_occurrence_of_a_source_id_wins(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    rows = [
        (2, event_row(source_id="a", payload={"invoice_id": "I"})),          # invalid: not stored
        (3, event_row(source_id="a")),                                        # first valid: stored
        (4, event_row(source_id="a")),                                        # identical: duplicate
        (5, event_row(source_id="a", occurred_at="2024-02-01T10:30:00+01:00")),  # other content: conflict
    ]
    summary = import_rows(allegiance, program.id, rows)
    assert (summary.accepted, summary.duplicates, summary.conflicts) == (1, 1, 1)
    assert [(r.line, r.field) for r in summary.rejected] == [(2, "payload.order_id"), (5, "source_id")]
    with allegiance.read() as uow:
        stored = uow.conn.execute(select(t.events.c.occurred_at).where(t.events.c.source_id == "a")).scalar_one()
    assert stored == datetime(2024, 2, 1, 8, 30, tzinfo=UTC)


def test_bad_rows_are_rejected_with_line_and_field_while_good_rows_are_stored(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    someone_else = next(p for p in world.participants if p.organization_external_id != "CUS-000001")
    rows: list[tuple[int, dict[str, Any] | RowError]] = [
        (2, event_row(source_id="ok-1")),
        (3, event_row(source_id="r-type", type="invoice.lost")),
        (4, event_row(source_id="r-payload", payload={"invoice_id": "I", "order_id": "O", "amount_minor": "9"})),
        (5, event_row(source_id="r-time", occurred_at="2024-02-30T10:00:00Z")),
        (6, event_row(source_id="r-org", organization_external_id="CUS-404")),
        (7, event_row(source_id="r-person", participant_external_id=someone_else.external_id)),
        (8, event_row(source_id="r-org-id", organization_external_id=None, organization_id=10**9)),
        (9, RowError("row", "is not valid JSON")),
        (10, event_row(source_id="ok-2", organization_external_id=None,
                       participant_external_id=someone_else.external_id)),
    ]
    summary = import_rows(allegiance, program.id, rows, chunk_size=4)
    assert summary.accepted == 2
    assert [(r.line, r.field, r.source_id) for r in summary.rejected] == [
        (3, "type", "r-type"), (4, "payload.amount_minor", "r-payload"), (5, "occurred_at", "r-time"),
        (6, "organization_external_id", "r-org"), (7, "participant_external_id", "r-person"),
        (8, "organization_id", "r-org-id"), (9, "row", "")]
    assert "does not belong to that organization" in summary.rejected[4].reason
    with allegiance.read() as uow:
        e, o = t.events, t.organizations
        org_of_ok2 = uow.conn.execute(select(o.c.external_id).join(e, e.c.organization_id == o.c.id)
                                      .where(e.c.source_id == "ok-2")).scalar_one()
        assert uow.conn.execute(select(func.count()).select_from(e)).scalar_one() == 2
    assert org_of_ok2 == someone_else.organization_external_id  # the participant's organization


def test_the_fast_path_stores_what_the_api_path_stores(allegiance: Allegiance, program: ProgramFixture,
                                                       world: SyntheticProgram) -> None:
    """The SQLite fast path writes driver-level values: they must read back, and sort, like Core's."""
    via_api = event_row(source_id="api", occurred_at="2024-02-01T09:30:00.5+01:00")
    with allegiance.write() as uow:
        uow.events.record_one(program.id, IncomingEvent(
            source_id="api", type=via_api["type"], occurred_at=datetime.fromisoformat(via_api["occurred_at"]),
            payload=via_api["payload"], organization_external_id=via_api["organization_external_id"]))
    import_rows(allegiance, program.id, [(2, {**via_api, "source_id": "bulk"})])
    e = t.events
    with allegiance.read() as uow:
        read = {r.source_id: r[1:] for r in uow.conn.execute(
            select(e.c.source_id, e.c.occurred_at, e.c.payload, e.c.payload_hash, e.c.organization_id))}
        if uow.conn.dialect.name == "sqlite":
            raw: dict[str, str] = dict(uow.conn.exec_driver_sql(
                "SELECT source_id, occurred_at FROM events").all())
            assert raw["bulk"] == raw["api"] == "2024-02-01 08:30:00.500000"
    assert read["bulk"] == read["api"]


def test_rows_stored_before_the_chunk_are_duplicates_or_conflicts_whatever_else_is_wrong_with_them(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    """The insert skips them (ON CONFLICT DO NOTHING) and they are classified after it, as the API
    path would: against what is stored, before their own schema or subject errors."""
    import_rows(allegiance, program.id, [(2, event_row(source_id="taken")), (3, event_row(source_id="changed")),
                                         (4, event_row(source_id="kept"))])
    other = {"invoice_id": "X", "order_id": "O", "amount_minor": 1}
    summary = import_rows(allegiance, program.id, [
        (2, event_row(source_id="taken")),                                    # same: duplicate
        (3, event_row(source_id="new")),                                      # stored
        (4, event_row(source_id="changed", payload=other)),                   # other content: conflict
        (5, event_row(source_id="kept", payload={"invoice_id": "I"})),        # invalid now, stored before
        (6, event_row(source_id="kept", organization_external_id="CUS-404")),  # unknown subject, stored before
        (7, event_row(source_id="taken")),                                    # again: duplicate of the stored
        (8, event_row(source_id="new", payload=other)),                       # conflict with line 3
    ])
    assert (summary.accepted, summary.duplicates, summary.conflicts) == (1, 2, 4)
    assert [(r.line, r.field, r.source_id) for r in summary.rejected] == [
        (4, "source_id", "changed"), (5, "source_id", "kept"), (6, "source_id", "kept"), (8, "source_id", "new")]
    with allegiance.read() as uow:
        last = uow.conn.execute(select(t.outbox.c.payload).order_by(t.outbox.c.id.desc()).limit(1)).scalar_one()
        new_id = uow.conn.execute(select(t.events.c.id).where(t.events.c.source_id == "new")).scalar_one()
    assert last == {"first_event_id": new_id, "last_event_id": new_id, "count": 1}


def test_a_row_skipped_by_the_insert_yet_not_found_after_it_is_rejected_for_a_rerun(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a concurrent importer that inserted the row and then rolled back looks like: the row
    is neither counted as stored nor lost silently."""
    import_rows(allegiance, program.id, [(2, event_row(source_id="taken"))])
    monkeypatch.setattr(bulk, "existing_events", lambda *args: {})
    summary = import_rows(allegiance, program.id, [(2, event_row(source_id="taken")),
                                                   (3, event_row(source_id="new"))])
    assert (summary.accepted, summary.duplicates, summary.conflicts) == (1, 0, 0)
    assert summary.rejected == [Reject(2, "source_id", "could not be stored; run the import again", "taken")]


def test_two_importers_of_overlapping_files_neither_crash_nor_duplicate(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    rows = list(numbered(iter_event_rows(world)))
    first, last = overlapping_halves(rows)
    halves = [first, list(reversed(last))]  # a third in both, met from both ends
    threshold = gc.get_threshold()
    results = import_at_once(allegiance, program.id, halves, 40)
    assert len(results) == 2, "an importer raised"
    assert gc.get_threshold() == threshold  # collecting less often was for the imports' time only
    assert sum(r.accepted for r in results) == len(rows)
    assert sum(r.duplicates for r in results) == sum(map(len, halves)) - len(rows)
    assert all(r.rejected_count == 0 for r in results)
    with allegiance.read() as uow:
        stored = uow.conn.execute(select(t.events.c.source_id)).scalars().all()
    assert sorted(stored) == sorted(r["source_id"] for _, r in rows)


def test_the_garbage_collector_runs_less_often_only_while_importing(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    before = gc.get_threshold()
    during: list[int] = []
    import_rows(allegiance, program.id, numbered(list(iter_event_rows(world))[:20]), chunk_size=10,
                on_progress=lambda _: during.append(gc.get_threshold()[0]))
    assert during and all(value >= 50_000 for value in during)
    assert gc.get_threshold() == before


def test_on_sqlite_the_wal_is_checkpointed_less_often_only_while_importing(
        allegiance: Allegiance, program: ProgramFixture, world: SyntheticProgram) -> None:
    if not allegiance.db.is_sqlite:
        pytest.skip("a SQLite setting")

    def interval() -> int:
        with allegiance.write() as uow:  # one writer connection in a single-threaded test: the import's
            return int(uow.conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())

    during: list[int] = []
    import_rows(allegiance, program.id, numbered(list(iter_event_rows(world))[:20]), chunk_size=10,
                on_progress=lambda _: during.append(interval()))
    assert during == [20_000, 20_000]
    assert interval() == 1_000


def test_a_tiny_subject_cache_still_resolves_every_row(allegiance: Allegiance, program: ProgramFixture,
                                                       world: SyntheticProgram,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_subjects, "CACHE_LIMIT", 2)
    rows = list(iter_event_rows(world))
    summary = import_rows(allegiance, program.id, numbered(rows), chunk_size=7)
    assert (summary.accepted, summary.rejected_count) == (len(rows), 0)


class TenPercentBack:
    """A stand-in rule engine: every event earns its organization points, once per event."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    def is_idle(self, program_id: int) -> bool:
        return False

    def evaluate(self, event: EventContext) -> list[AwardIntent]:
        self.seen.append(event.event_id)
        if event.organization is None:
            return []
        amount = int(event.payload.get("amount_minor", 0)) // 10 or 1
        return [AwardIntent(unit="PTS", amount=amount, organization_id=event.organization["id"],
                            participant_id=None, rule="ten-percent", reason=f"{event.type} {event.event_id}")]


def test_with_rules_each_event_is_awarded_once_in_its_chunk_transaction(
        db_url: str, program: ProgramFixture, world: SyntheticProgram) -> None:
    rows = list(iter_event_rows(world))[:60]
    rules = TenPercentBack()
    app = build(make_settings(db_url), rules=rules)
    try:
        bad = (999, event_row(source_id="bad", organization_external_id="CUS-404"))
        summary = import_rows(app, program.id, [*numbered(rows), bad], chunk_size=25)
        assert (summary.accepted, [r.line for r in summary.rejected]) == (len(rows), [999])
        first = snapshot(app)
        again = import_rows(app, program.id, numbered(rows), chunk_size=25)
        assert (again.accepted, again.duplicates) == (0, len(rows))
        assert snapshot(app) == first
        with app.read() as uow:
            tx = uow.conn.execute(select(t.transactions.c.event_id, func.count())
                                  .where(t.transactions.c.event_id.is_not(None))
                                  .group_by(t.transactions.c.event_id)).all()
            issued = uow.conn.execute(select(func.sum(t.postings.c.amount)).join(
                t.accounts, t.accounts.c.id == t.postings.c.account_id).where(
                t.accounts.c.kind == "issued")).scalar_one()
            outbox = uow.conn.execute(select(func.sum(t.outbox.c.payload["count"].as_integer()))
                                      .where(t.outbox.c.topic == "events.imported")).scalar_one()
    finally:
        app.close()
    assert sorted(event_id for event_id, _ in tx) == sorted(rules.seen)
    assert len(tx) == len(rows) and all(count == 1 for _, count in tx)
    expected = sum(int(r["payload"].get("amount_minor", 0)) // 10 or 1 for r in rows)
    assert issued == -expected
    assert outbox == len(rows)
