"""No overdraw under concurrency: 8 workers × 50 spends of 10 against a balance of 1,000.

The naive variant (read the balance in one transaction, write in another) runs first under the same
load and must overdraw — proof that the test can fail; the real ledger must not.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import select, update

from allegiance.bootstrap import Allegiance
from allegiance.kernel.errors import AllegianceError
from allegiance.ledger.errors import HoldAlreadyResolved, Overdraw
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
