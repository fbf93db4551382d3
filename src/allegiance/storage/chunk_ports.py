"""The ports a bulk import with rules runs the pipeline against: the SQL repositories, with their
writes kept in a :class:`~allegiance.storage.chunk_writes.ChunkWrites` and their reads of buffered
tables seeing those pending writes (see that module for why the result equals the per-event path).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, bindparam, select

from allegiance.kernel.clock import Clock
from allegiance.ledger.model import AccountKind, TransactionDraft, account_address
from allegiance.ledger.policy import OpenLot
from allegiance.ledger.ports import Account, Appended
from allegiance.rules.settle import CounterKey
from allegiance.storage import tables as t
from allegiance.storage import tables_rules as r
from allegiance.storage.chunk_writes import AWARD_COLUMNS, ChunkWrites, stored_award, utc_or_none
from allegiance.storage.events_repo import SqlEvents
from allegiance.storage.ledger_repo import (
    SHARDS,
    SqlLedger,
    chain_hash,
    transaction_content,
)
from allegiance.storage.rules_repo import SqlCounters, SqlRules

P = ParamSpec("P")
R = TypeVar("R")
_a, _acc, _lots = r.rule_awards, t.accounts, t.lots
_KINDS = select(_acc.c.id, _acc.c.kind).where(_acc.c.id.in_(bindparam("ids", expanding=True)))


def _flushing(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """A read (or rare write) of a buffered table: write what is pending first, then run it."""

    @functools.wraps(method)
    def flushed(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        self.writes.flush()
        return method(self, *args, **kwargs)

    return flushed


class BufferedLedger(SqlLedger):
    """``SqlLedger`` whose appends wait in ``ChunkWrites``; see the module doc."""

    def __init__(self, conn: Connection, clock: Clock, writes: ChunkWrites) -> None:
        super().__init__(conn, clock)
        self.writes = writes

    def account_for(self, program_id: int, kind: AccountKind, unit: str, *, organization_id: int | None = None,
                    participant_id: int | None = None, escrow_of: AccountKind | None = None) -> Account:
        """Accounts are found (or created) once per chunk; a locked one comes with its balance now."""
        w = self.writes
        key = (program_id, account_address(kind, unit, program_id=program_id, organization_id=organization_id,
                                           participant_id=participant_id, escrow_of=escrow_of))
        account = w.accounts.get(key)
        if account is None and (program_id, organization_id) in w.loaded:  # absent: created by the flush
            account_id = w.ids[t.accounts.name].next()
            balance = 0 if kind.is_holder else None
            w.new_accounts[account_id] = {
                "id": account_id, "program_id": program_id, "address": key[1], "unit": unit, "kind": kind.value,
                "organization_id": organization_id, "participant_id": participant_id, "balance": balance,
                "version": 0, "created_at": self.clock.now()}
            account = w.accounts[key] = Account(account_id, program_id, key[1], unit, kind, organization_id,
                                                participant_id, balance)
            w.kinds[account_id] = kind
            if kind.is_holder:  # a row this chunk creates is nobody else's until the commit
                w.locked[account_id] = account
        elif account is None:
            if w.new_accounts:  # SQLite would give the new row an id this chunk has handed out
                w.flush()
            account = w.accounts[key] = super().account_for(
                program_id, kind, unit, organization_id=organization_id, participant_id=participant_id,
                escrow_of=escrow_of)
            w.kinds[account.id] = account.kind
        return w.locked.get(account.id, account)

    def lock_accounts(self, account_ids: Sequence[int]) -> dict[int, Account]:
        """Accounts not yet locked in this chunk are locked (and read) now, ascending; the others
        are already locked, and their balance is the one kept here."""
        w = self.writes
        missing = sorted({account_id for account_id in account_ids if account_id not in w.locked})
        if missing:
            for account_id, account in super().lock_accounts(missing).items():
                w.locked[account_id] = account
                w.kinds[account_id] = account.kind
        return {account_id: w.locked[account_id] for account_id in sorted(account_ids) if account_id in w.locked}

    def append(self, draft: TransactionDraft, allocations: dict[int, list[tuple[int, int]]],
               now: datetime) -> Appended:
        """``SqlLedger.append`` with the rows kept for ``flush`` and ids allocated now."""
        w = self.writes
        unknown = [p.account_id for p in draft.postings if p.account_id not in w.kinds]
        if unknown:
            for account_id, kind in self.conn.execute(_KINDS, {"ids": sorted(set(unknown))}):
                w.kinds[account_id] = AccountKind(kind)
        txn_id = w.ids[t.transactions.name].next()
        header = {
            "program_id": draft.program_id, "kind": draft.kind.value, "organization_id": draft.organization_id,
            "event_id": draft.event_id, "reverses_id": draft.reverses_id, "memo": draft.memo,
            "metadata": draft.metadata, "created_at": now,
        }
        posting_ids: list[int] = []
        deltas: dict[int, int] = defaultdict(int)
        program_deltas: dict[int, int] = defaultdict(int)
        legs: list[tuple[int, int, str, datetime | None, int | None]] | None = []
        next_posting, next_lot = w.ids[t.postings.name].next, w.ids[_lots.name].next
        for index, posting in enumerate(draft.postings):
            posting_id = next_posting()
            posting_ids.append(posting_id)
            account_id, amount, unit = posting.account_id, posting.amount, posting.unit
            w.postings.append({"id": posting_id, "transaction_id": txn_id, "program_id": draft.program_id,
                               "account_id": account_id, "unit": unit, "amount": amount})
            if not w.kinds[account_id].is_holder:
                program_deltas[account_id] += amount
                if legs is not None:
                    legs.append((account_id, amount, unit, None, None))
                continue
            deltas[account_id] += amount
            if amount > 0:
                lot_id = next_lot()
                w.new_lots[lot_id] = {"id": lot_id, "program_id": draft.program_id, "account_id": account_id,
                                      "posting_id": posting_id, "amount": amount, "remaining": amount,
                                      "expires_at": posting.expires_at}
                w.new_lots_of[account_id].append(lot_id)
                expires = w.lot_expiry[lot_id] = utc_or_none(posting.expires_at)
                if legs is not None:
                    legs.append((account_id, amount, unit, expires, lot_id))
                continue
            consumed = allocations[index]
            for lot_id, take in consumed:
                w.allocations.append({"lot_id": lot_id, "posting_id": posting_id, "amount": take})
                new_lot = w.new_lots.get(lot_id)
                if new_lot is None:
                    w.taken[lot_id] += take
                elif new_lot["remaining"] >= take:
                    new_lot["remaining"] -= take
                else:
                    raise RuntimeError(f"lot {lot_id} changed under its account lock")
            if legs is not None:
                if not consumed:
                    legs.append((account_id, amount, unit, None, None))
                elif all(lot_id in w.lot_expiry for lot_id, _ in consumed):
                    legs.extend((account_id, -take, unit, w.lot_expiry[lot_id], None) for lot_id, take in consumed)
                else:
                    legs = None
        w.legs[txn_id] = legs
        for account_id, delta in sorted(deltas.items()):
            w.add_balance(account_id, delta)
        for account_id, delta in sorted(program_deltas.items()):
            if delta:
                w.shards[(account_id, txn_id % SHARDS)] += delta
        w.unsealed[txn_id] = (draft.program_id, {**header, "id": txn_id},
                              [(p.account_id, p.amount, p.unit) for p in draft.postings])
        return Appended(txn_id, "", tuple(posting_ids))

    def seal(self, transaction_id: int) -> str:
        """``SqlLedger.seal`` on the head kept here (locked on the chunk's first seal)."""
        w = self.writes
        program_id, header, legs = w.unsealed.pop(transaction_id)
        _last_id, last_seq, last_hash = w.head(program_id)
        seq = last_seq + 1
        digest = chain_hash(last_hash, transaction_content({**header, "chain_seq": seq}, legs))
        w.transactions.append({**header, "chain_seq": seq, "prev_hash": last_hash, "hash": digest})
        w.heads[program_id] = (transaction_id, seq, digest)
        w.moved_heads.add(program_id)
        return digest

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        self.writes.emit(program_id, topic, payload, organization_id)

    def open_lots(self, account_id: int) -> list[OpenLot]:
        """The lots written before, less what this chunk's debits took, and this chunk's new lots."""
        w = self.writes
        lots = [OpenLot(lot.lot_id, lot.remaining - w.taken.get(lot.lot_id, 0), lot.expires_at)
                for lot in super().open_lots(account_id)]
        lots.extend(OpenLot(lot_id, w.new_lots[lot_id]["remaining"], w.lot_expiry[lot_id])
                    for lot_id in w.new_lots_of.get(account_id, ()))
        lots = sorted((lot for lot in lots if lot.remaining > 0), key=lambda lot: lot.lot_id)
        for lot in lots:
            w.lot_expiry[lot.lot_id] = lot.expires_at
        return lots

    def transaction_postings(self, transaction_id: int) -> list[tuple[int, int, str, datetime | None, int | None]]:
        """A transaction of this chunk from memory (its legs never change), any other from the database."""
        legs = self.writes.legs.get(transaction_id)
        if legs is not None:
            return list(legs)
        if transaction_id in self.writes.legs:
            self.writes.flush()
        return super().transaction_postings(transaction_id)

    get_account = _flushing(SqlLedger.get_account)
    holder_accounts_of = _flushing(SqlLedger.holder_accounts_of)
    transaction_header = _flushing(SqlLedger.transaction_header)
    is_reversed = _flushing(SqlLedger.is_reversed)
    insert_hold = _flushing(SqlLedger.insert_hold)
    get_hold = _flushing(SqlLedger.get_hold)
    resolve_hold = _flushing(SqlLedger.resolve_hold)
    due_holds = _flushing(SqlLedger.due_holds)
    expired_lot_accounts = _flushing(SqlLedger.expired_lot_accounts)


class BufferedCounters:
    """Cap and ladder counters: each row created and locked on its first use in the chunk (as
    ``SqlCounters.lock``), then counted here; ``flush`` writes the final amounts."""

    def __init__(self, writes: ChunkWrites, program_id: int) -> None:
        self.writes = writes
        self.program_id = program_id

    def lock(self, keys: Sequence[CounterKey]) -> dict[CounterKey, tuple[int, int]]:
        w, program_id = self.writes, self.program_id
        missing = sorted({key for key in keys if (program_id, key) not in w.counters})
        unknown = []
        for key in missing:
            if (program_id, key) in w.absent_counters:  # prefetched and absent: created by the flush
                w.absent_counters.discard((program_id, key))
                w.counters[(program_id, key)] = [0, 0]
                w.new_counters.add((program_id, key))
                continue
            unknown.append(key)  # not prefetched: as SqlCounters, at once
        if unknown:
            for key, (amount, count) in SqlCounters(w.conn, program_id).lock(unknown).items():
                w.counters[(program_id, key)] = [amount, count]
        return {key: (w.counters[(program_id, key)][0], w.counters[(program_id, key)][1]) for key in keys}

    def add(self, key: CounterKey, amount: int, count: int) -> None:
        entry = self.writes.counters.get((self.program_id, key))
        if entry is None:
            self.lock([key])
            entry = self.writes.counters[(self.program_id, key)]
        entry[0] += amount
        entry[1] += count
        self.writes.moved_counters.add((self.program_id, key))


class BufferedRules(SqlRules):
    """``SqlRules`` whose award rows, counters and outbox rows wait in ``ChunkWrites``."""

    def __init__(self, conn: Connection, clock: Clock, writes: ChunkWrites) -> None:
        super().__init__(conn, clock)
        self.writes = writes

    def counters(self, program_id: int) -> BufferedCounters:  # type: ignore[override]
        return BufferedCounters(self.writes, program_id)

    def insert_award(self, values: dict[str, Any]) -> int:
        w = self.writes
        award_id = w.ids[_a.name].next()
        row = dict.fromkeys(AWARD_COLUMNS)
        row.update({"returned": 0, "clawed": 0, "caps_hit": [], "capped": 0, "created_at": self.clock.now()})
        row.update(values)
        row["id"] = award_id
        w.awards[award_id] = row
        w.awards_by_key[row["match_key"]].append(award_id)
        w.fresh_awards[award_id] = None
        return award_id

    def update_award(self, award_id: int, values: dict[str, Any], *, expected_status: str | None = None) -> bool:
        w = self.writes
        row = w.awards.get(award_id)
        if row is None:  # never read in this chunk: straight to the database
            w.flush()
            return super().update_award(award_id, values, expected_status=expected_status)
        if expected_status is not None and row["status"] != expected_status:
            return False
        row.update(values)
        if award_id not in w.fresh_awards:  # a new row is written whole by the flush
            w.changed_awards.setdefault(award_id, set()).update(values)
        return True

    def _merged(self, rows: Iterable[dict[str, Any]], key: str,
                keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The database's answer merged with the rows kept here (which are the current versions)."""
        w = self.writes
        found = {row["id"]: w.keep_award(row) for row in rows}
        for award_id in w.awards_by_key.get(key, ()):
            found[award_id] = w.awards[award_id]
        return [stored_award(row) for _, row in sorted(found.items()) if keep(row)]

    def awards_by_key(self, program_id: int, rules: Sequence[str], key: str) -> list[dict[str, Any]]:
        wanted = set(rules)
        return self._merged(super().awards_by_key(program_id, rules, key), key, lambda row: (
            row["program_id"] == program_id and row["match_key"] == key and row["rule_code"] in wanted
            and row["kind"] == "award" and row["status"] in ("posted", "pending")))

    def pending_released_by(self, program_id: int, event_type: str, key: str) -> list[dict[str, Any]]:
        """Prefetched pairs are answered from the rows kept here; others also ask the database."""
        known = (program_id, event_type, key) in self.writes.pending_known
        stored = [] if known else super().pending_released_by(program_id, event_type, key)
        return self._merged(stored, key, lambda row: (
            row["program_id"] == program_id and row["status"] == "pending" and row["release_type"] == event_type
            and row["match_key"] == key))

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        self.writes.emit(program_id, topic, payload, organization_id)

    peek_counters = _flushing(SqlRules.peek_counters)
    read_counters = _flushing(SqlRules.read_counters)
    pending_due = _flushing(SqlRules.pending_due)
    awards_of_organization = _flushing(SqlRules.awards_of_organization)
    awards_of_event = _flushing(SqlRules.awards_of_event)
    contest_scores = _flushing(SqlRules.contest_scores)
    benefit = _flushing(SqlRules.benefit)
    benefits_of = _flushing(SqlRules.benefits_of)
    insert_assignment = _flushing(SqlRules.insert_assignment)
    assignments = _flushing(SqlRules.assignments)
    save_version = _flushing(SqlRules.save_version)
    activate = _flushing(SqlRules.activate)


class BufferedEvents(SqlEvents):
    """``SqlEvents`` whose outbox rows wait in ``ChunkWrites`` (so they keep their order)."""

    def __init__(self, conn: Connection, clock: Clock, writes: ChunkWrites) -> None:
        super().__init__(conn, clock)
        self.writes = writes

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        self.writes.emit(program_id, topic, payload, organization_id)

    transactions_of_event = _flushing(SqlEvents.transactions_of_event)
