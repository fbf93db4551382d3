"""Applying cashback / store credit to an order or invoice.

The credit sits in the organization's pool in a store-credit unit (earned by a rules cashback
action); applying it is an ordinary ledger spend that records the order reference, refused when
the pool is short (``InsufficientFunds``), outside the unit's ``spend_channels``, or past the
unit's ``max_per_order`` summed over every application to that reference (``OrderCapExceeded``).
The pool account is locked before the per-order sum is read, so two applications to one order
cannot both pass the cap.
"""

from __future__ import annotations

from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import ValidationFailed
from allegiance.ledger.model import UnitKind
from allegiance.ledger.service import LedgerService
from allegiance.programs.service import ProgramsService
from allegiance.tiers.errors import OrderCapExceeded
from allegiance.tiers.ports import TiersPort


class StoreCreditService:
    def __init__(self, port: TiersPort, ledger: LedgerService, programs: ProgramsService, clock: Clock) -> None:
        self.port = port
        self.ledger = ledger
        self.programs = programs
        self.clock = clock

    def apply(self, program_id: int, organization_id: int, *, unit: str, amount: int, reference: str,
              channel: str | None, by: str, memo: str = "") -> dict[str, Any]:
        settings = self.programs.settings(program_id)
        config = settings.unit(unit)
        if config is None or config.kind is not UnitKind.STORE_CREDIT:
            credit_units = [u.code for u in settings.units if u.kind is UnitKind.STORE_CREDIT]
            raise ValidationFailed(f"unit {unit!r} is not a store-credit unit of this program (those are "
                                   f"{credit_units})", field="unit")
        settings.check_spend_channel(unit, channel)
        pool = self.ledger.holder_account(program_id, unit, organization_id)
        self.ledger.port.lock_accounts([pool.id])
        already = self.port.applied_to(program_id, organization_id, unit, reference)
        if config.max_per_order is not None and already + amount > config.max_per_order:
            raise OrderCapExceeded(f"at most {config.max_per_order} {unit} may be applied to one order; "
                                   f"{already} already is", field="amount", cap=config.max_per_order,
                                   applied=already)
        metadata = {"reference": reference, "applied_to": "order"}
        if channel:
            metadata["channel"] = channel
        posted = self.ledger.spend(program_id, pool.id, amount, memo=memo or f"store credit applied to {reference}",
                                   metadata=metadata)
        application_id = self.port.insert_application({
            "program_id": program_id, "organization_id": organization_id, "unit": unit, "reference": reference,
            "amount": amount, "channel": channel, "transaction_id": posted.transaction_id, "created_by": by})
        self.port.emit(program_id, "store_credit.applied", {
            "application_id": application_id, "organization_id": organization_id, "unit": unit, "amount": amount,
            "reference": reference, "transaction_id": posted.transaction_id}, organization_id)
        balance = self.ledger.port.get_account(program_id, pool.id)
        return {"id": application_id, "organization_id": organization_id, "unit": unit, "amount": amount,
                "reference": reference, "channel": channel, "applied_to_reference": already + amount,
                "max_per_order": config.max_per_order, "account_id": pool.id,
                "balance_after": balance.balance if balance else None, "transaction_id": posted.transaction_id}
