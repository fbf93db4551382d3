"""Expiring-soon notices: lots expiring within N days, summed per (organization, unit, expiry day).

Each notice becomes one ``points.expiring_soon`` domain event for the engagement layer, announced
once: a later run that finds the same (organization, unit, day) — even with more points — stays
silent, so re-running the job never duplicates a reminder.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from allegiance.finance.model import ExpiringLot

TOPIC = "points.expiring_soon"


@dataclass
class ExpiringNotice:
    organization_id: int
    unit: str
    expires_on: date
    amount: int = 0
    accounts: list[dict[str, Any]] = field(default_factory=list)

    def payload(self, days: int) -> dict[str, Any]:
        return {"organization_id": self.organization_id, "unit": self.unit,
                "expires_on": self.expires_on.isoformat(), "amount": self.amount, "within_days": days,
                "accounts": self.accounts}


def notices(lots: Iterable[ExpiringLot]) -> list[ExpiringNotice]:
    grouped: dict[tuple[int, str, date], ExpiringNotice] = {}
    per_account: dict[tuple[int, str, date], dict[int, list[Any]]] = defaultdict(dict)
    for lot in lots:
        key = (lot.organization_id, lot.unit, lot.expires_on)
        notice = grouped.setdefault(key, ExpiringNotice(*key))
        notice.amount += lot.amount
        entry = per_account[key].setdefault(lot.account_id, [lot.participant_id, 0])
        entry[1] += lot.amount
    for key, notice in grouped.items():
        notice.accounts = [{"account_id": account_id, "participant_id": person, "amount": amount}
                           for account_id, (person, amount) in sorted(per_account[key].items())]
    return [grouped[key] for key in sorted(grouped)]
