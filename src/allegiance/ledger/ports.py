"""What the ledger needs from storage. Every method runs inside the caller's open transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from allegiance.ledger.model import AccountKind, TransactionDraft
from allegiance.ledger.policy import OpenLot


@dataclass(frozen=True)
class Account:
    id: int
    program_id: int
    address: str
    unit: str
    kind: AccountKind
    organization_id: int | None
    participant_id: int | None
    balance: int | None  # None on program accounts: derive with Σ postings


@dataclass(frozen=True)
class Hold:
    id: int
    program_id: int
    organization_id: int | None
    account_id: int
    escrow_account_id: int
    unit: str
    amount: int
    posted_amount: int | None
    status: str
    memo: str
    expires_at: datetime
    reserve_transaction_id: int
    resolve_transaction_id: int | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class Appended:
    transaction_id: int
    hash: str
    posting_ids: tuple[int, ...]


class LedgerPort(Protocol):
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
        """Get or create (race-safe) the account of that holder, kind and unit."""

    def get_account(self, program_id: int, account_id: int) -> Account | None: ...

    def lock_accounts(self, account_ids: Sequence[int]) -> dict[int, Account]:
        """Lock holder accounts in ascending id order (deadlock-free) and return fresh rows."""

    def open_lots(self, account_id: int) -> list[OpenLot]: ...

    def append(
        self,
        draft: TransactionDraft,
        allocations: dict[int, list[tuple[int, int]]],
        now: datetime,
    ) -> Appended:
        """Write the transaction, its postings, lots for holder credits, lot allocations for holder
        debits (keyed by posting index) and cached balances; :meth:`seal` chains it afterwards."""

    def seal(self, transaction_id: int) -> str:
        """Chain an appended transaction to its program's hash chain; returns its hash. Called
        last in a write, so the program-wide chain head is locked as briefly as possible."""

    def transaction_postings(
        self, transaction_id: int
    ) -> list[tuple[int, int, str, datetime | None, int | None]]:
        """The legs of a transaction as (account_id, amount, unit, expiry, lot_id).

        A credit that opened a lot gives that lot's id and expiry; a holder debit is expanded into
        one leg per lot it consumed, with that lot's expiry, so a reversal can restore it exactly.
        """

    def holder_accounts_of(self, program_id: int, participant_id: int) -> list[Account]: ...

    def transaction_header(self, program_id: int, transaction_id: int) -> dict[str, Any] | None: ...

    def is_reversed(self, transaction_id: int) -> bool: ...

    def insert_hold(self, values: dict[str, Any]) -> int: ...

    def get_hold(self, program_id: int, hold_id: int, *, lock: bool = False) -> Hold | None:
        """``lock``: take the hold's row lock first, before any account lock (fixed order)."""

    def resolve_hold(
        self, hold_id: int, status: str, transaction_id: int, posted_amount: int | None, now: datetime
    ) -> bool:
        """Move a pending hold to its final state; False if it was no longer pending (lost race)."""

    def due_holds(self, now: datetime, limit: int) -> list[Hold]: ...

    def expired_lot_accounts(self, now: datetime, limit: int) -> list[int]:
        """Holder accounts (not escrow) with at least one lot past expiry and something left."""

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        """Append a domain event to the outbox, in the same transaction."""
