"""The settlement of one partner over one period, computed purely from its account's postings.

Each posting on the settlement account comes with the metadata of the operation it belongs to (for
a reversal, the metadata of the transaction it reverses), which names the operation and the rate
it was posted at. So a rate change never re-prices the past, and a reversal is settled at the very
rate of what it undoes.

Signs: an earning debits the partner (−points), a redemption credits it (+points); their
reversals do the opposite. Hence ``issued = −Σ earn postings`` and ``redeemed = Σ redeem
postings``, and ``net_points = redeemed − issued`` is the change of the account's balance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from allegiance.kernel.rates import round_half_up, value
from allegiance.partners.model import Operation


@dataclass(frozen=True)
class SettlementPosting:
    transaction_id: int
    amount: int  # signed, on the partner's settlement account
    reversal: bool
    operation: dict[str, Any]  # metadata of the operation (of the reversed one, for a reversal)


@dataclass(frozen=True)
class SettlementReport:
    partner_id: int
    partner_code: str
    start: datetime
    end: datetime
    unit: str
    currency: str
    currency_scale: int
    points_issued: int
    points_redeemed: int
    net_points: int
    partner_owes_minor: int  # for points it issued
    operator_owes_minor: int  # for points redeemed with it
    net_minor: int  # > 0: the operator pays the partner; < 0: the partner pays the operator
    transactions: int
    reversals: int

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def settle(postings: Iterable[SettlementPosting], *, partner_id: int, partner_code: str, start: datetime,
           end: datetime, unit: str, currency: str, currency_scale: int) -> SettlementReport:
    issued = redeemed = count = reversals = 0
    owed_by_partner = owed_by_operator = Fraction(0)
    for posting in postings:
        count += 1
        reversals += posting.reversal
        kind = posting.operation.get("partner_operation")
        rate = posting.operation.get("rate") or {"minor": 0, "per_points": 1}
        if kind == Operation.EARN.value:
            issued -= posting.amount
            owed_by_partner += value(-posting.amount, int(rate["minor"]), int(rate["per_points"]))
        elif kind == Operation.REDEEM.value:
            redeemed += posting.amount
            owed_by_operator += value(posting.amount, int(rate["minor"]), int(rate["per_points"]))
        else:  # not written by the partners service: settlement cannot price it, refuse to guess
            raise ValueError(f"transaction {posting.transaction_id} on a partner account is no partner operation")
    partner_owes = round_half_up(owed_by_partner)
    operator_owes = round_half_up(owed_by_operator)
    return SettlementReport(
        partner_id=partner_id, partner_code=partner_code, start=start, end=end, unit=unit, currency=currency,
        currency_scale=currency_scale, points_issued=issued, points_redeemed=redeemed, net_points=redeemed - issued,
        partner_owes_minor=partner_owes, operator_owes_minor=operator_owes, net_minor=operator_owes - partner_owes,
        transactions=count, reversals=reversals,
    )
