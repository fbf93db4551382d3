"""Finance read models (frozen dataclasses) and their money valuation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from allegiance.kernel.rates import round_half_up, value
from allegiance.programs.model import PointCost


def money(points: int, cost: PointCost | None) -> dict[str, Any] | None:
    """``points`` valued at the unit's cost per point, or None when the program sets no cost."""
    if cost is None:
        return None
    return {"currency": cost.currency, "scale": cost.scale,
            "amount_minor": round_half_up(value(points, cost.minor, cost.per_points))}


@dataclass(frozen=True)
class Balances:
    """Holder balances of one unit (for the program, or one organization)."""

    unit: str
    available: int  # Σ pool + personal balances (holds already moved out to escrow)
    held: int  # Σ escrow balances: pending holds, reserved but not yet spent or released
    accounts: int

    @property
    def outstanding(self) -> int:
        return self.available + self.held


@dataclass(frozen=True)
class ExpiringLot:
    """Remaining points of lots expiring at one instant, on one holder account."""

    organization_id: int
    participant_id: int | None
    account_id: int
    unit: str
    expires_on: date
    amount: int
