"""Tiers on a real database (SQLite and PostgreSQL): upgrades inside the event's transaction,
roll-up over subsidiaries and sites, downgrades only at period end after the grace period, the
review job's idempotence, and the rules feeding on tiers (credits, multiplier, conditions)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent
from allegiance.kernel.clock import FixedClock
from allegiance.storage import tables as t
from allegiance.storage.tables_tiers import tier_history, tier_measures, tier_participant_marks
from tests import factories as f
from tests.conftest import ProgramFixture

START = datetime(2025, 6, 2, 9, tzinfo=UTC)
ORDERS = {"measure": "value", "event_types": ["order.placed"], "field": "payload.amount_minor"}
LADDER = {"code": "status", "name": "Status", "window": {"kind": "year"}, "grace_days": 30, "tiers": [
    {"code": "member", "name": "Member"},
    {"code": "silver", "name": "Silver", "requires": [{**ORDERS, "at_least": 1_000}]},
    {"code": "gold", "name": "Gold", "earn_multiplier": "2", "requires": [{**ORDERS, "at_least": 5_000}]}]}
GOAL = {"behavior": "buy more", "metric": "revenue", "expected_uplift": "+5 %"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def setup(app: Allegiance, program_id: int, ladder: dict[str, Any] = LADDER) -> None:
    with app.write() as uow:
        for name in ("order.placed", "course.completed"):
            uow.events.declare_type(program_id, name, {"type": "object"})
        uow.tiers.save_ladder(program_id, ladder, by="test")


def order(app: Allegiance, program_id: int, org: int, amount: int, at: datetime,
          person: int | None = None, type_: str = "order.placed") -> None:
    with app.write() as uow:
        uow.events.record(program_id, [IncomingEvent(source_id=uuid.uuid4().hex, type=type_, occurred_at=at,
                                                     organization_id=org, participant_id=person,
                                                     payload={"amount_minor": amount})])


def tier(app: Allegiance, program_id: int, org: int) -> str | None:
    with app.read() as uow:
        return uow.tiers.tier_of(program_id, org)[0]


def topics(app: Allegiance, program_id: int, prefix: str = "tier.") -> list[tuple[str, dict[str, Any]]]:
    with app.read() as uow:
        rows = uow.conn.execute(select(t.outbox.c.topic, t.outbox.c.payload).where(
            t.outbox.c.program_id == program_id, t.outbox.c.topic.like(f"{prefix}%")).order_by(t.outbox.c.id))
        return [(r[0], r[1]) for r in rows if r[0] != "tier.ladder_saved"]


def review(app: Allegiance, program_id: int) -> dict[str, int]:
    with app.write() as uow:
        return uow.tiers.review(program_id)


def test_an_upgrade_happens_inside_the_event_that_earns_it(allegiance: Allegiance, program: ProgramFixture) -> None:
    setup(allegiance, program.id)
    org = f.organization(allegiance, program.id)["id"]
    assert tier(allegiance, program.id, org) == "member"
    order(allegiance, program.id, org, 999, START)
    assert tier(allegiance, program.id, org) == "member"
    order(allegiance, program.id, org, 1, START)
    assert tier(allegiance, program.id, org) == "silver"
    order(allegiance, program.id, org, 4_000, START)
    assert tier(allegiance, program.id, org) == "gold"
    changes = [(p["from"], p["to"], p["direction"]) for topic, p in topics(allegiance, program.id)
               if topic == "tier.changed"]
    assert changes == [("member", "silver", "up"), ("silver", "gold", "up")]
    with allegiance.read() as uow:
        standing = uow.tiers.standing(program.id, org)
    assert [h["to_tier"] for h in standing["history"]] == ["gold", "silver"]


def test_a_refused_event_leaves_no_tier_change(allegiance: Allegiance, program: ProgramFixture) -> None:
    setup(allegiance, program.id)
    org = f.organization(allegiance, program.id)["id"]
    with pytest.raises(RuntimeError), allegiance.write() as uow:
        uow.events.record(program.id, [IncomingEvent(source_id="x1", type="order.placed", occurred_at=START,
                                                     organization_id=org, payload={"amount_minor": 5_000})])
        raise RuntimeError("the caller fails after recording: the transaction rolls back")
    assert tier(allegiance, program.id, org) == "member"
    assert topics(allegiance, program.id) == []


def test_status_rolls_up_over_subsidiaries_and_sites(allegiance: Allegiance, program: ProgramFixture) -> None:
    setup(allegiance, program.id)
    group = f.organization(allegiance, program.id)["id"]
    subsidiary = f.organization(allegiance, program.id, parent_id=group)["id"]
    site = f.organization(allegiance, program.id, parent_id=subsidiary)["id"]
    other = f.organization(allegiance, program.id)["id"]
    order(allegiance, program.id, site, 3_000, START)
    order(allegiance, program.id, subsidiary, 1_500, START)
    assert tier(allegiance, program.id, group) == "silver"
    order(allegiance, program.id, group, 500, START)
    assert tier(allegiance, program.id, group) == "gold"  # 3,000 + 1,500 + 500 over the whole tree
    with allegiance.read() as uow:
        assert uow.tiers.standing(program.id, subsidiary)["own_tier"] == "silver"  # its own subtree: 4,500
    assert tier(allegiance, program.id, site) == "gold"  # a site enjoys its group's status
    assert tier(allegiance, program.id, other) == "member"


def test_downgrades_wait_for_period_end_and_the_grace_period(allegiance: Allegiance, program: ProgramFixture,
                                                             clock: FixedClock) -> None:
    setup(allegiance, program.id)
    lapsed = f.organization(allegiance, program.id)["id"]
    back = f.organization(allegiance, program.id)["id"]
    for org in (lapsed, back):
        order(allegiance, program.id, org, 5_000, START)
    clock.set(datetime(2025, 12, 30, tzinfo=UTC))
    assert review(allegiance, program.id)["downgraded"] == 0  # the year that earned it has not ended
    clock.set(datetime(2026, 1, 5, tzinfo=UTC))
    assert review(allegiance, program.id)["warned"] == 0  # 2025 earned gold: it is held through 2026
    clock.set(datetime(2027, 1, 5, tzinfo=UTC))  # 2026 did not earn it again
    assert review(allegiance, program.id)["warned"] == 2
    assert review(allegiance, program.id)["warned"] == 0  # warned once per period end
    assert tier(allegiance, program.id, lapsed) == "gold"  # kept during the grace period
    warnings = [p for topic, p in topics(allegiance, program.id) if topic == "tier.downgrade_warned"]
    assert {(p["organization_id"], p["to"]) for p in warnings} == {(lapsed, "member"), (back, "member")}
    clock.set(datetime(2027, 1, 20, 12, tzinfo=UTC))
    order(allegiance, program.id, back, 5_000, datetime(2027, 1, 20, tzinfo=UTC))  # requalifies in grace
    assert review(allegiance, program.id)["downgraded"] == 0
    clock.set(datetime(2027, 1, 31, tzinfo=UTC))  # 30 days after the period end
    assert review(allegiance, program.id)["downgraded"] == 1
    assert (tier(allegiance, program.id, lapsed), tier(allegiance, program.id, back)) == ("member", "gold")
    assert review(allegiance, program.id) == {"reviewed": 2, "upgraded": 0, "warned": 0, "downgraded": 0}
    with allegiance.read() as uow:
        history = uow.conn.execute(select(tier_history.c.organization_id, tier_history.c.direction).where(
            tier_history.c.program_id == program.id).order_by(tier_history.c.id)).all()
    assert [d for o, d in history if o == lapsed] == ["up", "warned", "down"]
    assert [d for o, d in history if o == back] == ["up", "warned", "kept"]


def test_a_ladder_added_later_counts_the_events_already_stored(allegiance: Allegiance,
                                                                program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        uow.events.declare_type(program.id, "order.placed", {"type": "object"})
    org = f.organization(allegiance, program.id)["id"]
    order(allegiance, program.id, org, 6_000, START)
    setup(allegiance, program.id)
    assert tier(allegiance, program.id, org) == "member"  # statuses move with the next event or review
    assert review(allegiance, program.id)["upgraded"] == 1
    assert tier(allegiance, program.id, org) == "gold"


def test_an_event_sent_with_an_offset_counts_on_its_utc_day(allegiance: Allegiance, program: ProgramFixture) -> None:
    """22:00 in New York on 1 January is 03:00 UTC on the 2nd: the daily total is the 2nd's, as a
    rebuild from the stored (UTC) event makes it."""
    setup(allegiance, program.id)
    org = f.organization(allegiance, program.id)["id"]
    order(allegiance, program.id, org, 700, datetime(2025, 1, 1, 22, tzinfo=timezone(timedelta(hours=-5))))

    def days() -> list[Any]:
        with allegiance.read() as uow:
            return [row.day for row in uow.conn.execute(select(tier_measures.c.day))]

    assert days() == [date(2025, 1, 2)]
    with allegiance.write() as uow:
        uow.tiers.measurer.rebuild(program.id, uow.tiers.ladders(program.id)[0])
    assert days() == [date(2025, 1, 2)]


def test_a_rebuild_in_batches_leaves_the_totals_events_left_one_by_one(allegiance: Allegiance,
                                                                        program: ProgramFixture) -> None:
    """Saving a ladder replays the stored events in memory and writes the totals in batches: the
    daily totals and participant marks must be those recorded event by event."""
    ladder = {**LADDER, "tiers": [*LADDER["tiers"], {"code": "expert", "name": "Expert", "requires": [
        {"measure": "participants", "event_types": ["course.completed"], "at_least": 2},
        {"measure": "count", "event_types": ["course.completed"], "at_least": 3}]}]}
    setup(allegiance, program.id, ladder)
    orgs = [f.organization(allegiance, program.id)["id"] for _ in range(3)]
    people = {org: [f.participant(allegiance, program.id, org)["id"] for _ in range(2)] for org in orgs}
    for step in range(40):
        org = orgs[step % 3]
        at = START + timedelta(hours=7 * step, minutes=step)
        if step % 4 == 0:
            order(allegiance, program.id, org, 0, at, person=people[org][step % 2], type_="course.completed")
        else:
            order(allegiance, program.id, org, 100 + step, at, person=people[org][step % 2])

    def totals() -> tuple[list[Any], list[Any]]:
        with allegiance.read() as uow:
            return (sorted(tuple(r) for r in uow.conn.execute(select(tier_measures))),
                    sorted(tuple(r) for r in uow.conn.execute(select(tier_participant_marks))))

    recorded = totals()
    assert recorded[0] and recorded[1]
    for batch in (1, 3, 10_000):
        with allegiance.write() as uow:
            assert uow.tiers.measurer.rebuild(program.id, uow.tiers.ladders(program.id)[0], batch=batch) == 40
        assert totals() == recorded, batch


def test_rules_see_the_tier_multiply_by_it_and_feed_credits(allegiance: Allegiance,
                                                            program: ProgramFixture) -> None:
    ladder = {"code": "club", "name": "Club", "tiers": [
        {"code": "member", "name": "Member"},
        {"code": "gold", "name": "Gold", "earn_multiplier": "2",
         "requires": [{"measure": "credits", "at_least": 300}]}]}
    setup(allegiance, program.id, ladder)
    rules = {"rules": [
        {"code": "points", "name": "1 point per order", "trigger": "order.placed", "goal": GOAL,
         "action": {"kind": "fixed", "amount": 10}},
        {"code": "gold-bonus", "name": "Gold bonus", "trigger": "order.placed", "goal": GOAL,
         "conditions": [{"field": "organization.tier", "op": "eq", "value": "gold"}],
         "action": {"kind": "fixed", "amount": 1}, "tier_multiplier": False},
        {"code": "course", "name": "Tier credit per course", "trigger": "course.completed", "goal": GOAL,
         "action": {"kind": "tier_credit", "amount": 150}}]}
    with allegiance.write() as uow:
        uow.rules.activate(program.id, uow.rules.save(program.id, rules, by="t")["version"], by="t")
    org = f.organization(allegiance, program.id)["id"]
    pool = f.pool_account(allegiance, program.id, org)

    def balance() -> int:
        with allegiance.read() as uow:
            return int(uow.conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == pool)).scalar() or 0)

    order(allegiance, program.id, org, 1, START)
    assert balance() == 10
    order(allegiance, program.id, org, 0, START, type_="course.completed")
    assert tier(allegiance, program.id, org) == "member"
    order(allegiance, program.id, org, 0, START, type_="course.completed")
    assert tier(allegiance, program.id, org) == "gold"
    order(allegiance, program.id, org, 1, START)
    assert balance() == 10 + 20 + 1  # doubled by the tier, plus the gold-only rule


def test_a_person_ladder_counts_only_their_own_events(allegiance: Allegiance, program: ProgramFixture) -> None:
    ladder = {"code": "learners", "name": "Learners", "level": "participant", "window": {"kind": "lifetime"},
              "tiers": [{"code": "novice", "name": "Novice"},
                        {"code": "expert", "name": "Expert",
                         "requires": [{"measure": "count", "event_types": ["course.completed"], "at_least": 2}]}]}
    setup(allegiance, program.id, ladder)
    org = f.organization(allegiance, program.id)["id"]
    ann = f.participant(allegiance, program.id, org)["id"]
    bob = f.participant(allegiance, program.id, org)["id"]
    order(allegiance, program.id, org, 0, START, person=ann, type_="course.completed")
    order(allegiance, program.id, org, 0, START, person=bob, type_="course.completed")
    order(allegiance, program.id, org, 0, START + timedelta(hours=1), person=ann, type_="course.completed")
    with allegiance.read() as uow:
        assert uow.tiers.standing(program.id, org, ann)["tier"] == "expert"
        assert uow.tiers.standing(program.id, org, bob)["tier"] == "novice"
        assert uow.tiers.tier_of(program.id, org) == (None, 1)  # no organization ladder: no org tier
