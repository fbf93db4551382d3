"""Events in: validation, dedupe, and the pipeline event → rules → postings + outbox in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from allegiance.bootstrap import Allegiance, build
from allegiance.events.model import IncomingEvent, Outcome
from allegiance.events.schemas import InvalidPayload, UnknownEventType
from allegiance.events.service import EventConflict
from allegiance.kernel.errors import ValidationFailed
from allegiance.rules.engine import AwardIntent, EventContext
from allegiance.storage import tables as t
from tests import factories as f
from tests.conftest import ProgramFixture, make_settings

ORDER_SCHEMA: dict[str, Any] = {"type": "object", "required": ["amount_minor"],
                                "properties": {"amount_minor": {"type": "integer", "minimum": 0}}}
WHEN = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


class OnePointPerEuro:
    """A stand-in rule engine: what the rules issue will plug in."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on

    def is_idle(self, program_id: int) -> bool:
        return False

    def evaluate(self, event: EventContext) -> list[AwardIntent]:
        if event.payload.get("note") == self.fail_on:
            raise RuntimeError("rule crashed")
        assert event.organization is not None
        return [AwardIntent("PTS", event.payload["amount_minor"] // 100, event.organization["id"],
                            event.participant["id"] if event.participant else None, "one-point-per-euro",
                            "order", {"amount_minor": event.payload["amount_minor"]})]


def _count(app: Allegiance, table: Any) -> int:
    with app.read() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def declared(allegiance: Allegiance, program: ProgramFixture) -> dict[str, Any]:
    with allegiance.write() as uow:
        uow.events.declare_type(program.id, "order.placed", ORDER_SCHEMA)
    return f.organization(allegiance, program.id, external_id="CRM-1")


def order(source_id: str, amount: int = 12345, **extra: Any) -> IncomingEvent:
    return IncomingEvent(source_id=source_id, type="order.placed", occurred_at=WHEN,
                         organization_external_id="CRM-1", payload={"amount_minor": amount, **extra})


def test_an_event_is_stored_once_and_a_replay_is_a_duplicate(allegiance: Allegiance, program: ProgramFixture,
                                                             declared: dict[str, Any]) -> None:
    with allegiance.write() as uow:
        first = uow.events.record(program.id, [order("o-1")])[0]
    with allegiance.write() as uow:
        again = uow.events.record(program.id, [order("o-1")])[0]
    assert (first.outcome, again.outcome) == (Outcome.ACCEPTED, Outcome.DUPLICATE)
    assert again.event_id == first.event_id
    with pytest.raises(EventConflict), allegiance.write() as uow:
        uow.events.record(program.id, [order("o-1", amount=1)])
    assert _count(allegiance, t.events) == 1


@pytest.mark.parametrize(("event", "field", "error"), [
    (order("x", amount=-5), "events[1].payload.amount_minor", InvalidPayload),
    (IncomingEvent("x", "order.shipped", WHEN, {}), "events[1].type", UnknownEventType),
    (IncomingEvent("x", "order.placed", WHEN, {"amount_minor": 1}, organization_external_id="nope"),
     "events[1].organization_external_id", ValidationFailed),
    (IncomingEvent("x", "order.placed", WHEN, {}), "events[1].payload.amount_minor", InvalidPayload),
])
def test_a_bad_event_refuses_the_whole_batch_naming_the_field(
        allegiance: Allegiance, program: ProgramFixture, declared: dict[str, Any],
        event: IncomingEvent, field: str, error: type[Exception]) -> None:
    with pytest.raises(error) as refused, allegiance.write() as uow:
        uow.events.record(program.id, [order("good"), event])
    assert refused.value.field == field  # type: ignore[attr-defined]
    assert _count(allegiance, t.events) == 0


def test_an_event_and_its_points_commit_together(db_url: str, program: ProgramFixture) -> None:
    app = build(make_settings(db_url), rules=OnePointPerEuro(fail_on="boom"))
    try:
        with app.write() as uow:
            uow.events.declare_type(program.id, "order.placed", ORDER_SCHEMA)
        org = f.organization(app, program.id, external_id="CRM-1")
        with app.write() as uow:
            recorded = uow.events.record(program.id, [order("o-1", 12345)])[0]
        assert len(recorded.transactions) == 1
        with app.read() as uow:
            pool = uow.ledger.holder_account(program.id, "PTS", org["id"])
            tx = uow.conn.execute(select(t.transactions).where(t.transactions.c.id == recorded.transactions[0])).one()
            topics = [r for r in uow.conn.execute(select(t.outbox.c.topic).order_by(t.outbox.c.id)).scalars()]
        assert pool.balance == 123
        assert tx.event_id == recorded.event_id and tx.metadata["rule"] == "one-point-per-euro"
        assert topics[-2:] == ["ledger.transaction_posted", "event.recorded"]
        # a replay awards nothing twice
        with app.write() as uow:
            replay = uow.events.record(program.id, [order("o-1", 12345)])[0]
        assert replay.outcome is Outcome.DUPLICATE and replay.transactions == recorded.transactions
        # and a crash in the rules leaves neither the event nor any posting
        before = (_count(app, t.events), _count(app, t.postings), _count(app, t.outbox))
        with pytest.raises(RuntimeError), app.write() as uow:
            uow.events.record(program.id, [order("o-2", 500, note="boom")])
        assert (_count(app, t.events), _count(app, t.postings), _count(app, t.outbox)) == before
    finally:
        app.close()


def test_a_schema_that_does_not_compile_is_refused(allegiance: Allegiance, program: ProgramFixture) -> None:
    with pytest.raises(ValidationFailed) as refused, allegiance.write() as uow:
        uow.events.declare_type(program.id, "order.placed", {"type": "objekt"})
    assert refused.value.field == "payload_schema"
    with pytest.raises(ValidationFailed) as refused, allegiance.write() as uow:
        uow.events.declare_type(program.id, "Order Placed", {"type": "object"})
    assert refused.value.field == "name"
