"""Coalition partner use cases: register partners, earn and redeem with them, reverse, settle.

Raises: ``NotFound`` (partner/operation/organization/participant not in this program),
``ValidationFailed`` (bad input, naming the field), ``DuplicatePartnerCode``, ``PartnerInactive``,
``OperationNotAllowed``, ``ReferenceConflict``, ``AlreadyReversedOperation``, ``Overdraw``
(insufficient available balance, from the ledger).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.kernel.hashing import digest
from allegiance.ledger.errors import AlreadyReversed
from allegiance.ledger.model import TransactionKind
from allegiance.ledger.service import Credit, Debit, LedgerService
from allegiance.partners.errors import (
    AlreadyReversedOperation,
    DuplicatePartnerCode,
    OperationNotAllowed,
    PartnerInactive,
    ReferenceConflict,
)
from allegiance.partners.model import (
    Operation,
    Partner,
    PartnerCreate,
    PartnerOperation,
    PartnerUpdate,
    Rate,
)
from allegiance.partners.ports import PartnersPort
from allegiance.partners.settlement import SettlementReport, settle
from allegiance.programs.service import ProgramsService


def to_partner(row: dict[str, Any]) -> Partner:
    return Partner(
        id=row["id"], program_id=row["program_id"], code=row["code"], name=row["name"], unit=row["unit"],
        account_id=row["account_id"], issues_points=row["issues_points"], accepts_points=row["accepts_points"],
        currency=row["currency"], currency_scale=row["currency_scale"],
        issue_rate=Rate(minor=row["issue_rate_minor"], per_points=row["issue_rate_per_points"]),
        redeem_rate=Rate(minor=row["redeem_rate_minor"], per_points=row["redeem_rate_per_points"]),
        active=row["active"],
    )


def _rate_columns(prefix: str, rate: Rate) -> dict[str, int]:
    return {f"{prefix}_minor": rate.minor, f"{prefix}_per_points": rate.per_points}


class PartnersService:
    def __init__(self, port: PartnersPort, ledger: LedgerService, programs: ProgramsService, clock: Clock) -> None:
        self.port = port
        self.ledger = ledger
        self.programs = programs
        self.clock = clock

    # -- partners ------------------------------------------------------------------------------
    def row(self, program_id: int, partner_id: int) -> dict[str, Any]:
        row = self.port.partner(program_id, partner_id)
        if row is None:
            raise NotFound(f"partner {partner_id} not found", field="partner_id")
        return row

    def partner(self, program_id: int, partner_id: int) -> Partner:
        return to_partner(self.row(program_id, partner_id))

    def create(self, program_id: int, body: PartnerCreate) -> dict[str, Any]:
        settings = self.programs.settings(program_id)
        unit = body.unit or settings.default_unit
        if settings.unit(unit) is None:
            raise ValidationFailed(f"unit {unit!r} is not one of the program's units", field="unit")
        if self.port.partner_by_code(program_id, body.code) is not None:
            raise DuplicatePartnerCode(f"a partner with code {body.code!r} exists", field="code")
        now = self.clock.now()
        values = {
            "program_id": program_id, "code": body.code, "name": body.name, "unit": unit,
            "issues_points": body.issues_points, "accepts_points": body.accepts_points, "currency": body.currency,
            "currency_scale": body.currency_scale, "active": body.active, "attributes": body.attributes,
            **_rate_columns("issue_rate", body.issue_rate), **_rate_columns("redeem_rate", body.redeem_rate),
            "account_id": None, "created_at": now, "updated_at": now,
        }
        partner_id = self.port.insert_partner(values)
        account_id = self.port.settlement_account(program_id, partner_id, unit)
        self.port.update_partner(partner_id, {"account_id": account_id})
        self.port.emit(program_id, "partner.created", {"partner_id": partner_id, "code": body.code}, None)
        return self.row(program_id, partner_id)

    def update(self, program_id: int, partner_id: int, body: PartnerUpdate) -> dict[str, Any]:
        self.row(program_id, partner_id)
        changes: dict[str, Any] = {}
        for name, value in body.model_dump(exclude_unset=True).items():
            if value is None and name != "attributes":
                raise ValidationFailed("cannot be null", field=name)
            if name in ("issue_rate", "redeem_rate"):
                changes.update(_rate_columns(name, Rate.model_validate(value)))
            else:
                changes[name] = value if value is not None else {}
        if changes:
            self.port.update_partner(partner_id, {**changes, "updated_at": self.clock.now()})
            self.port.emit(program_id, "partner.updated", {"partner_id": partner_id, "changed": sorted(changes)},
                           None)
        return self.row(program_id, partner_id)

    def bind_key(self, program_id: int, partner_id: int, api_key_id: int) -> None:
        """An integration key bound to a partner may earn, redeem, reverse and settle for it only."""
        self.row(program_id, partner_id)
        self.port.bind_key(program_id, partner_id, api_key_id)

    def partner_of_key(self, program_id: int, api_key_id: int | None) -> int | None:
        return None if api_key_id is None else self.port.partner_of_key(program_id, api_key_id)

    # -- operations ----------------------------------------------------------------------------
    def _parties(self, program_id: int, body: PartnerOperation) -> None:
        self.programs.organization(program_id, body.organization_id)
        if body.participant_id is None:
            return
        person = self.programs.participant(program_id, body.participant_id)
        if person["organization_id"] != body.organization_id:
            raise ValidationFailed("the participant is not in that organization", field="participant_id")
        if person["status"] == "left":
            raise ValidationFailed("the participant has left the organization", field="participant_id")

    def _claim(self, partner: Partner, operation: Operation, body: PartnerOperation) -> dict[str, Any]:
        request_hash = digest(body.model_dump(mode="json"))
        row = self.port.claim_operation({
            "program_id": partner.program_id, "partner_id": partner.id, "operation": operation.value,
            "reference": body.reference, "request_hash": request_hash, "organization_id": body.organization_id,
            "participant_id": body.participant_id, "points": body.points,
            "purchase_amount_minor": body.purchase_amount_minor, "transaction_id": None,
            "reversal_transaction_id": None, "created_at": self.clock.now(), "reversed_at": None,
        })
        if row["transaction_id"] is not None and row["request_hash"] != request_hash:
            raise ReferenceConflict(f"reference {body.reference!r} was already used for another {operation.value}",
                                    field="reference")
        return row

    def _check(self, partner: Partner, operation: Operation) -> None:
        if not partner.active:
            raise PartnerInactive(f"partner {partner.code} is inactive", field="partner_id")
        allowed = partner.issues_points if operation is Operation.EARN else partner.accepts_points
        if not allowed:
            what = "issue" if operation is Operation.EARN else "accept"
            raise OperationNotAllowed(f"partner {partner.code} does not {what} points", field="partner_id")

    def earn(self, program_id: int, partner_id: int, body: PartnerOperation) -> dict[str, Any]:
        """A purchase at the partner: the partner's account pays, the organization/person receive per
        the program's award split, with the unit's expiry. Same reference again → the first result."""
        partner = self.partner(program_id, partner_id)
        self._check(partner, Operation.EARN)
        self._parties(program_id, body)
        claimed = self._claim(partner, Operation.EARN, body)
        if claimed["transaction_id"] is not None:
            return {**claimed, "duplicate": True}
        settings = self.programs.settings(program_id)
        split = settings.award_split
        org_share, person_share = split.split(body.points) if body.participant_id is not None else (body.points, 0)
        expires = settings.expiry_for(partner.unit).expires_at(self.clock.now())
        credits = []
        if org_share:
            credits.append(Credit(self.ledger.holder_account(program_id, partner.unit, body.organization_id),
                                  org_share, expires))
        if person_share:
            account = self.ledger.holder_account(program_id, partner.unit, body.organization_id, body.participant_id)
            credits.append(Credit(account, person_share, expires))
        source = self._settlement_account(partner)
        extra = {"purchase_amount_minor": body.purchase_amount_minor} if body.purchase_amount_minor is not None else {}
        posted = self.ledger.execute(
            program_id, TransactionKind.AWARD, [Debit(source, body.points)], credits,
            memo=body.memo or f"earned at {partner.name}", organization_id=body.organization_id,
            metadata=partner.metadata(Operation.EARN, body.reference, extra),
        )
        return self._complete(partner, claimed, posted.transaction_id)

    def redeem(self, program_id: int, partner_id: int, body: PartnerOperation, *, channel_check: bool = True
               ) -> dict[str, Any]:
        """Points spent with the partner: the person's account (or the pool) pays, the partner's
        account receives. Refused with ``Overdraw`` when the available balance (holds excluded) is short."""
        partner = self.partner(program_id, partner_id)
        self._check(partner, Operation.REDEEM)
        self._parties(program_id, body)
        if channel_check:
            self.programs.settings(program_id).check_spend_channel(partner.unit, f"partner:{partner.code}",
                                                                   field="partner_id")
        claimed = self._claim(partner, Operation.REDEEM, body)
        if claimed["transaction_id"] is not None:
            return {**claimed, "duplicate": True}
        payer = self.ledger.holder_account(program_id, partner.unit, body.organization_id, body.participant_id)
        posted = self.ledger.execute(
            program_id, TransactionKind.SPEND, [Debit(payer, body.points)],
            [Credit(self._settlement_account(partner), body.points)],
            memo=body.memo or f"redeemed at {partner.name}", organization_id=body.organization_id,
            metadata=partner.metadata(Operation.REDEEM, body.reference, {}),
        )
        return self._complete(partner, claimed, posted.transaction_id)

    def _settlement_account(self, partner: Partner) -> Any:
        account = self.ledger.port.get_account(partner.program_id, partner.account_id)
        assert account is not None, "a partner's settlement account is created with it"
        return account

    def _complete(self, partner: Partner, claimed: dict[str, Any], transaction_id: int) -> dict[str, Any]:
        self.port.complete_operation(claimed["id"], transaction_id)
        self.port.emit(partner.program_id, f"partner.{claimed['operation']}", {
            "partner_id": partner.id, "operation_id": claimed["id"], "transaction_id": transaction_id,
            "points": claimed["points"], "participant_id": claimed["participant_id"],
        }, claimed["organization_id"])
        return {**claimed, "transaction_id": transaction_id, "duplicate": False}

    def operation(self, program_id: int, partner_id: int, operation_id: int) -> dict[str, Any]:
        row = self.port.operation(program_id, partner_id, operation_id)
        if row is None:
            raise NotFound(f"operation {operation_id} not found", field="operation_id")
        return row

    def reverse(self, program_id: int, partner_id: int, operation_id: int, memo: str) -> dict[str, Any]:
        """Undo an earning (the points are taken back; refused if already spent) or a redemption (the
        points go back to the payer, with their expiry), as one reversing transaction, at most once."""
        self.row(program_id, partner_id)
        row = self.operation(program_id, partner_id, operation_id)
        if row["reversal_transaction_id"] is not None:
            raise AlreadyReversedOperation(f"operation {operation_id} is already reversed", field="operation_id")
        try:
            posted = self.ledger.reverse(program_id, row["transaction_id"], memo=memo)
        except AlreadyReversed as exc:
            raise AlreadyReversedOperation(f"operation {operation_id} is already reversed",
                                           field="operation_id") from exc
        now = self.clock.now()
        if not self.port.mark_reversed(operation_id, posted.transaction_id, now):
            raise AlreadyReversedOperation(f"operation {operation_id} is already reversed", field="operation_id")
        self.port.emit(program_id, "partner.reversed", {
            "partner_id": partner_id, "operation_id": operation_id, "transaction_id": posted.transaction_id,
        }, row["organization_id"])
        return {**row, "reversal_transaction_id": posted.transaction_id, "reversed_at": now}

    # -- settlement ------------------------------------------------------------------------------
    def settlement(self, program_id: int, partner_id: int, start: datetime, end: datetime) -> SettlementReport:
        if end <= start:
            raise ValidationFailed("the period must end after it starts", field="to")
        partner = self.partner(program_id, partner_id)
        return settle(self.port.settlement_postings(partner.account_id, start, end), partner_id=partner.id,
                      partner_code=partner.code, start=start, end=end, unit=partner.unit,
                      currency=partner.currency, currency_scale=partner.currency_scale)
