"""Caps hold under concurrency, and clawbacks never take more than was earned — on SQLite and
PostgreSQL, through the real event pipeline."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allegiance.bootstrap import Allegiance, build
from allegiance.events.model import IncomingEvent
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture, make_settings

GOAL = {"behavior": "buy more", "metric": "orders", "expected_uplift": "+1 %"}
AT = datetime(2026, 6, 15, tzinfo=UTC)


def activate(app: Allegiance, program_id: int, document: dict[str, Any]) -> None:
    with app.write() as uow:
        for name in ("order.placed", "order.returned"):
            uow.events.declare_type(program_id, name, {"type": "object"})
        saved = uow.rules.save(program_id, document, by="t")
        uow.rules.activate(program_id, saved["version"], by="t")


def test_parallel_events_never_exceed_a_cap(allegiance: Allegiance, program: ProgramFixture, db_url: str) -> None:
    """8 writers × 25 events of 30 points against a 1,000-point monthly cap: exactly 1,000 is
    awarded. A count-then-insert cap (read the used amount, then award) lets several writers see
    the same room and overshoot."""
    activate(allegiance, program.id, {
        "rules": [{"code": "order", "name": "30 per order", "trigger": "order.placed",
                   "action": {"kind": "fixed", "amount": 30}, "recipient": "participant", "goal": GOAL}],
        "caps": [{"code": "monthly", "scope": "participant", "period": "month", "max_amount": 1_000}]})
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    apps = [build(make_settings(db_url)) for _ in range(8)]
    barrier = threading.Barrier(len(apps))
    errors: list[BaseException] = []

    def writer(app: Allegiance) -> None:
        try:
            barrier.wait()
            for _ in range(25):
                with app.write() as uow:
                    uow.events.record_one(program.id, IncomingEvent(
                        source_id=uuid.uuid4().hex, type="order.placed", occurred_at=AT, organization_id=org["id"],
                        participant_id=person["id"], payload={}))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in apps:
        app.close()
    assert errors == []
    account = f.personal_account(allegiance, program.id, org["id"], person["id"])
    with allegiance.read() as uow:
        assert uow.ledger.port.get_account(program.id, account).balance == 1_000  # type: ignore[union-attr]
        awards = uow.rule_store.awards_of_organization(program.id, [org["id"]], after=None, limit=1_000)
        assert len(awards) == 200
        assert sum(a["amount"] for a in awards) == 1_000
        assert sum(a["capped"] for a in awards) == 200 * 30 - 1_000
        assert verify(uow.conn).problems == []


@given(orders=st.lists(st.integers(1, 10_000), min_size=1, max_size=3),
       returns=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 12_000)), max_size=6),
       spent=st.integers(0, 300))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_clawback_never_takes_more_than_was_earned(allegiance: Allegiance, program: ProgramFixture,
                                                   orders: list[int], returns: list[tuple[int, int]],
                                                   spent: int) -> None:
    with allegiance.read() as uow:
        active = uow.rule_store.active(program.id)
    if active is None:
        activate(allegiance, program.id, {"rules": [
            {"code": "pct", "name": "5 %", "trigger": "order.placed", "key": "payload.order_id",
             "action": {"kind": "percent", "percent": "5", "of": "payload.amount"}, "recipient": "organization",
             "goal": GOAL},
            {"code": "ret", "name": "Returns", "trigger": "order.returned",
             "action": {"kind": "clawback", "rules": ["pct"], "key": "payload.order_id",
                        "amount": "payload.amount"}}]})
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    ids = [uuid.uuid4().hex for _ in orders]

    def send(type_: str, payload: dict[str, Any]) -> None:
        with allegiance.write() as uow:
            uow.events.record_one(program.id, IncomingEvent(source_id=uuid.uuid4().hex, type=type_, occurred_at=AT,
                                                            organization_id=org["id"], payload=payload))

    for order_id, amount in zip(ids, orders, strict=True):
        send("order.placed", {"order_id": order_id, "amount": amount})
    earned = {order_id: amount * 5 // 100 for order_id, amount in zip(ids, orders, strict=True)}
    total = sum(earned.values())
    spend = min(spent, total)
    if spend:
        with allegiance.write() as uow:
            uow.ledger.spend(program.id, pool, spend)
    returned = {order_id: 0 for order_id in ids}
    for index, amount in returns:
        order_id = ids[index % len(ids)]
        returned[order_id] += amount
        send("order.returned", {"order_id": order_id, "amount": amount})
    with allegiance.read() as uow:
        balance = uow.ledger.port.get_account(program.id, pool).balance or 0  # type: ignore[union-attr]
        awards = uow.rule_store.awards_of_organization(program.id, [org["id"]], after=None, limit=100)
    clawed = {a["match_key"]: a["clawed"] for a in awards}
    for order_id, amount in zip(ids, orders, strict=True):
        owed = min(earned[order_id], earned[order_id] * returned[order_id] // amount)
        assert clawed.get(order_id, 0) <= owed, "never more than the returned share"
    assert balance >= 0
    assert balance == total - spend - sum(clawed.values())
    if spend == 0:  # nothing spent: every owed point is recovered
        assert sum(clawed.values()) == sum(min(earned[o], earned[o] * returned[o] // a)
                                           for o, a in zip(ids, orders, strict=True))
