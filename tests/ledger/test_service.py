"""Ledger use cases against a real database (SQLite, and PostgreSQL when available)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from allegiance.bootstrap import Allegiance
from allegiance.kernel.clock import FixedClock
from allegiance.ledger.errors import AlreadyReversed, HoldAlreadyResolved, Overdraw
from allegiance.ledger.model import AccountKind
from allegiance.ledger.policy import AwardSplit, ExpiryMode, ExpiryPolicy, LeaverPolicy
from allegiance.storage import queries
from allegiance.storage import tables as t
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
NEVER = ExpiryPolicy()
SPLIT = AwardSplit(participant_percent=30)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def balance(app: Allegiance, account_id: int) -> int:
    with app.read() as uow:
        account = uow.ledger_store.get_account(uow.ledger_store.conn.execute(
            select(t.accounts.c.program_id).where(t.accounts.c.id == account_id)).scalar_one(), account_id)
    assert account is not None and account.balance is not None
    return account.balance


def assert_verified(app: Allegiance) -> None:
    with app.read() as uow:
        report = verify(uow.conn)
    assert report.ok, report.problems


def test_an_award_to_a_person_is_split_with_the_company_pool(allegiance: Allegiance,
                                                             program: ProgramFixture) -> None:
    # given a contact of a client company (TechAccess: 70 % company, 30 % contact)
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    # when 6,000 points are awarded for their contract
    with allegiance.write() as uow:
        uow.ledger.award(program.id, "PTS", 6000, organization_id=org["id"], participant_id=person["id"],
                         split=SPLIT, expiry=NEVER)
    # then the company gets 4,200 and the contact 1,800
    assert balance(allegiance, f.pool_account(allegiance, program.id, org["id"])) == 4200
    assert balance(allegiance, f.personal_account(allegiance, program.id, org["id"], person["id"])) == 1800
    assert_verified(allegiance)


def test_a_spend_over_the_balance_is_refused_and_writes_nothing(allegiance: Allegiance,
                                                                 program: ProgramFixture) -> None:
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    f.fund(allegiance, program.id, pool, 100)
    with allegiance.read() as uow:
        before = uow.conn.execute(select(t.transactions.c.id)).all()
    with pytest.raises(Overdraw) as refused, allegiance.write() as uow:
        uow.ledger.spend(program.id, pool, 101)
    assert refused.value.data == {"account": f"org:{org['id']}:pool:PTS", "requested": 101, "available": 100}
    with allegiance.read() as uow:
        assert uow.conn.execute(select(t.transactions.c.id)).all() == before
    assert balance(allegiance, pool) == 100


def test_points_keep_their_expiry_when_they_move_and_expire_once(allegiance: Allegiance, program: ProgramFixture,
                                                                 clock: FixedClock) -> None:
    # given 500 points earned by a person that expire after 30 days, and 200 that never do
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    personal = f.personal_account(allegiance, program.id, org["id"], person["id"])
    pool = f.pool_account(allegiance, program.id, org["id"])
    only_person = AwardSplit(mode="participant")
    with allegiance.write() as uow:
        uow.ledger.award(program.id, "PTS", 500, organization_id=org["id"], participant_id=person["id"],
                         split=only_person, expiry=ExpiryPolicy(mode=ExpiryMode.DAYS, days=30))
        uow.ledger.award(program.id, "PTS", 200, organization_id=org["id"], participant_id=person["id"],
                         split=only_person, expiry=NEVER)
        # when 100 are spent (from the expiring lot first) and 300 moved to the company pool
        uow.ledger.spend(program.id, personal, 100)
        uow.ledger.transfer(program.id, personal, pool, 300)
    # then after 31 days the 100 expiring points left in the person's account and the 300 now in the
    # pool expire; the never-expiring 200 stay
    clock.advance(timedelta(days=31))
    with allegiance.write() as uow:
        accounts = uow.ledger_store.expired_lot_accounts(clock.now(), 100)
        assert sorted(accounts) == sorted([personal, pool])
        for account_id in accounts:
            uow.ledger.expire_lots_of(account_id)
    assert balance(allegiance, personal) == 200
    assert balance(allegiance, pool) == 0
    # and running the job again expires nothing more
    with allegiance.write() as uow:
        assert uow.ledger_store.expired_lot_accounts(clock.now(), 100) == []
        assert uow.ledger.expire_lots_of(personal) is None
    assert_verified(allegiance)


def test_a_hold_reserves_points_and_resolves_exactly_once(allegiance: Allegiance, program: ProgramFixture,
                                                          clock: FixedClock) -> None:
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    f.fund(allegiance, program.id, pool, 1000)
    with allegiance.write() as uow:
        hold = uow.ledger.reserve(program.id, pool, 800, ttl=timedelta(hours=1))
    # reserved points cannot be spent
    with pytest.raises(Overdraw), allegiance.write() as uow:
        uow.ledger.spend(program.id, pool, 201)
    # a partial capture releases the rest
    with allegiance.write() as uow:
        posted = uow.ledger.post_hold(program.id, hold.id, 300)
    assert (posted.status, posted.posted_amount) == ("posted", 300)
    assert balance(allegiance, pool) == 700
    # and a second resolution of any kind is refused
    for resolve in ("post", "void"):
        with pytest.raises(HoldAlreadyResolved), allegiance.write() as uow:
            if resolve == "post":
                uow.ledger.post_hold(program.id, hold.id)
            else:
                uow.ledger.void_hold(program.id, hold.id)
    clock.advance(timedelta(hours=2))
    with allegiance.write() as uow:
        assert uow.ledger.expire_due_holds() == 0
    assert_verified(allegiance)


def test_an_unresolved_hold_expires_and_returns_the_points(allegiance: Allegiance, program: ProgramFixture,
                                                           clock: FixedClock) -> None:
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    f.fund(allegiance, program.id, pool, 50)
    with allegiance.write() as uow:
        hold = uow.ledger.reserve(program.id, pool, 50, ttl=timedelta(hours=72))
    clock.advance(timedelta(hours=73))
    with allegiance.write() as uow:
        assert uow.ledger.expire_due_holds() == 1
        assert uow.ledger.expire_due_holds() == 0
    with allegiance.read() as uow:
        assert uow.ledger_store.get_hold(program.id, hold.id).status == "expired"  # type: ignore[union-attr]
    assert balance(allegiance, pool) == 50
    assert_verified(allegiance)


def test_a_reversal_restores_balances_and_can_happen_only_once(allegiance: Allegiance,
                                                                program: ProgramFixture) -> None:
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    with allegiance.write() as uow:
        award = uow.ledger.award(program.id, "PTS", 900, organization_id=org["id"], participant_id=None,
                                 split=SPLIT, expiry=NEVER)
        spend = uow.ledger.spend(program.id, pool, 400)
        uow.ledger.reverse(program.id, spend.transaction_id, memo="order cancelled")
    assert balance(allegiance, pool) == 900
    with pytest.raises(AlreadyReversed), allegiance.write() as uow:
        uow.ledger.reverse(program.id, spend.transaction_id, memo="again")
    with allegiance.write() as uow:
        uow.ledger.reverse(program.id, award.transaction_id, memo="awarded by mistake")
    assert balance(allegiance, pool) == 0
    assert_verified(allegiance)


def test_reversing_an_award_that_was_spent_is_refused(allegiance: Allegiance, program: ProgramFixture) -> None:
    org = f.organization(allegiance, program.id)
    pool = f.pool_account(allegiance, program.id, org["id"])
    with allegiance.write() as uow:
        award = uow.ledger.award(program.id, "PTS", 100, organization_id=org["id"], participant_id=None,
                                 split=SPLIT, expiry=NEVER)
        uow.ledger.spend(program.id, pool, 60)
    with pytest.raises(Overdraw), allegiance.write() as uow:
        uow.ledger.reverse(program.id, award.transaction_id, memo="fraud")
    assert balance(allegiance, pool) == 40


@pytest.mark.parametrize(("policy", "pool_after", "person_after"), [
    (LeaverPolicy.SWEEP_TO_POOL, 1000, 0),
    (LeaverPolicy.KEEP, 700, 300),
    (LeaverPolicy.FORFEIT, 700, 0),
])
def test_the_leaver_policy_is_posted_when_a_person_leaves(allegiance: Allegiance, program: ProgramFixture,
                                                          policy: LeaverPolicy, pool_after: int,
                                                          person_after: int) -> None:
    with allegiance.write() as uow:
        settings = uow.programs.settings(program.id).model_copy(update={"leaver_policy": policy})
        uow.conn.execute(t.programs.update().where(t.programs.c.id == program.id)
                         .values(settings=settings.model_dump(mode="json")))
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    with allegiance.write() as uow:
        uow.ledger.award(program.id, "PTS", 1000, organization_id=org["id"], participant_id=person["id"],
                         split=SPLIT, expiry=NEVER)
        left = uow.programs.participant_left(program.id, person["id"], "moved to a competitor")
    assert left["status"] == "left"
    assert balance(allegiance, f.pool_account(allegiance, program.id, org["id"])) == pool_after
    assert balance(allegiance, f.personal_account(allegiance, program.id, org["id"], person["id"])) == person_after
    with allegiance.read() as uow:
        topics = [r.topic for r in uow.conn.execute(select(t.outbox.c.topic).order_by(t.outbox.c.id))]
    assert topics[-1] == "participant.left"
    assert_verified(allegiance)


def _setup_ledger(app: Allegiance, program_id: int) -> tuple[int, int]:
    org = f.organization(app, program_id)
    pool = f.pool_account(app, program_id, org["id"])
    with app.write() as uow:
        for amount in (100, 200, 300):
            uow.ledger.award(program_id, "PTS", amount, organization_id=org["id"], participant_id=None,
                             split=SPLIT, expiry=NEVER)
        spend = uow.ledger.spend(program_id, pool, 50)
    return pool, spend.transaction_id


@pytest.mark.parametrize("tamper", ["edit_amount", "edit_memo", "delete_transaction", "drop_last", "edit_cache",
                                    "edit_shard", "unsealed"])
def test_verify_detects_edited_or_deleted_rows(allegiance: Allegiance, program: ProgramFixture,
                                               tamper: str) -> None:
    pool, spend_id = _setup_ledger(allegiance, program.id)
    assert_verified(allegiance)
    with allegiance.write() as uow:
        conn = uow.conn
        if allegiance.db.dialect == "sqlite":
            conn.execute(text("PRAGMA foreign_keys=OFF"))
        if tamper == "edit_amount":  # both legs, so the transaction still balances
            conn.execute(text("UPDATE postings SET amount = amount * 2 WHERE transaction_id = :t"), {"t": spend_id})
        elif tamper == "edit_memo":
            conn.execute(text("UPDATE transactions SET memo = 'nothing to see' WHERE id = :t"), {"t": spend_id - 1})
        elif tamper in ("delete_transaction", "drop_last"):
            victim = spend_id - 2 if tamper == "delete_transaction" else spend_id
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET session_replication_role = replica"))
            for table in ("lot_allocations", "lots"):
                conn.execute(text(f"DELETE FROM {table} WHERE posting_id IN "
                                  "(SELECT id FROM postings WHERE transaction_id = :t)"), {"t": victim})
            conn.execute(text("DELETE FROM postings WHERE transaction_id = :t"), {"t": victim})
            conn.execute(text("DELETE FROM transactions WHERE id = :t"), {"t": victim})
        elif tamper == "edit_shard":
            conn.execute(text("UPDATE account_balance_shards SET amount = amount + 1"))
        elif tamper == "unsealed":
            conn.execute(text("UPDATE transactions SET chain_seq = NULL WHERE id = :t"), {"t": spend_id})
        else:
            conn.execute(text("UPDATE accounts SET balance = balance + 1 WHERE id = :a"), {"a": pool})
    with allegiance.read() as uow:
        report = verify(uow.conn)
    assert not report.ok
    expected = {"edit_amount": "altered", "edit_memo": "altered", "delete_transaction": "chain broken",
                "drop_last": "chain head", "edit_cache": "caches balance", "edit_shard": "balance shards",
                "unsealed": "never sealed"}[tamper]
    assert any(expected in problem for problem in report.problems), report.problems


def test_program_accounts_carry_no_cached_balance(allegiance: Allegiance, program: ProgramFixture) -> None:
    """Issuing never updates a shared row: the issued account's balance is derived, not stored."""
    _setup_ledger(allegiance, program.id)
    with allegiance.read() as uow:
        issued = uow.ledger.system_account(program.id, AccountKind.ISSUED, "PTS")
        row = uow.conn.execute(select(t.accounts.c.balance, t.accounts.c.version)
                               .where(t.accounts.c.id == issued.id)).one()
    assert row == (None, 0)
    with allegiance.read() as uow:  # derived from a few counter shards, equal to -Σ issued
        assert queries.account(uow.conn, program.id, issued.id)["balance"] == -600
