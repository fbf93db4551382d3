"""SQL side of the ledger (implements ``allegiance.ledger.ports.LedgerPort``).

Lock order, always: hold row → holder accounts by ascending id → the program's chain head.
Every writer takes them in that order, so two writers can wait on each other but never deadlock.
The chain head is taken last, for the shortest time, just before the rows are appended.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from allegiance.kernel.clock import Clock
from allegiance.kernel.hashing import canonical_json
from allegiance.ledger.model import AccountKind, TransactionDraft, account_address
from allegiance.ledger.policy import OpenLot
from allegiance.ledger.ports import Account, Appended, Hold
from allegiance.storage import tables as t
from allegiance.storage.outbox import emit
from allegiance.storage.upsert import insert_ignore

GENESIS = "0" * 64
SHARDS = 8  # counter rows per program account: enough to spread 2-8 concurrent writers


def chain_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(content)).encode()).hexdigest()


def transaction_content(row: Any, postings: Sequence[tuple[int, int, str]]) -> dict[str, Any]:
    """What the chain hash covers: everything that gives a transaction its meaning."""
    return {
        "id": row["id"],
        "chain_seq": row["chain_seq"],
        "program_id": row["program_id"],
        "kind": row["kind"],
        "organization_id": row["organization_id"],
        "event_id": row["event_id"],
        "reverses_id": row["reverses_id"],
        "memo": row["memo"],
        "metadata": row["metadata"],
        "created_at": row["created_at"].isoformat(),
        "postings": [list(p) for p in postings],
    }


def account_of(row: Any) -> Account:
    return Account(
        id=row.id,
        program_id=row.program_id,
        address=row.address,
        unit=row.unit,
        kind=AccountKind(row.kind),
        organization_id=row.organization_id,
        participant_id=row.participant_id,
        balance=row.balance,
    )


def _hold(row: Any) -> Hold:
    return Hold(**{name: getattr(row, name) for name in Hold.__dataclass_fields__})


@functools.cache
def shard_upsert(dialect: str) -> Any:
    """Add to one counter row of a program account, creating it if absent. Built once per dialect:
    building an ``ON CONFLICT`` statement costs SQLAlchemy ~0.5 ms, more than running it."""
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(t.account_balance_shards)
    return statement.on_conflict_do_update(
        index_elements=["account_id", "shard"],
        set_={"amount": t.account_balance_shards.c.amount + statement.excluded.amount})


def add_to_shard(conn: Connection, account_id: int, shard: int, delta: int) -> None:
    """Add to one counter row of a program account (upsert on both dialects)."""
    conn.execute(shard_upsert(conn.dialect.name), {"account_id": account_id, "shard": shard, "amount": delta})


# The statements of every award, spend and transfer, built once (as ``shard_upsert``): building a
# statement and its cache key costs SQLAlchemy more than SQLite takes to run it, and a ledger write
# runs about ten of them. Bound names differ from column names, as SQLAlchemy requires in SET.
_a, _tx, _heads = t.accounts, t.transactions, t.ledger_heads
_ACCOUNT_AT = select(_a).where(_a.c.program_id == bindparam("b_program"), _a.c.address == bindparam("b_address"))
ACCOUNT_BY_ID = select(_a).where(_a.c.id == bindparam("b_id"), _a.c.program_id == bindparam("b_program"))
_KINDS = select(_a.c.id, _a.c.kind).where(_a.c.id.in_(bindparam("b_ids", expanding=True)))
_INSERT_TRANSACTION = insert(_tx).returning(_tx.c.id)
_INSERT_POSTINGS = insert(t.postings).returning(t.postings.c.id, sort_by_parameter_order=True)
_INSERT_LOTS = insert(t.lots)
_ADD_TO_BALANCE = (update(_a).where(_a.c.id == bindparam("b_id"))
                   .values(balance=_a.c.balance + bindparam("b_delta"), version=_a.c.version + 1))
_HEAD = select(_heads.c.last_seq, _heads.c.last_hash).where(_heads.c.program_id == bindparam("b_program"))
_HEAD_LOCKED = _HEAD.with_for_update()
_CHAIN = (update(_tx).where(_tx.c.id == bindparam("b_id"))
          .values(chain_seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), hash=bindparam("b_hash")))
_MOVE_HEAD = (update(_heads).where(_heads.c.program_id == bindparam("b_program"))
              .values(last_transaction_id=bindparam("b_id"), last_seq=bindparam("b_seq"),
                      last_hash=bindparam("b_hash")))


class SqlLedger:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock
        self._unsealed: dict[int, tuple[int, dict[str, Any], list[tuple[int, int, str]]]] = {}
        self.postgres = conn.dialect.name == "postgresql"

    # -- accounts ----------------------------------------------------------------------------
    def account_for(
        self,
        program_id: int,
        kind: AccountKind,
        unit: str,
        *,
        organization_id: int | None = None,
        participant_id: int | None = None,
        escrow_of: AccountKind | None = None,
    ) -> Account:
        address = account_address(
            kind, unit, program_id=program_id, organization_id=organization_id,
            participant_id=participant_id, escrow_of=escrow_of,
        )
        where = {"b_program": program_id, "b_address": address}
        row = self.conn.execute(_ACCOUNT_AT, where).first()
        if row is None:
            insert_ignore(self.conn, t.accounts, {
                "program_id": program_id, "address": address, "unit": unit, "kind": kind.value,
                "organization_id": organization_id, "participant_id": participant_id,
                "balance": 0 if kind.is_holder else None, "version": 0, "created_at": self.clock.now(),
            }, ["program_id", "address"])
            row = self.conn.execute(_ACCOUNT_AT, where).one()
        return account_of(row)

    def get_account(self, program_id: int, account_id: int) -> Account | None:
        row = self.conn.execute(ACCOUNT_BY_ID, {"b_id": account_id, "b_program": program_id}).first()
        return account_of(row) if row else None

    def holder_accounts_of(self, program_id: int, participant_id: int) -> list[Account]:
        rows = self.conn.execute(select(t.accounts).where(
            t.accounts.c.program_id == program_id, t.accounts.c.participant_id == participant_id
        ).order_by(t.accounts.c.id))
        return [account_of(r) for r in rows]

    def lock_accounts(self, account_ids: Sequence[int]) -> dict[int, Account]:
        if not account_ids:
            return {}
        query = select(t.accounts).where(t.accounts.c.id.in_(sorted(account_ids))).order_by(t.accounts.c.id)
        if self.postgres:
            # FOR NO KEY UPDATE: it excludes every other writer of the account (they take the same
            # lock, or the balance UPDATE's), but not the KEY SHARE lock that inserting a posting or a
            # lot referencing the account takes: an award to it writes those meanwhile, and waits
            # only at its balance UPDATE (LedgerService.execute).
            query = query.with_for_update(key_share=True)
        return {row.id: account_of(row) for row in self.conn.execute(query)}

    def open_lots(self, account_id: int) -> list[OpenLot]:
        rows = self.conn.execute(
            select(t.lots.c.id, t.lots.c.remaining, t.lots.c.expires_at)
            .where(t.lots.c.account_id == account_id, t.lots.c.remaining > 0)
            .order_by(t.lots.c.id)
        )
        return [OpenLot(r.id, r.remaining, r.expires_at) for r in rows]

    # -- the append ------------------------------------------------------------------------
    def append(
        self, draft: TransactionDraft, allocations: dict[int, list[tuple[int, int]]], now: datetime
    ) -> Appended:
        """Write the transaction unsealed; :meth:`seal` chains it last, holding the head briefly."""
        conn = self.conn
        kinds = dict(conn.execute(_KINDS, {"b_ids": sorted({p.account_id for p in draft.postings})}).all())
        header = {
            "program_id": draft.program_id, "kind": draft.kind.value, "organization_id": draft.organization_id,
            "event_id": draft.event_id, "reverses_id": draft.reverses_id, "memo": draft.memo,
            "metadata": draft.metadata, "created_at": now,
        }
        txn_id = conn.execute(_INSERT_TRANSACTION, {**header, "prev_hash": "", "hash": ""}).scalar_one()
        posting_ids = conn.execute(
            _INSERT_POSTINGS,
            [{"transaction_id": txn_id, "program_id": draft.program_id, "account_id": p.account_id,
              "unit": p.unit, "amount": p.amount} for p in draft.postings],
        ).scalars().all()
        deltas: dict[int, int] = defaultdict(int)
        program_deltas: dict[int, int] = defaultdict(int)
        new_lots = []
        for index, (posting, posting_id) in enumerate(zip(draft.postings, posting_ids, strict=True)):
            if not AccountKind(kinds[posting.account_id]).is_holder:
                program_deltas[posting.account_id] += posting.amount
                continue
            deltas[posting.account_id] += posting.amount
            if posting.amount > 0:
                new_lots.append({"program_id": draft.program_id, "account_id": posting.account_id,
                                 "posting_id": posting_id, "amount": posting.amount, "remaining": posting.amount,
                                 "expires_at": posting.expires_at})
            else:
                for lot_id, take in allocations[index]:
                    conn.execute(insert(t.lot_allocations).values(lot_id=lot_id, posting_id=posting_id, amount=take))
                    done = conn.execute(update(t.lots).where(t.lots.c.id == lot_id, t.lots.c.remaining >= take)
                                        .values(remaining=t.lots.c.remaining - take)).rowcount
                    if done != 1:
                        raise RuntimeError(f"lot {lot_id} changed under its account lock")
        if new_lots:
            conn.execute(_INSERT_LOTS, new_lots)
        for account_id, delta in sorted(deltas.items()):
            # The CHECK (balance >= 0) is the last line of defence; the lot allocation above
            # already refused any overdraw under the account lock.
            conn.execute(_ADD_TO_BALANCE, {"b_id": account_id, "b_delta": delta})
        for account_id, delta in sorted(program_deltas.items()):
            if delta:
                add_to_shard(conn, account_id, txn_id % SHARDS, delta)
        self._unsealed[txn_id] = (draft.program_id, {**header, "id": txn_id},
                                  [(p.account_id, p.amount, p.unit) for p in draft.postings])
        return Appended(txn_id, "", tuple(posting_ids))

    def seal(self, transaction_id: int) -> str:
        """Chain the transaction to its program's head: lock the head, take the next position,
        hash, move the head. Last step of every write, so the head (the one row every writer of a
        program shares) is held only for these two updates and the commit."""
        program_id, header, legs = self._unsealed.pop(transaction_id)
        head_query = _HEAD_LOCKED if self.postgres else _HEAD
        where = {"b_program": program_id}
        head = self.conn.execute(head_query, where).first()
        if head is None:
            insert_ignore(self.conn, t.ledger_heads, {"program_id": program_id, "last_transaction_id": None,
                                                      "last_seq": 0, "last_hash": GENESIS}, ["program_id"])
            head = self.conn.execute(head_query, where).one()
        seq = head.last_seq + 1
        digest = chain_hash(head.last_hash, transaction_content({**header, "chain_seq": seq}, legs))
        self.conn.execute(_CHAIN, {"b_id": transaction_id, "b_seq": seq, "b_prev": head.last_hash, "b_hash": digest})
        self.conn.execute(_MOVE_HEAD, {"b_program": program_id, "b_id": transaction_id, "b_seq": seq,
                                       "b_hash": digest})
        return digest

    # -- reads used by reversals ---------------------------------------------------------
    def transaction_header(self, program_id: int, transaction_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.transactions).where(
            t.transactions.c.id == transaction_id, t.transactions.c.program_id == program_id)).first()
        return dict(row._mapping) if row else None

    def is_reversed(self, transaction_id: int) -> bool:
        return self.conn.execute(
            select(t.transactions.c.id).where(t.transactions.c.reverses_id == transaction_id)).first() is not None

    def transaction_postings(self, transaction_id: int) -> list[tuple[int, int, str, datetime | None, int | None]]:
        p, lots, alloc = t.postings, t.lots, t.lot_allocations
        legs: list[tuple[int, int, str, datetime | None, int | None]] = []
        rows = self.conn.execute(
            select(p.c.id, p.c.account_id, p.c.amount, p.c.unit, lots.c.id.label("lot_id"), lots.c.expires_at)
            .outerjoin(lots, lots.c.posting_id == p.c.id)
            .where(p.c.transaction_id == transaction_id).order_by(p.c.id)
        ).all()
        for row in rows:
            consumed: list[Any] = []
            if row.amount < 0:
                consumed = list(self.conn.execute(
                    select(alloc.c.amount, lots.c.expires_at).join(lots, lots.c.id == alloc.c.lot_id)
                    .where(alloc.c.posting_id == row.id).order_by(alloc.c.id)))
            if consumed:
                legs.extend((row.account_id, -c.amount, row.unit, c.expires_at, None) for c in consumed)
            else:
                legs.append((row.account_id, row.amount, row.unit, row.expires_at, row.lot_id))
        return legs

    # -- holds ---------------------------------------------------------------------------------
    def insert_hold(self, values: dict[str, Any]) -> int:
        return int(self.conn.execute(insert(t.holds).values(**values).returning(t.holds.c.id)).scalar_one())

    def get_hold(self, program_id: int, hold_id: int, *, lock: bool = False) -> Hold | None:
        query = select(t.holds).where(t.holds.c.id == hold_id, t.holds.c.program_id == program_id)
        if lock and self.postgres:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return _hold(row) if row else None

    def resolve_hold(
        self, hold_id: int, status: str, transaction_id: int, posted_amount: int | None, now: datetime
    ) -> bool:
        done = self.conn.execute(
            update(t.holds).where(t.holds.c.id == hold_id, t.holds.c.status == "pending")
            .values(status=status, resolve_transaction_id=transaction_id, posted_amount=posted_amount,
                    resolved_at=now)
        ).rowcount
        return done == 1

    def due_holds(self, now: datetime, limit: int) -> list[Hold]:
        rows = self.conn.execute(select(t.holds).where(t.holds.c.status == "pending", t.holds.c.expires_at <= now)
                                 .order_by(t.holds.c.id).limit(limit))
        return [_hold(r) for r in rows]

    def expired_lot_accounts(self, now: datetime, limit: int) -> list[int]:
        query = (
            select(t.lots.c.account_id).distinct()
            .join(t.accounts, t.accounts.c.id == t.lots.c.account_id)
            .where(and_(t.lots.c.remaining > 0, t.lots.c.expires_at <= now,
                        t.accounts.c.kind.in_([AccountKind.POOL.value, AccountKind.PERSONAL.value])))
            .order_by(t.lots.c.account_id).limit(limit)
        )
        return list(self.conn.execute(query).scalars())

    # -- outbox ---------------------------------------------------------------------------------
    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        emit(self.conn, self.clock, program_id, topic, payload, organization_id)
