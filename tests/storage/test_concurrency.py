"""No overdraw under concurrency: 8 workers × 50 spends of 10 against a balance of 1,000.

The naive variant (read the balance in one transaction, write in another) runs first under the same
load and must overdraw — proof that the test can fail; the real ledger must not.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select, update

from allegiance.bootstrap import Allegiance
from allegiance.kernel.errors import AllegianceError
from allegiance.ledger.errors import HoldAlreadyResolved, Overdraw
from allegiance.ledger.policy import AwardSplit, ExpiryPolicy, SplitMode
from allegiance.storage import tables as t
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture

WORKERS, SPENDS, AMOUNT, START = 8, 50, 10, 1000


def _funded_pool(app: Allegiance, program_id: int) -> int:
    org = f.organization(app, program_id)
    pool = f.pool_account(app, program_id, org["id"])
    f.fund(app, program_id, pool, START)
    return pool


def _balance(app: Allegiance, account_id: int) -> int:
    with app.read() as uow:
        return int(uow.conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == account_id)).scalar_one())


def _hammer(worker: object) -> list[str]:
    barrier = threading.Barrier(WORKERS)

    def run(_: int) -> list[str]:
        barrier.wait()
        return [worker() for _ in range(SPENDS)]  # type: ignore[operator]

    with ThreadPoolExecutor(WORKERS) as pool:
        return [outcome for outcomes in pool.map(run, range(WORKERS)) for outcome in outcomes]


def test_a_naive_read_then_write_spend_overdraws(allegiance: Allegiance, program: ProgramFixture) -> None:
    account = _funded_pool(allegiance, program.id)
    gate = threading.Barrier(WORKERS)
    first = threading.local()

    def naive_spend() -> str:
        with allegiance.read() as uow:
            seen = uow.conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == account)).scalar_one()
        if not getattr(first, "done", False):
            first.done = True
            gate.wait()  # everyone has read before anyone writes: the classic check-then-act race
        if seen < AMOUNT:
            return "refused"
        with allegiance.db.write() as conn:  # write back what was read: a lost update
            conn.execute(update(t.accounts).where(t.accounts.c.id == account).values(balance=seen - AMOUNT))
        return "spent"

    outcomes = Counter(_hammer(naive_spend))
    assert outcomes["spent"] * AMOUNT > START  # it "spent" more than there was


def test_concurrent_spends_never_overdraw(allegiance: Allegiance, program: ProgramFixture) -> None:
    account = _funded_pool(allegiance, program.id)

    def spend() -> str:
        try:
            with allegiance.write() as uow:
                uow.ledger.spend(program.id, account, AMOUNT)
            return "spent"
        except Overdraw:
            return "refused"

    outcomes = Counter(_hammer(spend))
    assert outcomes == {"spent": START // AMOUNT, "refused": WORKERS * SPENDS - START // AMOUNT}
    assert _balance(allegiance, account) == 0
    with allegiance.read() as uow:
        report = verify(uow.conn)
    assert report.ok, report.problems


def test_racing_resolutions_of_one_hold_have_exactly_one_winner(allegiance: Allegiance,
                                                                program: ProgramFixture) -> None:
    account = _funded_pool(allegiance, program.id)
    with allegiance.write() as uow:
        hold = uow.ledger.reserve(program.id, account, 600, ttl=timedelta(hours=1))
    barrier = threading.Barrier(6)

    def resolve(i: int) -> str:
        barrier.wait()
        try:
            with allegiance.write() as uow:
                if i % 2:
                    uow.ledger.post_hold(program.id, hold.id)
                else:
                    uow.ledger.void_hold(program.id, hold.id)
            return "won"
        except HoldAlreadyResolved:
            return "lost"
        except AllegianceError as exc:  # pragma: no cover - shows up in the assertion
            return f"error {exc}"

    with ThreadPoolExecutor(6) as pool:
        outcomes = Counter(pool.map(resolve, range(6)))
    assert outcomes == {"won": 1, "lost": 5}
    with allegiance.read() as uow:
        status = uow.ledger_store.get_hold(program.id, hold.id).status  # type: ignore[union-attr]
        report = verify(uow.conn)
    assert _balance(allegiance, account) == (400 if status == "posted" else START)
    assert report.ok, report.problems


def test_awards_spends_and_transfers_both_ways_never_deadlock(allegiance: Allegiance, program: ProgramFixture) -> None:
    """Awards (which lock their accounts late, by their balance updates) racing spends and transfers
    in both directions between the same pool and person (which lock both accounts first): every
    operation either happens or is refused for lack of points — no deadlock, no other error — and
    the ledger still adds up. Locking only the debited account up front deadlocks here on PostgreSQL
    (pool → person against person → pool)."""
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    pool = f.pool_account(allegiance, program.id, org["id"])
    personal = f.personal_account(allegiance, program.id, org["id"], person["id"])
    f.fund(allegiance, program.id, pool, 500)
    f.fund(allegiance, program.id, personal, 500)
    split = AwardSplit(mode=SplitMode.SHARED, participant_percent=50)

    def award() -> None:
        with allegiance.write() as uow:
            uow.ledger.award(program.id, "PTS", 10, organization_id=org["id"], participant_id=person["id"],
                             split=split, expiry=ExpiryPolicy())

    def transfer(source: int, target: int) -> Callable[[], None]:
        def run() -> None:
            with allegiance.write() as uow:
                uow.ledger.transfer(program.id, source, target, 7)
        return run

    def spend() -> None:
        with allegiance.write() as uow:
            uow.ledger.spend(program.id, personal, 5)

    kinds = [award, award, transfer(pool, personal), transfer(personal, pool), spend, award]
    barrier = threading.Barrier(len(kinds))

    def worker(index: int) -> Counter[str]:
        outcomes: Counter[str] = Counter()
        barrier.wait()
        for _ in range(25):
            try:
                kinds[index]()
                outcomes["done"] += 1
            except Overdraw:
                outcomes["refused"] += 1
            except Exception as exc:  # a deadlock, a lock timeout, a serialization failure...
                outcomes[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        return outcomes

    with ThreadPoolExecutor(len(kinds)) as pool_of_threads:
        outcomes = sum(pool_of_threads.map(worker, range(len(kinds))), Counter())
    assert set(outcomes) <= {"done", "refused"}, outcomes
    assert outcomes["done"] >= 3 * 25  # the awards never fail
    with allegiance.read() as uow:
        report = verify(uow.conn)
    assert report.ok, report.problems

