"""Redemptions against the real ledger, on SQLite and PostgreSQL: balances move by exactly the cost,
refusals change nothing, and the expiry jobs release what nobody resolved in time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allegiance.bootstrap import Allegiance
from allegiance.kernel.clock import FixedClock
from allegiance.kernel.errors import AllegianceError
from allegiance.rewards.model import (
    ApprovalPolicy,
    CatalogItemCreate,
    ConciergeAsk,
    ConciergeQuote,
    RedemptionRequest,
)
from allegiance.rewards.policy import Actor, Requester
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OPERATOR = Actor(Requester.OPERATOR, "test")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def item(app: Allegiance, program_id: int, cost: int, *, category: str = "goods", stock: int | None = None) -> int:
    with app.write() as uow:
        return int(uow.rewards.create_item(program_id, CatalogItemCreate.model_validate({
            "code": f"i-{uuid.uuid4().hex[:8]}", "names": {"en": "x"}, "category": category, "cost": cost,
            "stock": stock}))["id"])


def person(app: Allegiance, program_id: int, funds: int) -> tuple[Actor, int]:
    org = f.organization(app, program_id)
    who = f.participant(app, program_id, org["id"])
    account = f.personal_account(app, program_id, org["id"], who["id"])
    if funds:
        f.fund(app, program_id, account, funds)
    return Actor(Requester.PARTICIPANT, "test", org["id"], who["id"]), account


def balance(app: Allegiance, program_id: int, account: int) -> int:
    with app.read() as uow:
        found = uow.ledger_store.get_account(program_id, account)
    assert found is not None and found.balance is not None
    return found.balance


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(funds=st.integers(0, 3_000), cost=st.integers(1, 1_000), quantity=st.integers(1, 4),
       stock=st.one_of(st.none(), st.integers(0, 4)))
def test_balance_after_is_balance_before_minus_cost_or_nothing_changes(
        allegiance: Allegiance, program: ProgramFixture, funds: int, cost: int, quantity: int,
        stock: int | None) -> None:
    actor, account = person(allegiance, program.id, funds)
    thing = item(allegiance, program.id, cost, stock=stock)
    try:
        with allegiance.write() as uow:
            made = uow.rewards.redeem(program.id, actor, RedemptionRequest(item_id=thing, quantity=quantity))
    except AllegianceError as exc:
        # refused: not enough points or stock, and then nothing at all changed
        assert exc.code in ("insufficient_funds", "out_of_stock")
        assert cost * quantity > funds or (stock is not None and quantity > stock)
        assert balance(allegiance, program.id, account) == funds
        with allegiance.read() as uow:
            assert uow.rewards.item(program.id, thing)["stock"] == stock
        return
    assert made["cost"] == cost * quantity
    assert (made["balance_before"], made["balance_after"]) == (funds, funds - cost * quantity)
    assert balance(allegiance, program.id, account) == made["balance_after"]


def test_the_expiry_job_releases_points_stock_and_allowance_once(allegiance: Allegiance, program: ProgramFixture,
                                                               clock: FixedClock) -> None:
    with allegiance.write() as uow:
        uow.rewards.set_program_policy(program.id, ApprovalPolicy(approval_categories=["travel"], hold_days=3,
                                                                  annual_cap={"PTS": 1_000}), "test")
    actor, account = person(allegiance, program.id, 1_000)
    trip = item(allegiance, program.id, 400, category="travel", stock=2)
    with allegiance.write() as uow:
        waiting = uow.rewards.redeem(program.id, actor, RedemptionRequest(item_id=trip))
    assert waiting["status"] == "pending_approval"
    clock.advance(timedelta(days=2))
    with allegiance.write() as uow:
        assert uow.rewards.expire_due() == 0
    clock.advance(timedelta(days=1, seconds=1))
    # the ledger's own hold job may get there first: the rewards job still closes the redemption
    with allegiance.write() as uow:
        assert uow.ledger.expire_due_holds() == 1
        assert uow.rewards.expire_due() == 1
        assert uow.rewards.expire_due() == 0
        expired = uow.rewards.redemption(program.id, waiting["id"])
        assert expired["status"] == "expired"
        assert uow.rewards.item(program.id, trip)["stock"] == 2
        assert uow.reward_store.gift_total(program.id, actor.participant_id or 0, START.year, "PTS") == 0
        with pytest.raises(AllegianceError) as late:
            uow.rewards.approve(program.id, waiting["id"], OPERATOR)
        assert late.value.code == "invalid_transition"
        assert verify(uow.conn).ok
    assert balance(allegiance, program.id, account) == 1_000


def test_an_approval_after_the_deadline_is_refused_before_the_job_runs(allegiance: Allegiance,
                                                                       program: ProgramFixture,
                                                                       clock: FixedClock) -> None:
    with allegiance.write() as uow:
        uow.rewards.set_program_policy(program.id, ApprovalPolicy(approval_categories=["travel"], hold_days=1),
                                       "test")
    actor, _ = person(allegiance, program.id, 500)
    trip = item(allegiance, program.id, 100, category="travel")
    with allegiance.write() as uow:
        waiting = uow.rewards.redeem(program.id, actor, RedemptionRequest(item_id=trip))
    clock.advance(timedelta(days=2))
    with allegiance.write() as uow, pytest.raises(AllegianceError) as refused:
        uow.rewards.approve(program.id, waiting["id"], OPERATOR)
    assert refused.value.code == "invalid_transition"


def test_an_unaccepted_quote_expires_and_then_cannot_be_accepted(allegiance: Allegiance, program: ProgramFixture,
                                                                 clock: FixedClock) -> None:
    actor, account = person(allegiance, program.id, 500)
    with allegiance.write() as uow:
        asked = uow.concierge.ask(program.id, actor, ConciergeAsk(description="a boat trip"))
        uow.concierge.quote(program.id, asked["id"], OPERATOR, ConciergeQuote(cost=100))
    clock.advance(timedelta(days=15))
    with allegiance.write() as uow, pytest.raises(AllegianceError) as refused:
        uow.concierge.accept(program.id, asked["id"], actor)
    assert refused.value.code == "quote_expired"
    with allegiance.write() as uow:
        assert uow.concierge.expire_due() == 1
        assert uow.concierge.get(program.id, asked["id"])["status"] == "expired"
    assert balance(allegiance, program.id, account) == 500
