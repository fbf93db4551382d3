"""Finance use cases against a real database: liability, expiring-soon notices, reconciling export."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from allegiance.bootstrap import Allegiance
from allegiance.kernel.clock import FixedClock
from allegiance.kernel.errors import ValidationFailed
from allegiance.ledger.policy import AwardSplit, ExpiryMode, ExpiryPolicy
from allegiance.partners.model import PartnerCreate, PartnerOperation
from allegiance.programs.model import ProgramSettings
from allegiance.storage import queries
from allegiance.storage import tables as t
from tests import factories as f
from tests.conftest import ProgramFixture

T0 = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SPLIT = AwardSplit(participant_percent=30)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def valued(app: Allegiance, program_id: int) -> None:
    """Points cost the operator half a cent each."""
    with app.write() as uow:
        settings = uow.programs.settings(program_id).model_dump(mode="json")
        settings["units"][0]["cost_per_point"] = {"currency": "EUR", "minor": 1, "per_points": 2}
        uow.programs.configure(program_id, ProgramSettings.model_validate(settings))


def award(app: Allegiance, program_id: int, org: int, amount: int, person: int | None = None,
          days: int | None = None) -> None:
    expiry = ExpiryPolicy(mode=ExpiryMode.DAYS, days=days) if days else ExpiryPolicy()
    with app.write() as uow:
        uow.ledger.award(program_id, "PTS", amount, organization_id=org, participant_id=person, split=SPLIT,
                         expiry=expiry)


def test_liability_sums_holder_balances_shows_holds_apart_and_values_them(
        allegiance: Allegiance, program: ProgramFixture) -> None:
    # given two companies holding 1,000 and 501 points, 100 of the first reserved by a hold
    valued(allegiance, program.id)
    org, other = f.organization(allegiance, program.id), f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    award(allegiance, program.id, org["id"], 1000, person["id"])
    award(allegiance, program.id, other["id"], 501)
    personal = f.personal_account(allegiance, program.id, org["id"], person["id"])
    with allegiance.write() as uow:
        uow.ledger.reserve(program.id, personal, 100, ttl=DAY)
        partner = uow.partners.create(program.id, PartnerCreate(code="bank", name="Bank"))
        uow.partners.earn(program.id, int(partner["id"]), PartnerOperation(
            reference="r1", organization_id=other["id"], points=99))
    # when finance asks what is owed
    with allegiance.read() as uow:
        result = uow.finance.liability(program.id)
        per_org = uow.finance.organizations_liability(program.id, limit=10)
    # then 1,600 points are outstanding, 100 of them held, worth €8.00 (half a cent a point)
    [pts] = result["units"]
    assert (pts["available"], pts["held"], pts["outstanding"]) == (1500, 100, 1600)
    assert pts["value"] == {"currency": "EUR", "scale": 2, "amount_minor": 800}
    assert pts["held_value"]["amount_minor"] == 50
    # and per organization, and the bank has issued 99 points net
    by_org = {o["organization_id"]: o["units"][0] for o in per_org}
    assert (by_org[org["id"]]["available"], by_org[org["id"]]["held"]) == (900, 100)
    assert by_org[other["id"]]["outstanding"] == 600
    assert result["partners"] == [{"partner_id": partner["id"], "code": "bank", "name": "Bank", "unit": "PTS",
                                   "account_id": partner["account_id"], "balance": -99,
                                   "position": "partner_owes"}]


def test_liability_without_a_cost_per_point_has_no_money_value(allegiance: Allegiance,
                                                               program: ProgramFixture) -> None:
    award(allegiance, program.id, f.organization(allegiance, program.id)["id"], 10)
    with allegiance.read() as uow:
        [pts] = uow.finance.liability(program.id)["units"]
    assert (pts["outstanding"], pts["value"]) == (10, None)


def outbox(app: Allegiance, topic: str) -> list[dict[str, object]]:
    with app.read() as uow:
        rows = uow.conn.execute(select(t.outbox.c.payload).where(t.outbox.c.topic == topic).order_by(t.outbox.c.id))
        return [dict(r.payload) for r in rows]


def test_expiring_soon_is_announced_once_per_organization_unit_and_day(
        allegiance: Allegiance, program: ProgramFixture, clock: FixedClock) -> None:
    # given a company whose pool and contact hold points expiring in 10 days, and some in 60 days
    org, other = f.organization(allegiance, program.id), f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    award(allegiance, program.id, org["id"], 1000, person["id"], days=10)
    award(allegiance, program.id, org["id"], 100, days=60)
    award(allegiance, program.id, other["id"], 50, days=20)
    # when the job runs for 30 days, twice
    with allegiance.write() as uow:
        first = uow.finance.notify_expiring(program.id, 30)
    with allegiance.write() as uow:
        second = uow.finance.notify_expiring(program.id, 30)
    # then each (organization, day) is announced once, with per-account amounts
    assert (first["found"], first["announced"]) == (2, 2)
    assert (second["found"], second["announced"]) == (2, 0)
    events = outbox(allegiance, "points.expiring_soon")
    assert [(e["organization_id"], e["amount"]) for e in events] == [(org["id"], 1000), (other["id"], 50)]
    assert events[0]["expires_on"] == (T0 + 10 * DAY).date().isoformat()
    assert sorted(a["amount"] for a in events[0]["accounts"]) == [300, 700]  # type: ignore[union-attr]
    # and when time moves on, the 60-day lot comes into the window and only it is announced
    clock.advance(35 * DAY)
    with allegiance.write() as uow:
        third = uow.finance.notify_expiring(program.id, 30)
    assert third["announced"] == 1
    assert [e["amount"] for e in outbox(allegiance, "points.expiring_soon")] == [1000, 50, 100]


def test_expiring_days_are_bounded(allegiance: Allegiance, program: ProgramFixture) -> None:
    with pytest.raises(ValidationFailed) as refused, allegiance.read() as uow:
        uow.finance.expiring(program.id, 0)
    assert refused.value.field == "days"


def busy_history(app: Allegiance, program_id: int, clock: FixedClock) -> None:
    """Every kind of movement, spread over several days."""
    org = f.organization(app, program_id)
    person = f.participant(app, program_id, org["id"])
    pool = f.pool_account(app, program_id, org["id"])
    personal = f.personal_account(app, program_id, org["id"], person["id"])
    award(app, program_id, org["id"], 5000, person["id"], days=3)
    clock.advance(DAY)
    with app.write() as uow:
        partner = uow.partners.create(program_id, PartnerCreate(code="air", name="Airline"))
        uow.partners.earn(program_id, int(partner["id"]), PartnerOperation(
            reference="t1", organization_id=org["id"], participant_id=person["id"], points=800))
        uow.ledger.transfer(program_id, personal, pool, 200)
        hold = uow.ledger.reserve(program_id, pool, 300, ttl=DAY)
        uow.ledger.post_hold(program_id, hold.id, 250)
        spent = uow.ledger.spend(program_id, personal, 100)
        uow.ledger.reverse(program_id, spent.transaction_id, memo="returned")
        uow.ledger.adjust(program_id, pool, -50, memo="correction")
    clock.advance(5 * DAY)
    with app.write() as uow:
        for account_id in uow.ledger_store.expired_lot_accounts(clock.now(), 100):
            uow.ledger.expire_lots_of(account_id)
        uow.partners.redeem(program_id, int(partner["id"]), PartnerOperation(
            reference="t2", organization_id=org["id"], points=10))


def ledger_balances(app: Allegiance, program_id: int) -> dict[int, int]:
    with app.read() as uow:
        ids = uow.conn.execute(select(t.accounts.c.id).where(t.accounts.c.program_id == program_id)).scalars().all()
        return {i: int(queries.account(uow.conn, program_id, i)["balance"]) for i in ids}  # type: ignore[index]


def test_the_export_reconciles_with_the_ledger(allegiance: Allegiance, program: ProgramFixture,
                                               clock: FixedClock) -> None:
    busy_history(allegiance, program.id, clock)
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    with allegiance.read() as uow:
        postings = list(uow.finance.export_postings(program.id, start, end))
        totals = uow.finance.export_totals(program.id, start, end)
        transaction_count = uow.conn.execute(select(func.count()).select_from(t.transactions)
                                             .where(t.transactions.c.program_id == program.id)).scalar_one()
    # every posting is there, with its transaction's hash, and every transaction sums to zero
    assert len({p["transaction_id"] for p in postings}) == transaction_count
    per_transaction: dict[int, int] = defaultdict(int)
    per_account: dict[int, int] = defaultdict(int)
    for row in postings:
        assert len(row["hash"]) == 64
        per_transaction[row["transaction_id"]] += row["amount"]
        per_account[row["account_id"]] += row["amount"]
    assert set(per_transaction.values()) == {0}
    # the sum of exported postings per account is the account's ledger balance, and so is the total
    balances = ledger_balances(allegiance, program.id)
    moved = {a: b for a, b in balances.items() if a in per_account}
    assert per_account == moved
    assert {row["account_id"]: row["closing"] for row in totals} == moved
    assert all(row["opening"] == 0 for row in totals)


def test_export_windows_chain_opening_to_closing(allegiance: Allegiance, program: ProgramFixture,
                                                 clock: FixedClock) -> None:
    busy_history(allegiance, program.id, clock)
    first = datetime(2000, 1, 1, tzinfo=UTC)
    cut = T0 + 2 * DAY  # the expiry and the redemption happen after the cut
    last = datetime(2100, 1, 1, tzinfo=UTC)
    with allegiance.read() as uow:
        before = {r["account_id"]: r for r in uow.finance.export_totals(program.id, first, cut)}
        after = {r["account_id"]: r for r in uow.finance.export_totals(program.id, cut, last)}
        moved_after: dict[int, int] = defaultdict(int)
        for row in uow.finance.export_postings(program.id, cut, last):
            moved_after[row["account_id"]] += row["amount"]
    assert moved_after  # the second window has movements
    for account_id, row in after.items():
        assert row["opening"] == (before[account_id]["closing"] if account_id in before else 0)
        assert row["movement"] == moved_after.get(account_id, 0)
    with pytest.raises(ValidationFailed), allegiance.read() as uow:
        uow.finance.export_totals(program.id, cut, cut)
