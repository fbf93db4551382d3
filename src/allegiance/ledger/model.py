"""Ledger values. Amounts are integers in the unit's minor scale (``EUR/2``: cents); never floats."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from allegiance.kernel.errors import ValidationFailed
from allegiance.ledger.errors import UnbalancedTransaction


class UnitKind(StrEnum):
    POINTS = "points"
    MILES = "miles"
    STORE_CREDIT = "store_credit"
    COOP_FUND = "coop_fund"


@dataclass(frozen=True)
class Unit:
    """A program's unit of value. ``scale`` = digits after the decimal point (points: 0, EUR: 2)."""

    code: str
    name: str
    scale: int = 0
    kind: UnitKind = UnitKind.POINTS

    def format(self, amount: int) -> str:
        if self.scale == 0:
            return f"{amount:,} {self.code}"
        sign = "-" if amount < 0 else ""
        whole, frac = divmod(abs(amount), 10**self.scale)
        return f"{sign}{whole:,}.{frac:0{self.scale}d} {self.code}"


class HolderKind(StrEnum):
    PROGRAM = "program"
    ORGANIZATION = "organization"
    PARTICIPANT = "participant"


class AccountKind(StrEnum):
    # Holder accounts: overdraft-checked, cached balance, lots.
    POOL = "pool"  # an organization's shared balance
    PERSONAL = "personal"  # a participant's own balance
    HELD = "held"  # escrow of a holder's pending holds
    # Program (system) accounts: may go negative, no cached balance, never locked.
    ISSUED = "issued"
    REDEEMED = "redeemed"
    EXPIRED = "expired"
    ADJUSTMENTS = "adjustments"
    FORFEITED = "forfeited"
    # A coalition partner's settlement account (``partner:<id>:<unit>``, see ``partners``): signed,
    # debited when the partner issues points, credited when points are redeemed with it.
    PARTNER = "partner"

    @property
    def is_holder(self) -> bool:
        return self in (AccountKind.POOL, AccountKind.PERSONAL, AccountKind.HELD)


class TransactionKind(StrEnum):
    AWARD = "award"
    SPEND = "spend"
    ADJUST = "adjust"
    TRANSFER = "transfer"
    HOLD = "hold"
    HOLD_POST = "hold_post"
    HOLD_VOID = "hold_void"
    HOLD_EXPIRE = "hold_expire"
    EXPIRE = "expire"
    REVERSAL = "reversal"
    LEAVER = "leaver"


def account_address(
    kind: AccountKind,
    unit: str,
    *,
    program_id: int,
    organization_id: int | None = None,
    participant_id: int | None = None,
    escrow_of: AccountKind | None = None,
) -> str:
    """Colon addresses (Formance style): readable in statements, unique per program."""
    if kind is AccountKind.POOL:
        return f"org:{organization_id}:pool:{unit}"
    if kind is AccountKind.PERSONAL:
        return f"org:{organization_id}:member:{participant_id}:{unit}"
    if kind is AccountKind.HELD:
        owner = f"member:{participant_id}" if escrow_of is AccountKind.PERSONAL else "pool"
        return f"org:{organization_id}:{owner}:held:{unit}"
    return f"program:{program_id}:{kind.value}:{unit}"


@dataclass(frozen=True)
class Posting:
    """One leg: ``amount`` > 0 credits ``account_id``, < 0 debits it."""

    account_id: int
    amount: int
    unit: str
    expires_at: datetime | None = None  # lot expiry, for credits to holder accounts


@dataclass(frozen=True)
class TransactionDraft:
    """A transaction before it is written: validated here, appended by the store under locks."""

    program_id: int
    kind: TransactionKind
    postings: tuple[Posting, ...]
    memo: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    reverses_id: int | None = None
    organization_id: int | None = None
    event_id: int | None = None

    def __post_init__(self) -> None:
        if not self.postings:
            raise ValidationFailed("a transaction needs at least one posting", field="postings")
        totals: dict[str, int] = defaultdict(int)
        for posting in self.postings:
            if posting.amount == 0:
                raise ValidationFailed("a posting amount cannot be zero", field="amount")
            if not isinstance(posting.amount, int) or isinstance(posting.amount, bool):
                raise ValidationFailed("amounts are integers in the unit's minor scale", field="amount")
            totals[posting.unit] += posting.amount
        unbalanced = {unit: total for unit, total in totals.items() if total != 0}
        if unbalanced:
            raise UnbalancedTransaction(f"postings do not sum to zero per unit: {unbalanced}", field="postings")
