"""A Hypothesis state machine over the ledger with a model oracle.

Rules: award, spend, transfer, hold, post (partial), void, expire holds and lots (virtual time),
reverse, a person leaving. After every step: each cached balance equals the model, and
``verify`` (conservation, Σ postings = balance, lots, holds, hash chain) holds.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from allegiance.bootstrap import build
from allegiance.kernel.clock import FixedClock
from allegiance.ledger.errors import Overdraw
from allegiance.ledger.model import AccountKind
from allegiance.ledger.policy import AwardSplit, ExpiryMode, ExpiryPolicy, LeaverPolicy
from allegiance.programs.model import ProgramSettings
from allegiance.storage import tables as t
from allegiance.storage.migrate import upgrade
from allegiance.storage.verify import verify
from tests.conftest import make_settings

_TEMPLATE: Path | None = None


def _database() -> str:
    global _TEMPLATE
    if _TEMPLATE is None:
        _TEMPLATE = Path(tempfile.mkdtemp()) / "template.db"
        upgrade(f"sqlite:///{_TEMPLATE}")
    path = Path(tempfile.mkdtemp()) / "machine.db"
    shutil.copy(_TEMPLATE, path)
    return f"sqlite:///{path}"


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def open_program(self) -> None:
        self.clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
        self.url = _database()
        self.app = build(make_settings(self.url), clock=self.clock)
        settings_ = ProgramSettings(award_split=AwardSplit(participant_percent=40),
                                    leaver_policy=LeaverPolicy.SWEEP_TO_POOL,
                                    expiry=ExpiryPolicy(mode=ExpiryMode.DAYS, days=10))
        with self.app.write() as uow:
            self.program = uow.programs.create_program("machine", "Machine", settings_)["id"]
            self.org = uow.programs.create_organization(self.program, {"external_id": "o", "name": "O",
                                                                       "kind": "customer"})["id"]
            self.person = uow.programs.create_participant(self.program, {
                "organization_id": self.org, "external_id": "p", "name": "P", "role": "owner"})["id"]
            self.pool = uow.ledger.holder_account(self.program, "PTS", self.org).id
            self.personal = uow.ledger.holder_account(self.program, "PTS", self.org, self.person).id
        self.model = {self.pool: 0, self.personal: 0}
        self.holds: dict[int, tuple[int, int]] = {}  # hold id -> (account, amount)
        self.reversible: list[int] = []
        self.left = False

    def teardown(self) -> None:
        if hasattr(self, "app"):
            self.app.close()
            shutil.rmtree(Path(self.url.removeprefix("sqlite:///")).parent, ignore_errors=True)

    def _accounts(self) -> st.SearchStrategy[int]:
        return st.sampled_from([self.pool, self.personal])

    @rule(amount=st.integers(1, 500), to_person=st.booleans())
    def award(self, amount: int, to_person: bool) -> None:
        to_person = to_person and not self.left
        with self.app.write() as uow:
            posted = uow.ledger.award(self.program, "PTS", amount, organization_id=self.org,
                                      participant_id=self.person if to_person else None,
                                      split=AwardSplit(participant_percent=40),
                                      expiry=ExpiryPolicy(mode=ExpiryMode.DAYS, days=10))
        person_share = amount * 40 // 100 if to_person else 0
        self.model[self.pool] += amount - person_share
        self.model[self.personal] += person_share
        self.reversible.append(posted.transaction_id)

    @rule(data=st.data(), amount=st.integers(1, 400))
    def spend(self, data: st.DataObject, amount: int) -> None:
        account = data.draw(st.sampled_from([self.pool, self.personal]))
        try:
            with self.app.write() as uow:
                posted = uow.ledger.spend(self.program, account, amount)
        except Overdraw:
            assert amount > self.model[account]
            return
        assert amount <= self.model[account]
        self.model[account] -= amount
        self.reversible.append(posted.transaction_id)

    @rule(amount=st.integers(1, 300), to_pool=st.booleans())
    def transfer(self, amount: int, to_pool: bool) -> None:
        source, target = (self.personal, self.pool) if to_pool else (self.pool, self.personal)
        try:
            with self.app.write() as uow:
                uow.ledger.transfer(self.program, source, target, amount)
        except Overdraw:
            assert amount > self.model[source]
            return
        self.model[source] -= amount
        self.model[target] += amount

    @rule(data=st.data(), amount=st.integers(1, 300))
    def hold(self, data: st.DataObject, amount: int) -> None:
        account = data.draw(st.sampled_from([self.pool, self.personal]))
        try:
            with self.app.write() as uow:
                hold = uow.ledger.reserve(self.program, account, amount, ttl=timedelta(days=2))
        except Overdraw:
            assert amount > self.model[account]
            return
        self.model[account] -= amount
        self.holds[hold.id] = (account, amount)

    @precondition(lambda self: bool(self.holds))
    @rule(data=st.data())
    def post_hold(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        account, amount = self.holds.pop(hold_id)
        capture = data.draw(st.integers(1, amount))
        with self.app.write() as uow:
            uow.ledger.post_hold(self.program, hold_id, capture)
        self.model[account] += amount - capture

    @precondition(lambda self: bool(self.holds))
    @rule(data=st.data())
    def void_hold(self, data: st.DataObject) -> None:
        hold_id = data.draw(st.sampled_from(sorted(self.holds)))
        account, amount = self.holds.pop(hold_id)
        with self.app.write() as uow:
            uow.ledger.void_hold(self.program, hold_id)
        self.model[account] += amount

    @rule(days=st.integers(1, 12))
    def time_passes_and_jobs_run(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))
        now = self.clock.now()
        with self.app.write() as uow:
            for hold_id in [h.id for h in uow.ledger_store.due_holds(now, 1000)]:
                account, amount = self.holds.pop(hold_id)
                uow.ledger.void_hold(self.program, hold_id, expired=True)
                self.model[account] += amount
        for account in (self.pool, self.personal):
            with self.app.write() as uow:
                due = sum(lot.remaining for lot in uow.ledger_store.open_lots(account)
                          if lot.expires_at is not None and lot.expires_at <= now)
                posted = uow.ledger.expire_lots_of(account)
                assert (posted is None) == (due == 0)
                if posted is not None:
                    assert -sum(p.amount for p in posted.postings if p.account_id == account) == due
            self.model[account] -= due
            with self.app.write() as uow:  # idempotent: a second run finds nothing
                assert uow.ledger.expire_lots_of(account) is None

    @precondition(lambda self: bool(self.reversible))
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        txn = data.draw(st.sampled_from(self.reversible))
        with self.app.read() as uow:
            legs = {p.account_id: p.amount for p in uow.conn.execute(
                select(t.postings.c.account_id, func.sum(t.postings.c.amount).label("amount"))
                .where(t.postings.c.transaction_id == txn).group_by(t.postings.c.account_id))}
        try:
            with self.app.write() as uow:
                uow.ledger.reverse(self.program, txn, memo="machine")
        except Overdraw:
            assert any(self.model.get(a, 0) < amount for a, amount in legs.items() if amount > 0)
            return
        self.reversible.remove(txn)
        for account, amount in legs.items():
            if account in self.model:
                self.model[account] -= amount

    @precondition(lambda self: not self.left)
    @rule()
    def person_leaves(self) -> None:
        with self.app.write() as uow:
            uow.programs.participant_left(self.program, self.person, "left")
        self.left = True
        self.model[self.pool] += self.model[self.personal]
        self.model[self.personal] = 0

    @invariant()
    def balances_match_the_model_and_every_invariant_holds(self) -> None:
        if not hasattr(self, "app"):
            return
        with self.app.read() as uow:
            for account, expected in self.model.items():
                cached = uow.conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == account)).scalar()
                assert cached == expected, (account, cached, expected)
            escrow = sum(amount for _, amount in self.holds.values())
            held = uow.conn.execute(select(func.coalesce(func.sum(t.accounts.c.balance), 0)).where(
                t.accounts.c.kind == AccountKind.HELD.value)).scalar()
            assert held == escrow
            report = verify(uow.conn)
            assert report.ok, report.problems


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
