"""The points-and-money ledger: double-entry, append-only, provable.

Guarantees (each proven by a test under ``tests/ledger`` or ``tests/storage``):

1. **Conservation** — every transaction's postings sum to zero per unit; so does the whole ledger.
2. **Append-only** — postings are never updated or deleted; a correction is a reversing transaction.
3. **Derived balances** — an account's balance is the sum of its postings. Holder accounts keep a
   cached ``balance`` with a ``version`` for locking; ``ledger verify`` proves cache = Σ postings.
4. **No overdraw** — holder accounts never go below zero, under any number of concurrent writers.
   Program accounts (issued, redeemed, expired...) may be negative and hold no cached balance, so
   they are never a hot row.
5. **Lots** — every credit to a holder account opens a lot (with its expiry); every debit consumes
   lots soonest-expiring first. Σ remaining of an account's lots = its balance.
6. **Holds** — reserving moves points to a per-holder escrow account, so they cannot be spent; a
   hold is resolved (posted, voided, expired) exactly once.
7. **Idempotency** — one effect per key; the key row is written in the same database transaction.
8. **Tamper evidence** — each transaction carries a SHA-256 chained to the previous one of its
   program; ``ledger verify`` recomputes the chain.
"""

from allegiance.ledger.model import (
    AccountKind,
    HolderKind,
    Posting,
    TransactionDraft,
    TransactionKind,
    Unit,
)

__all__ = ["AccountKind", "HolderKind", "Posting", "TransactionDraft", "TransactionKind", "Unit"]
