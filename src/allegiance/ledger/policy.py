"""Pure ledger policies: how an award splits, when a lot expires, which lots a debit consumes.

Kept free of I/O so the Hypothesis state machine can check them against a model oracle.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from allegiance.ledger.errors import Overdraw


class SplitMode(StrEnum):
    ORGANIZATION = "organization"  # the company pool gets everything
    PARTICIPANT = "participant"  # the person gets everything
    SHARED = "shared"  # percentage each


class AwardSplit(BaseModel):
    """How an award to a person is divided between the company pool and that person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: SplitMode = SplitMode.SHARED
    participant_percent: int = Field(default=30, ge=0, le=100)

    def split(self, amount: int) -> tuple[int, int]:
        """Return (organization, participant) shares; they always add up to ``amount``.

        The person's share is rounded down so a rounding remainder stays with the company,
        which is the party that signs the contract.
        """
        if self.mode is SplitMode.ORGANIZATION:
            return amount, 0
        if self.mode is SplitMode.PARTICIPANT:
            return 0, amount
        person = amount * self.participant_percent // 100
        return amount - person, person


class PoolSpenders(StrEnum):
    ORG_ADMINS = "org_admins"
    ANY_PARTICIPANT = "any_participant"
    OPERATOR_ONLY = "operator_only"


class LeaverPolicy(StrEnum):
    SWEEP_TO_POOL = "sweep_to_pool"
    KEEP = "keep"
    FORFEIT = "forfeit"


class ExpiryMode(StrEnum):
    NEVER = "never"
    DAYS = "days"
    END_OF_MONTH = "end_of_month"
    END_OF_QUARTER = "end_of_quarter"
    END_OF_YEAR = "end_of_year"


class ExpiryPolicy(BaseModel):
    """``periods_after``: 0 = end of the period of earning, 1 = end of the next one, ..."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ExpiryMode = ExpiryMode.NEVER
    days: int | None = Field(default=None, ge=1, le=36500)
    periods_after: int = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _days_only_with_days_mode(self) -> ExpiryPolicy:
        if (self.mode is ExpiryMode.DAYS) != (self.days is not None):
            raise ValueError("days is required with mode 'days' and not allowed otherwise")
        return self

    def expires_at(self, earned_at: datetime) -> datetime | None:
        if self.mode is ExpiryMode.NEVER:
            return None
        earned_at = earned_at.astimezone(UTC)
        if self.mode is ExpiryMode.DAYS:
            assert self.days is not None
            return earned_at + timedelta(days=self.days)
        months = {ExpiryMode.END_OF_MONTH: 1, ExpiryMode.END_OF_QUARTER: 3, ExpiryMode.END_OF_YEAR: 12}[self.mode]
        month_index = earned_at.year * 12 + earned_at.month - 1
        period_start = month_index - (month_index % months)
        last_month = period_start + months * (self.periods_after + 1) - 1
        year, month = divmod(last_month, 12)
        day = calendar.monthrange(year, month + 1)[1]
        return datetime(year, month + 1, day, 23, 59, 59, 999999, tzinfo=UTC)


@dataclass(frozen=True)
class OpenLot:
    lot_id: int
    remaining: int
    expires_at: datetime | None


def lot_order(lot: OpenLot) -> tuple[int, datetime, int]:
    """Soonest-expiring first; never-expiring last; ties by age (lot id)."""
    never = datetime.max.replace(tzinfo=UTC)
    return (1 if lot.expires_at is None else 0, lot.expires_at or never, lot.lot_id)


def allocate(
    lots: Iterable[OpenLot], amount: int, *, account: str = "", prefer: frozenset[int] = frozenset()
) -> list[tuple[OpenLot, int]]:
    """Choose which lots a debit of ``amount`` consumes; raises :class:`Overdraw` if they fall short.

    ``prefer`` names lots to consume before the FIFO order (a reversal takes back the very lot
    its award created, so the holder's other lots keep their expiry).
    """
    taken: list[tuple[OpenLot, int]] = []
    left = amount
    ordered = sorted(
        (lot for lot in lots if lot.remaining > 0), key=lambda lot: (lot.lot_id not in prefer, lot_order(lot))
    )
    for lot in ordered:
        if left == 0:
            break
        take = min(lot.remaining, left)
        taken.append((lot, take))
        left -= take
    if left:
        raise Overdraw(account, amount, amount - left)
    return taken


def expired_lots(lots: Sequence[OpenLot], now: datetime) -> list[OpenLot]:
    return [lot for lot in lots if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= now]
