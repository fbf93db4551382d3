"""Dedupe by source id with insert-first writes (``INSERT ... ON CONFLICT DO NOTHING``): a retry is a
duplicate with the original id, other content is a conflict — also when the retry would no longer
validate, and also when two writers race with the same source id."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent, Outcome, Recorded
from allegiance.events.schemas import InvalidPayload
from allegiance.events.service import EventConflict
from allegiance.storage import tables as t
from tests import factories as f
from tests.conftest import ProgramFixture

SCHEMA: dict[str, Any] = {"type": "object", "required": ["amount_minor"],
                          "properties": {"amount_minor": {"type": "integer", "minimum": 0}}}
WHEN = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def org(allegiance: Allegiance, program: ProgramFixture) -> int:
    with allegiance.write() as uow:
        uow.events.declare_type(program.id, "order.placed", SCHEMA)
    return int(f.organization(allegiance, program.id)["id"])


def order(source_id: str, org: int, amount: int = 100) -> IncomingEvent:
    return IncomingEvent(source_id=source_id, type="order.placed", occurred_at=WHEN, organization_id=org,
                         payload={"amount_minor": amount})


def record(app: Allegiance, program_id: int, event: IncomingEvent) -> Recorded:
    with app.write() as uow:
        return uow.events.record(program_id, [event], prefix="")[0]


def stored(app: Allegiance, program_id: int) -> int:
    with app.read() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(t.events)
                                    .where(t.events.c.program_id == program_id)).scalar_one())


def outbox_rows(app: Allegiance) -> int:
    with app.read() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(t.outbox)
                                    .where(t.outbox.c.topic == "event.recorded")).scalar_one())


def test_a_retry_is_a_duplicate_and_writes_nothing(allegiance: Allegiance, program: ProgramFixture, org: int) -> None:
    first = record(allegiance, program.id, order("r-1", org))
    messages = outbox_rows(allegiance)
    again = record(allegiance, program.id, order("r-1", org))
    assert (first.outcome, again.outcome, again.event_id) == (Outcome.ACCEPTED, Outcome.DUPLICATE, first.event_id)
    assert stored(allegiance, program.id) == 1
    assert outbox_rows(allegiance) == messages  # no second "event.recorded" for a duplicate


def test_other_content_under_a_stored_source_id_conflicts(allegiance: Allegiance, program: ProgramFixture,
                                                          org: int) -> None:
    record(allegiance, program.id, order("r-2", org))
    with pytest.raises(EventConflict) as refused:
        record(allegiance, program.id, order("r-2", org, amount=7))
    assert refused.value.field == "source_id"
    assert stored(allegiance, program.id) == 1


def test_a_retry_stays_a_duplicate_after_the_schema_got_stricter(allegiance: Allegiance, program: ProgramFixture,
                                                                 org: int) -> None:
    first = record(allegiance, program.id, order("r-3", org, amount=5))
    with allegiance.write() as uow:  # now amounts must be at least 10: the stored event would not pass
        uow.events.declare_type(program.id, "order.placed", {**SCHEMA, "properties": {
            "amount_minor": {"type": "integer", "minimum": 10}}})
    again = record(allegiance, program.id, order("r-3", org, amount=5))
    assert (again.outcome, again.event_id) == (Outcome.DUPLICATE, first.event_id)
    with pytest.raises(EventConflict):  # invalid *and* different from what is stored: still a conflict
        record(allegiance, program.id, order("r-3", org, amount=6))
    with pytest.raises(InvalidPayload):  # a new source id gets the new schema
        record(allegiance, program.id, order("r-4", org, amount=5))


def test_two_writers_racing_with_one_source_id_store_it_once(allegiance: Allegiance, program: ProgramFixture,
                                                            org: int) -> None:
    start = threading.Barrier(2)
    outcomes: list[Recorded | BaseException] = []

    def writer() -> None:
        start.wait()
        try:
            outcomes.append(record(allegiance, program.id, order("race", org)))
        except BaseException as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(o, Recorded) for o in outcomes), outcomes
    results = [o for o in outcomes if isinstance(o, Recorded)]
    assert sorted(r.outcome.value for r in results) == ["accepted", "duplicate"]
    assert results[0].event_id == results[1].event_id
    assert stored(allegiance, program.id) == 1
