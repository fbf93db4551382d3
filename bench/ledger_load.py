"""Bulk-load award transactions straight into the ledger tables, consistent enough to pass
``allegiance.storage.verify.verify``.

Going through ``LedgerService.award`` costs a handful of statements per award; a million postings
that way would take longer than the whole suite. Instead this writes what ``SqlLedger.append``
would have written — transactions with their hash chain, postings (debit ``issued``, credit the
company pool), one lot per credit, the pools' cached balances and the chain head — with
``executemany`` and explicit ids. The caller runs ``verify`` afterwards to prove the rows are a
valid ledger. (It writes no outbox rows: nothing reads them here.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from allegiance.bootstrap import Allegiance
from allegiance.ledger.model import AccountKind
from allegiance.storage import ledger_repo
from allegiance.storage import tables as t
from allegiance.storage.ledger_repo import GENESIS, chain_hash, transaction_content

UNIT = "PTS"
Award = tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any], str]  # transaction, postings, lot, hash
# The schema is evolving: program-account balance shards and a per-program chain sequence are
# written when the tables have them, so the loader matches whichever ledger it runs against.
SHARDS: int = getattr(ledger_repo, "SHARDS", 0)
HAS_CHAIN_SEQ = "chain_seq" in t.transactions.c
HAS_SHARDS = SHARDS > 0 and hasattr(t, "account_balance_shards")


@dataclass(frozen=True)
class Loaded:
    transactions: int
    postings: int
    issued_account: int
    hot_account: int
    hot_postings: int


def _next_id(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _rows(program_id: int, count: int, first: dict[str, int], issued: int, pick: Callable[[int], tuple[int, int]],
          balances: dict[int, int], shards: dict[int, int]) -> Iterator[Award]:
    """One award at a time: (transaction row, its two postings, its lot, its hash)."""
    prev_hash = GENESIS
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(count):
        organization, pool = pick(n)
        amount = 10 + n % 90
        txn_id, debit_id, lot_id = first["transactions"] + n, first["postings"] + 2 * n, first["lots"] + n
        header = {"program_id": program_id, "kind": "award", "organization_id": organization, "event_id": None,
                  "reverses_id": None, "memo": "bench load", "metadata": {},
                  "created_at": start + timedelta(seconds=n)}
        if HAS_CHAIN_SEQ:
            header["chain_seq"] = n + 1
        content = transaction_content({**header, "id": txn_id, "chain_seq": n + 1},
                                      [(issued, -amount, UNIT), (pool, amount, UNIT)])
        digest = chain_hash(prev_hash, content)
        postings = [
            {"id": debit_id, "transaction_id": txn_id, "program_id": program_id, "account_id": issued, "unit": UNIT,
             "amount": -amount},
            {"id": debit_id + 1, "transaction_id": txn_id, "program_id": program_id, "account_id": pool, "unit": UNIT,
             "amount": amount},
        ]
        lot = {"id": lot_id, "program_id": program_id, "account_id": pool, "posting_id": debit_id + 1,
               "amount": amount, "remaining": amount, "expires_at": None}
        balances[pool] += amount
        if HAS_SHARDS:
            shards[txn_id % SHARDS] -= amount
        yield {**header, "id": txn_id, "prev_hash": prev_hash, "hash": digest}, postings, lot, digest
        prev_hash = digest


def load_awards(app: Allegiance, program_id: int, organizations: list[int], count: int, *,
                hot_share: float = 0.5, chunk: int = 20_000) -> Loaded:
    """``count`` awards: ``hot_share`` of them to the first organization's pool, the rest spread."""
    with app.write() as uow:
        issued = uow.ledger.system_account(program_id, AccountKind.ISSUED, UNIT).id
        pools = [uow.ledger.holder_account(program_id, UNIT, org).id for org in organizations]
        conn = uow.conn
        if conn.execute(select(t.transactions.c.id).where(t.transactions.c.program_id == program_id)).first():
            raise ValueError("load_awards needs a program with an empty ledger")
        first = {"transactions": _next_id(conn, t.transactions), "postings": _next_id(conn, t.postings),
                 "lots": _next_id(conn, t.lots)}
    every = max(1, round(1 / hot_share)) if hot_share > 0 else 0

    def pick(n: int) -> tuple[int, int]:
        index = 0 if every and n % every == 0 else 1 + n % max(1, len(organizations) - 1)
        index = min(index, len(organizations) - 1)
        return organizations[index], pools[index]

    balances: dict[int, int] = defaultdict(int)
    counts: dict[int, int] = defaultdict(int)
    shards: dict[int, int] = defaultdict(int)
    rows = _rows(program_id, count, first, issued, pick, balances, shards)
    last_id, last_hash = None, GENESIS
    while True:
        txns, postings, lots = [], [], []
        for txn, legs, lot, digest in rows:
            txns.append(txn)
            postings.extend(legs)
            lots.append(lot)
            counts[lot["account_id"]] += 1
            last_id, last_hash = txn["id"], digest
            if len(txns) >= chunk:
                break
        if not txns:
            break
        with app.write() as uow:
            uow.conn.execute(insert(t.transactions), txns)
            uow.conn.execute(insert(t.postings), postings)
            uow.conn.execute(insert(t.lots), lots)
    with app.write() as uow:
        conn = uow.conn
        for account, total in balances.items():
            conn.execute(update(t.accounts).where(t.accounts.c.id == account)
                         .values(balance=t.accounts.c.balance + total, version=t.accounts.c.version + counts[account]))
        conn.execute(t.ledger_heads.delete().where(t.ledger_heads.c.program_id == program_id))
        head: dict[str, Any] = {"program_id": program_id, "last_transaction_id": last_id, "last_hash": last_hash}
        if "last_seq" in t.ledger_heads.c:
            head["last_seq"] = count
        conn.execute(insert(t.ledger_heads).values(**head))
        if HAS_SHARDS:
            shard_table = t.account_balance_shards
            conn.execute(shard_table.delete().where(shard_table.c.account_id == issued))
            conn.execute(insert(shard_table), [{"account_id": issued, "shard": shard, "amount": amount}
                                         for shard, amount in sorted(shards.items())])
        if conn.dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for table in ("transactions", "postings", "lots"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
    return Loaded(count, 2 * count, issued, pools[0], counts[pools[0]])
