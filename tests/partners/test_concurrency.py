"""Partners under concurrency (SQLite and PostgreSQL): one receipt sent by many workers at once is
credited once, and redemptions racing for one balance never overdraw it."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select

from allegiance.bootstrap import Allegiance
from allegiance.ledger.errors import Overdraw
from allegiance.partners.model import PartnerCreate, PartnerOperation
from allegiance.storage import tables as t
from allegiance.storage.tables_partners import partner_operations
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture

WORKERS = 8


def race(work: Any, rounds: int = 1) -> list[str]:
    barrier = threading.Barrier(WORKERS)

    def run(_: int) -> list[str]:
        barrier.wait()
        return [work() for _ in range(rounds)]

    with ThreadPoolExecutor(WORKERS) as pool:
        return [outcome for outcomes in pool.map(run, range(WORKERS)) for outcome in outcomes]


def setup(app: Allegiance, program_id: int) -> tuple[int, int, int]:
    with app.write() as uow:
        partner = uow.partners.create(program_id, PartnerCreate(code="shop", name="Shop"))
    org = f.organization(app, program_id)
    return int(partner["id"]), org["id"], f.pool_account(app, program_id, org["id"])


def test_one_receipt_sent_by_many_workers_is_credited_once(allegiance: Allegiance, program: ProgramFixture) -> None:
    partner_id, org, pool = setup(allegiance, program.id)
    body = PartnerOperation(reference="same-receipt", organization_id=org, points=100)

    def earn() -> str:
        with allegiance.write() as uow:
            return "duplicate" if uow.partners.earn(program.id, partner_id, body)["duplicate"] else "credited"

    outcomes = Counter(race(earn))
    assert outcomes == {"credited": 1, "duplicate": WORKERS - 1}
    with allegiance.read() as uow:
        assert uow.conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == pool)).scalar_one() == 100
        assert uow.conn.execute(select(func.count()).select_from(partner_operations)).scalar_one() == 1


def test_racing_redemptions_never_overdraw(allegiance: Allegiance, program: ProgramFixture) -> None:
    partner_id, org, pool = setup(allegiance, program.id)
    f.fund(allegiance, program.id, pool, 1000)
    counter = iter(range(10**6))
    lock = threading.Lock()

    def redeem() -> str:
        with lock:
            reference = f"pay-{next(counter)}"
        try:
            with allegiance.write() as uow:
                uow.partners.redeem(program.id, partner_id, PartnerOperation(
                    reference=reference, organization_id=org, points=10))
            return "spent"
        except Overdraw:
            return "refused"

    outcomes = Counter(race(redeem, rounds=20))
    assert outcomes == {"spent": 100, "refused": WORKERS * 20 - 100}
    with allegiance.read() as uow:
        assert uow.conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == pool)).scalar_one() == 0
        assert verify(uow.conn).ok
