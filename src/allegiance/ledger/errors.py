"""Ledger errors with stable codes; they carry the numbers a client needs to react."""

from __future__ import annotations

from allegiance.kernel.errors import Conflict, InsufficientFunds, ValidationFailed


class UnbalancedTransaction(ValidationFailed):
    code = "unbalanced_transaction"


class Overdraw(InsufficientFunds):
    """Raised under the account lock, so ``available`` is the true figure at that instant."""

    code = "insufficient_funds"

    def __init__(self, account: str, requested: int, available: int) -> None:
        super().__init__(
            f"account {account} has {available} available, {requested} requested",
            field="amount",
            account=account,
            requested=requested,
            available=available,
        )


class HoldAlreadyResolved(Conflict):
    code = "hold_already_resolved"


class AlreadyReversed(Conflict):
    code = "already_reversed"
