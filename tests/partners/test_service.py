"""Coalition partner use cases against a real database (SQLite, and PostgreSQL when available)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from allegiance.bootstrap import Allegiance
from allegiance.kernel.clock import FixedClock
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.ledger.errors import Overdraw
from allegiance.partners.errors import (
    AlreadyReversedOperation,
    DuplicatePartnerCode,
    OperationNotAllowed,
    PartnerInactive,
    ReferenceConflict,
)
from allegiance.partners.model import PartnerCreate, PartnerOperation, PartnerUpdate
from allegiance.storage import queries
from allegiance.storage import tables as t
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def bank(app: Allegiance, program_id: int, **values: object) -> dict[str, object]:
    body = {"code": f.ref("bank"), "name": "Partner Bank", "issue_rate": {"minor": 1},
            "redeem_rate": {"minor": 8, "per_points": 10}, **values}
    with app.write() as uow:
        return uow.partners.create(program_id, PartnerCreate.model_validate(body))


def balance(app: Allegiance, program_id: int, account_id: int) -> int:
    with app.read() as uow:
        row = queries.account(uow.conn, program_id, account_id)
    assert row is not None
    return int(row["balance"])


def transactions(app: Allegiance) -> int:
    with app.read() as uow:
        return int(uow.conn.execute(select(func.count()).select_from(t.transactions)).scalar_one())


def verified(app: Allegiance) -> None:
    with app.read() as uow:
        report = verify(uow.conn)
    assert report.ok, report.problems


def operation(org: int, points: int, person: int | None = None, reference: str | None = None,
              **extra: object) -> PartnerOperation:
    return PartnerOperation.model_validate({"reference": reference or f.ref("r"), "organization_id": org,
                                            "participant_id": person, "points": points, **extra})


def test_earning_at_a_partner_credits_per_the_program_split_and_debits_the_partner(
        allegiance: Allegiance, program: ProgramFixture) -> None:
    # given a partner bank and a contact of a client company (program split: 70 % company, 30 % person)
    partner = bank(allegiance, program.id)
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    # when the bank reports a purchase worth 1,000 points by that person
    with allegiance.write() as uow:
        result = uow.partners.earn(program.id, int(partner["id"]), operation(org["id"], 1000, person["id"],
                                                                             purchase_amount_minor=50_000))
    # then the company gets 700, the person 300, and the bank's settlement account is 1,000 down
    assert balance(allegiance, program.id, f.pool_account(allegiance, program.id, org["id"])) == 700
    assert balance(allegiance, program.id, f.personal_account(allegiance, program.id, org["id"], person["id"])) == 300
    assert balance(allegiance, program.id, int(partner["account_id"])) == -1000
    with allegiance.read() as uow:
        [txn] = queries.transactions(uow.conn, program.id, visible=None, ids=[result["transaction_id"]])
    assert txn["metadata"]["partner_code"] == partner["code"]
    assert txn["metadata"]["rate"] == {"minor": 1, "per_points": 1, "currency": "EUR"}
    assert txn["metadata"]["purchase_amount_minor"] == 50_000
    assert sum(p["amount"] for p in txn["postings"]) == 0
    verified(allegiance)


def test_the_same_receipt_counts_once_and_a_reused_reference_is_refused(
        allegiance: Allegiance, program: ProgramFixture) -> None:
    partner = bank(allegiance, program.id)
    org = f.organization(allegiance, program.id)
    with allegiance.write() as uow:
        first = uow.partners.earn(program.id, int(partner["id"]), operation(org["id"], 100, reference="r-1"))
    before = transactions(allegiance)
    # when the partner sends the same receipt again
    with allegiance.write() as uow:
        again = uow.partners.earn(program.id, int(partner["id"]), operation(org["id"], 100, reference="r-1"))
    # then it gets the first result and nothing is posted
    assert (again["duplicate"], again["transaction_id"]) == (True, first["transaction_id"])
    assert transactions(allegiance) == before
    # and the same reference with another amount is a conflict naming the reference
    with pytest.raises(ReferenceConflict) as refused, allegiance.write() as uow:
        uow.partners.earn(program.id, int(partner["id"]), operation(org["id"], 999, reference="r-1"))
    assert refused.value.field == "reference"
    assert balance(allegiance, program.id, f.pool_account(allegiance, program.id, org["id"])) == 100


def test_redeeming_at_a_partner_never_overdraws_and_respects_holds(allegiance: Allegiance,
                                                                   program: ProgramFixture) -> None:
    # given a person with 500 points, 300 of them reserved by a pending hold
    partner = bank(allegiance, program.id)
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    account = f.personal_account(allegiance, program.id, org["id"], person["id"])
    f.fund(allegiance, program.id, account, 500)
    with allegiance.write() as uow:
        uow.ledger.reserve(program.id, account, 300, ttl=DAY)
    before = transactions(allegiance)
    # when they try to spend 250 with the partner, then it is refused: only 200 are available
    with pytest.raises(Overdraw) as refused, allegiance.write() as uow:
        uow.partners.redeem(program.id, int(partner["id"]), operation(org["id"], 250, person["id"]))
    assert refused.value.data["available"] == 200
    assert transactions(allegiance) == before
    # and 200 go through: the partner's account is credited
    with allegiance.write() as uow:
        uow.partners.redeem(program.id, int(partner["id"]), operation(org["id"], 200, person["id"]))
    assert balance(allegiance, program.id, account) == 0
    assert balance(allegiance, program.id, int(partner["account_id"])) == 200
    verified(allegiance)


def test_a_reversal_restores_balances_once(allegiance: Allegiance, program: ProgramFixture) -> None:
    partner = bank(allegiance, program.id)
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    f.fund(allegiance, program.id, pool, 1000)
    with allegiance.write() as uow:
        spent = uow.partners.redeem(program.id, int(partner["id"]), operation(org["id"], 400))
    # when the purchase is returned
    with allegiance.write() as uow:
        undone = uow.partners.reverse(program.id, int(partner["id"]), spent["id"], "returned")
    # then the pool has its points back and the partner's account is even
    assert undone["reversal_transaction_id"] is not None
    assert balance(allegiance, program.id, pool) == 1000
    assert balance(allegiance, program.id, int(partner["account_id"])) == 0
    # and a second reversal is refused
    with pytest.raises(AlreadyReversedOperation), allegiance.write() as uow:
        uow.partners.reverse(program.id, int(partner["id"]), spent["id"], "again")
    verified(allegiance)


def test_reversing_an_earning_already_spent_is_refused(allegiance: Allegiance, program: ProgramFixture) -> None:
    partner = bank(allegiance, program.id)
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    with allegiance.write() as uow:
        earned = uow.partners.earn(program.id, int(partner["id"]), operation(org["id"], 100))
        uow.ledger.spend(program.id, pool, 80)
    with pytest.raises(Overdraw), allegiance.write() as uow:
        uow.partners.reverse(program.id, int(partner["id"]), earned["id"], "returned")
    assert balance(allegiance, program.id, pool) == 20


def test_partner_flags_and_status_are_enforced(allegiance: Allegiance, program: ProgramFixture) -> None:
    org = f.organization(allegiance, program.id)
    accept_only = bank(allegiance, program.id, issues_points=False)
    with pytest.raises(OperationNotAllowed) as refused, allegiance.write() as uow:
        uow.partners.earn(program.id, int(accept_only["id"]), operation(org["id"], 10))
    assert refused.value.field == "partner_id"
    issue_only = bank(allegiance, program.id, accepts_points=False)
    with pytest.raises(OperationNotAllowed), allegiance.write() as uow:
        uow.partners.redeem(program.id, int(issue_only["id"]), operation(org["id"], 10))
    with allegiance.write() as uow:
        uow.partners.update(program.id, int(issue_only["id"]), PartnerUpdate(active=False))
    with pytest.raises(PartnerInactive), allegiance.write() as uow:
        uow.partners.earn(program.id, int(issue_only["id"]), operation(org["id"], 10))


def test_codes_are_unique_and_parties_must_belong(allegiance: Allegiance, program: ProgramFixture) -> None:
    partner = bank(allegiance, program.id)
    with pytest.raises(DuplicatePartnerCode):
        bank(allegiance, program.id, code=partner["code"])
    org, other = f.organization(allegiance, program.id), f.organization(allegiance, program.id)
    stranger = f.participant(allegiance, program.id, other["id"])
    with pytest.raises(ValidationFailed) as refused, allegiance.write() as uow:
        uow.partners.earn(program.id, int(partner["id"]), operation(org["id"], 10, stranger["id"]))
    assert refused.value.field == "participant_id"
    with pytest.raises(NotFound), allegiance.write() as uow:
        uow.partners.earn(program.id, int(partner["id"]), operation(987_654, 10))


def test_settlement_is_computed_from_postings_at_the_rates_of_the_day(
        allegiance: Allegiance, program: ProgramFixture, clock: FixedClock) -> None:
    # given a bank paying 1 cent per point issued and paid 0.8 cents per point redeemed
    partner = bank(allegiance, program.id)
    pid = int(partner["id"])
    org = f.organization(allegiance, program.id)
    with allegiance.write() as uow:
        uow.partners.earn(program.id, pid, operation(org["id"], 10_000))
        uow.partners.redeem(program.id, pid, operation(org["id"], 2_000))
    # when the rates change mid-month and more happens, one earning is reversed
    clock.advance(10 * DAY)
    with allegiance.write() as uow:
        uow.partners.update(program.id, pid, PartnerUpdate.model_validate({"issue_rate": {"minor": 2}}))
        later = uow.partners.earn(program.id, pid, operation(org["id"], 1_000))
        undone = uow.partners.earn(program.id, pid, operation(org["id"], 500))
        uow.partners.reverse(program.id, pid, undone["id"], "cancelled")
    # and something happens in the next month (outside the period)
    clock.advance(30 * DAY)
    with allegiance.write() as uow:
        uow.partners.earn(program.id, pid, operation(org["id"], 7))
    # then March's settlement: 11,000 issued (10,000 at 1 ct, 1,000 at 2 ct), 2,000 redeemed at 0.8 ct
    with allegiance.read() as uow:
        report = uow.partners.settlement(program.id, pid, datetime(2026, 3, 1, tzinfo=UTC),
                                         datetime(2026, 4, 1, tzinfo=UTC))
    assert later["duplicate"] is False
    assert (report.points_issued, report.points_redeemed, report.net_points) == (11_000, 2_000, -9_000)
    assert (report.partner_owes_minor, report.operator_owes_minor, report.net_minor) == (12_000, 1_600, -10_400)
    assert report.reversals == 1
    # and the net in points is exactly the account's balance change: all time it is the balance
    with allegiance.read() as uow:
        whole = uow.partners.settlement(program.id, pid, datetime(2000, 1, 1, tzinfo=UTC),
                                        datetime(2100, 1, 1, tzinfo=UTC))
    assert whole.net_points == balance(allegiance, program.id, int(partner["account_id"])) == -9_007
    verified(allegiance)


def test_store_credit_limited_to_own_channels_cannot_be_spent_at_a_partner(
        allegiance: Allegiance, program: ProgramFixture) -> None:
    from allegiance.programs.model import ProgramSettings

    with allegiance.write() as uow:
        settings = uow.programs.settings(program.id).model_dump(mode="json")
        settings["units"].append({"code": "USD", "name": "Store dollars", "scale": 2, "kind": "store_credit",
                                  "spend_channels": ["online_store"]})
        uow.programs.configure(program.id, ProgramSettings.model_validate(settings))
    partner = bank(allegiance, program.id, unit="USD")
    org = f.organization(allegiance, program.id)
    f.fund(allegiance, program.id, f.pool_account(allegiance, program.id, org["id"], "USD"), 1000)
    with pytest.raises(ValidationFailed) as refused, allegiance.write() as uow:
        uow.partners.redeem(program.id, int(partner["id"]), operation(org["id"], 10))
    assert refused.value.field == "partner_id"
