"""Co-op use cases: settings, the fund (allocate, read), plans, claims and their moves.

An approval takes, in one transaction and in this order (the lock order every co-op writer
follows): the claim (compare-and-set on its version), the organization's yearly budget counter
(conditional UPDATE), then a ledger hold on its co-op pool (holder accounts by id, the chain head
last). So two approvals at once can neither pass the budget nor overdraw the fund, and settlement
posts that hold — once, because only the one winner of the claim's compare-and-set touches it.

Raises: ``NotFound``, ``ValidationFailed`` (naming the field), ``Forbidden``, ``CoopNotConfigured``,
``DuplicateInvoice``, ``CoopLimitExceeded``, ``InvalidClaimTransition``, ``ProofRefused``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allegiance.coop import claims as machine
from allegiance.coop.errors import CoopLimitExceeded, CoopNotConfigured, DuplicateInvoice, InvalidClaimTransition
from allegiance.coop.formula import Limited, limit, reimbursement
from allegiance.coop.model import (
    ClaimCreate,
    ClaimStatus,
    CoopSettings,
    PlanCreate,
    PlanStatus,
    ProofUpload,
    invoice_key,
    normalized_brands,
)
from allegiance.coop.ports import CoopPort
from allegiance.coop.proofs import check
from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import Forbidden, NotFound, ValidationFailed
from allegiance.ledger.errors import Overdraw
from allegiance.ledger.model import UnitKind
from allegiance.ledger.service import LedgerService
from allegiance.programs.service import ProgramsService

S = ClaimStatus
Move = machine.Move


@dataclass(frozen=True)
class Actor:
    """Who acts: ``ref`` for the history, ``operator`` for review rights, and, for partner keys,
    the organization they act for."""

    ref: str
    operator: bool
    organization_id: int | None = None
    participant_id: int | None = None


class CoopService:
    def __init__(self, port: CoopPort, ledger: LedgerService, programs: ProgramsService, clock: Clock) -> None:
        self.port = port
        self.ledger = ledger
        self.programs = programs
        self.clock = clock

    # -- settings ------------------------------------------------------------------------------
    def settings(self, program_id: int) -> CoopSettings:
        row = self.port.settings(program_id)
        if row is None:
            raise CoopNotConfigured("co-op is not set up in this program: PUT /api/v1/coop/settings first")
        return CoopSettings.model_validate(row["document"])

    def set_settings(self, program_id: int, settings: CoopSettings, by: str) -> CoopSettings:
        unit = self.programs.settings(program_id).unit(settings.unit)
        if unit is None:
            raise ValidationFailed(f"unit {settings.unit!r} is not one of the program's units", field="unit")
        if unit.kind is not UnitKind.COOP_FUND:
            raise ValidationFailed(f"unit {settings.unit!r} is a {unit.kind.value} unit; declare a coop_fund unit",
                                   field="unit")
        self.port.save_settings(program_id, settings.model_dump(mode="json"), by)
        self.port.emit(program_id, "coop.settings_changed", {"by": by}, None)
        return settings

    # -- the fund ------------------------------------------------------------------------------
    def fund(self, program_id: int, organization_id: int, year: int) -> dict[str, Any]:
        settings = self.settings(program_id)
        self.programs.organization(program_id, organization_id)
        pool = self.ledger.holder_account(program_id, settings.unit, organization_id)
        used = self.port.budget_used(program_id, organization_id, year)
        budget = settings.yearly_budget
        return {"organization_id": organization_id, "unit": settings.unit, "account_id": pool.id,
                "balance": pool.balance or 0, "year": year, "yearly_budget": budget, "budget_used": used,
                "budget_left": None if budget is None else max(budget - used, 0)}

    def allocate(self, program_id: int, organization_id: int, amount: int, memo: str, by: str) -> dict[str, Any]:
        """MDF granted by an operator: new value from the program's issue account into the fund."""
        settings = self.settings(program_id)
        self.programs.organization(program_id, organization_id)
        program = self.programs.settings(program_id)
        posted = self.ledger.award(program_id, settings.unit, amount, organization_id=organization_id,
                                   participant_id=None, split=program.award_split,
                                   expiry=program.expiry_for(settings.unit), memo=memo or "co-op allocation",
                                   metadata={"coop": "allocation", "by": by})
        self.port.emit(program_id, "coop.fund_allocated", {
            "organization_id": organization_id, "unit": settings.unit, "amount": amount,
            "transaction_id": posted.transaction_id, "by": by}, organization_id)
        return {**self.fund(program_id, organization_id, self.clock.now().year),
                "transaction_id": posted.transaction_id}

    def _fund_available(self, program_id: int, settings: CoopSettings, organization_id: int) -> int:
        pool = self.ledger.holder_account(program_id, settings.unit, organization_id)
        locked = self.ledger.port.lock_accounts([pool.id]).get(pool.id, pool)
        return locked.balance or 0

    def _budget_left(self, program_id: int, settings: CoopSettings, organization_id: int, year: int) -> int | None:
        if settings.yearly_budget is None:
            return None
        return settings.yearly_budget - self.port.budget_used(program_id, organization_id, year)

    def _limited(self, program_id: int, settings: CoopSettings, organization_id: int, year: int,
                 requested: int) -> Limited:
        return limit(requested, over_limit=settings.over_limit,
                     budget_left=self._budget_left(program_id, settings, organization_id, year),
                     fund_available=self._fund_available(program_id, settings, organization_id),
                     unit=settings.unit, year=year)

    @staticmethod
    def _refuse(limited: Limited, requested: int, year: int) -> None:
        if limited.amount == 0 and limited.limit is not None:
            raise CoopLimitExceeded(limited.reason or "refused", field="cost", limit=limited.limit,
                                    requested=requested, year=year)

    # -- organizations a partner key may act for -------------------------------------------------
    def _organization_for(self, program_id: int, actor: Actor, organization_id: int | None) -> int:
        target = organization_id or actor.organization_id
        if target is None:
            raise ValidationFailed("name the organization", field="organization_id")
        self.programs.organization(program_id, target)
        return target

    # -- plans ---------------------------------------------------------------------------------
    def create_plan(self, program_id: int, actor: Actor, body: PlanCreate) -> dict[str, Any]:
        settings = self.settings(program_id)
        organization_id = self._organization_for(program_id, actor, body.organization_id)
        self._check_activity(settings, body.activity_type)
        self._check_currency(settings, body.currency)
        now = self.clock.now()
        plan_id = self.port.insert_plan({
            **body.model_dump(exclude={"organization_id"}), "program_id": program_id,
            "organization_id": organization_id, "status": PlanStatus.SUBMITTED.value, "reason": "",
            "submitted_by": actor.ref, "reviewed_by": None, "version": 1, "created_at": now, "updated_at": now})
        self.port.emit(program_id, "coop.plan_submitted", {"plan_id": plan_id}, organization_id)
        return self.plan(program_id, plan_id)

    def plan(self, program_id: int, plan_id: int) -> dict[str, Any]:
        row = self.port.plan(program_id, plan_id)
        if row is None:
            raise NotFound(f"plan {plan_id} not found", field="plan_id")
        return row

    def review_plan(self, program_id: int, plan_id: int, actor: Actor, approve: bool, reason: str = "") -> dict[
            str, Any]:
        if not approve and not reason.strip():
            raise ValidationFailed("a rejection needs a reason", field="reason")
        row = self.plan(program_id, plan_id)
        if row["status"] != PlanStatus.SUBMITTED.value:
            raise InvalidClaimTransition(f"a {row['status']} plan cannot be reviewed", state=row["status"])
        status = PlanStatus.APPROVED if approve else PlanStatus.REJECTED
        if not self.port.move_plan(plan_id, row["version"], {"status": status.value, "reason": reason,
                                                             "reviewed_by": actor.ref,
                                                             "updated_at": self.clock.now()}):
            raise InvalidClaimTransition("someone else reviewed this plan at the same moment", state=row["status"])
        self.port.emit(program_id, f"coop.plan_{status.value}", {"plan_id": plan_id, "reason": reason},
                       row["organization_id"])
        return self.plan(program_id, plan_id)

    # -- claims --------------------------------------------------------------------------------
    @staticmethod
    def _check_activity(settings: CoopSettings, activity: str) -> None:
        if activity not in settings.activity_types:
            raise ValidationFailed(f"{activity!r} is not one of the program's activity types "
                                   f"{settings.activity_types}", field="activity_type")

    @staticmethod
    def _check_currency(settings: CoopSettings, currency: str) -> None:
        if currency != settings.currency:
            raise ValidationFailed(f"co-op costs are claimed in {settings.currency}", field="currency")

    def _check_plan(self, program_id: int, settings: CoopSettings, organization_id: int, plan_id: int | None) -> None:
        if plan_id is None:
            if settings.require_plan:
                raise ValidationFailed("this program pays only pre-approved activities: name the approved plan",
                                       field="plan_id")
            return
        plan = self.port.plan(program_id, plan_id)
        if plan is None or plan["organization_id"] != organization_id:
            raise ValidationFailed(f"plan {plan_id} is not a plan of this organization", field="plan_id")
        if plan["status"] != PlanStatus.APPROVED.value:
            raise ValidationFailed(f"plan {plan_id} is {plan['status']}, not approved", field="plan_id")

    def _brands(self, settings: CoopSettings, shown: list[str], field: str = "brands") -> list[str]:
        brands = normalized_brands(shown)
        if not brands:
            raise ValidationFailed("name every brand shown in the material", field=field)
        own = {b.casefold() for b in settings.own_brands}
        if own and not own & {b.casefold() for b in brands}:
            raise ValidationFailed(f"the material must show one of our brands {settings.own_brands}", field=field)
        return brands

    def create_claim(self, program_id: int, actor: Actor, body: ClaimCreate) -> dict[str, Any]:
        settings = self.settings(program_id)
        organization_id = self._organization_for(program_id, actor, body.organization_id)
        self._check_activity(settings, body.activity_type)
        self._check_currency(settings, body.currency)
        self._check_plan(program_id, settings, organization_id, body.plan_id)
        brands = self._brands(settings, body.brands)
        requested = reimbursement(settings, body.cost, len(brands))
        if requested <= 0:
            raise ValidationFailed(f"with {len(brands)} brands shown the terms pay nothing", field="brands")
        key = invoice_key(body.invoice_number)
        year = body.activity_date.year
        status = S.DRAFT if body.draft else S.SUBMITTED
        note = ""
        if status is S.SUBMITTED:
            limited = self._limited(program_id, settings, organization_id, year, requested)
            self._refuse(limited, requested, year)
            note = limited.reason or ""
        now = self.clock.now()
        claim_id = self.port.insert_claim({
            "program_id": program_id, "organization_id": organization_id, "plan_id": body.plan_id,
            "participant_id": actor.participant_id, "activity_type": body.activity_type,
            "description": body.description, "cost": body.cost, "currency": body.currency,
            "activity_date": body.activity_date, "year": year, "invoice_number": body.invoice_number,
            "invoice_key": key, "brands": brands, "brand_count": len(brands), "unit": settings.unit,
            "requested_amount": requested, "approved_amount": None, "limit_note": note, "status": status.value,
            "reason": "", "hold_id": None, "settlement_transaction_id": None, "payment_reference": None,
            "submitted_by": actor.ref, "reviewed_by": None, "version": 1, "created_at": now, "updated_at": now})
        if claim_id is None:
            existing = self.port.claim_by_invoice(program_id, organization_id, key)
            raise DuplicateInvoice(f"invoice {body.invoice_number!r} was already claimed by this organization",
                                   field="invoice_number", claim_id=existing["id"] if existing else None)
        self._history(program_id, claim_id, None, status, actor, "")
        self._announce(program_id, claim_id, f"coop.claim_{status.value}")
        return self.claim(program_id, claim_id)

    def submit(self, program_id: int, claim_id: int, actor: Actor) -> dict[str, Any]:
        settings = self.settings(program_id)
        row = self._row(program_id, claim_id)
        machine.apply(S(row["status"]), Move.SUBMIT)
        limited = self._limited(program_id, settings, row["organization_id"], row["year"], row["requested_amount"])
        self._refuse(limited, row["requested_amount"], row["year"])
        return self._move(program_id, row, Move.SUBMIT, actor, "", {"limit_note": limited.reason or ""})

    def add_proof(self, program_id: int, claim_id: int, actor: Actor, upload: ProofUpload) -> dict[str, Any]:
        settings = self.settings(program_id)
        row = self._row(program_id, claim_id)
        if row["status"] not in (S.DRAFT.value, S.SUBMITTED.value):
            raise InvalidClaimTransition(f"proofs cannot be added to a {row['status']} claim", state=row["status"])
        checked = check(upload, settings)
        existing = self.port.proof_by_hash(claim_id, checked.sha256)
        if existing is not None:
            return existing
        if self.port.proof_count(claim_id) >= settings.max_proofs:
            raise ValidationFailed(f"a claim carries at most {settings.max_proofs} proofs", field="content_base64")
        proof_id = self.port.insert_proof({
            "program_id": program_id, "claim_id": claim_id, "filename": checked.filename,
            "content_type": checked.content_type, "size": len(checked.content), "sha256": checked.sha256,
            "content": checked.content, "uploaded_by": actor.ref, "created_at": self.clock.now()})
        stored = self.port.proof_by_hash(claim_id, checked.sha256)
        assert stored is not None
        if proof_id is not None:
            self.port.emit(program_id, "coop.proof_added", {"claim_id": claim_id, "proof_id": proof_id,
                                                            "sha256": checked.sha256}, row["organization_id"])
        return stored

    def proof(self, program_id: int, claim_id: int, proof_id: int) -> dict[str, Any]:
        self._row(program_id, claim_id)
        found = self.port.proof(claim_id, proof_id)
        if found is None:
            raise NotFound(f"proof {proof_id} not found", field="proof_id")
        return found

    def approve(self, program_id: int, claim_id: int, actor: Actor, brands: list[str] | None = None,
                note: str = "") -> dict[str, Any]:
        """The operator confirms the brand count (recomputing the reimbursement when it differs),
        then the yearly budget and the fund are reserved — refused or capped as the terms say."""
        self._operator(actor)
        settings = self.settings(program_id)
        row = self._row(program_id, claim_id)
        machine.apply(S(row["status"]), Move.APPROVE)
        requested = row["requested_amount"]
        changes: dict[str, Any] = {}
        if brands is not None:
            confirmed = self._brands(settings, brands)
            requested = reimbursement(settings, row["cost"], len(confirmed))
            changes = {"brands": confirmed, "brand_count": len(confirmed), "requested_amount": requested}
        if not self.port.move_claim(claim_id, row["version"], {"updated_at": self.clock.now()}):
            raise InvalidClaimTransition("someone else changed this claim at the same moment; read it again",
                                         state=row["status"])
        row = {**row, "version": row["version"] + 1}
        organization_id, year = row["organization_id"], row["year"]
        limited = self._limited(program_id, settings, organization_id, year, requested)
        self._refuse(limited, requested, year)
        amount = limited.amount
        if not self.port.add_budget(program_id, organization_id, year, amount, settings.yearly_budget):
            raise CoopLimitExceeded(f"{amount} {settings.unit} would pass the {year} co-op budget",
                                    field="cost", limit="yearly_budget", requested=amount, year=year)
        pool = self.ledger.holder_account(program_id, settings.unit, organization_id)
        try:
            hold = self.ledger.reserve(program_id, pool.id, amount, ttl=timedelta(days=settings.hold_days),
                                       memo=f"co-op claim {claim_id}")
        except Overdraw as exc:
            raise CoopLimitExceeded(f"{amount} {settings.unit} would pass the co-op fund balance: "
                                    f"{exc.data.get('available')} {settings.unit} left", field="cost",
                                    limit="fund_balance", requested=amount, year=year) from exc
        return self._move(program_id, row, Move.APPROVE, actor, note, {
            **changes, "approved_amount": amount, "hold_id": hold.id, "limit_note": limited.reason or "",
            "reviewed_by": actor.ref})

    def reject(self, program_id: int, claim_id: int, actor: Actor, reason: str) -> dict[str, Any]:
        self._operator(actor)
        if not reason.strip():
            raise ValidationFailed("a rejection needs a reason", field="reason")
        row = self._row(program_id, claim_id)
        return self._move(program_id, row, Move.REJECT, actor, reason, {"reason": reason, "reviewed_by": actor.ref})

    def settle(self, program_id: int, claim_id: int, actor: Actor, reference: str | None = None) -> dict[str, Any]:
        """Pay out: the hold taken at approval is posted, once, from the fund to the program's
        redeemed account; ``reference`` is the credit note or payment that carried the money."""
        self._operator(actor)
        row = self._row(program_id, claim_id)
        return self._move(program_id, row, Move.SETTLE, actor, reference or "", {"payment_reference": reference})

    # -- moves ------------------------------------------------------------------------------------
    def _operator(self, actor: Actor) -> None:
        if not actor.operator:
            raise Forbidden("only the program's operators review co-op claims")

    def _row(self, program_id: int, claim_id: int) -> dict[str, Any]:
        row = self.port.claim(program_id, claim_id)
        if row is None:
            raise NotFound(f"claim {claim_id} not found", field="claim_id")
        return row

    def _move(self, program_id: int, row: dict[str, Any], move: Move, actor: Actor, note: str,
              values: dict[str, Any]) -> dict[str, Any]:
        status = S(row["status"])
        target, effect = machine.apply(status, move)
        if not self.port.move_claim(row["id"], row["version"], {**values, "status": target.value,
                                                                "updated_at": self.clock.now()}):
            raise InvalidClaimTransition("someone else changed this claim at the same moment; read it again",
                                         state=status.value)
        if effect is machine.HoldEffect.VOID:
            self.port.remove_budget(program_id, row["organization_id"], row["year"], row["approved_amount"])
            hold = self.ledger.port.get_hold(program_id, row["hold_id"])
            if hold is not None and hold.status == "pending":
                self.ledger.void_hold(program_id, row["hold_id"])
        elif effect is machine.HoldEffect.POST:
            posted = self.ledger.post_hold(program_id, row["hold_id"])
            self.port.move_claim(row["id"], row["version"] + 1,
                                 {"settlement_transaction_id": posted.resolve_transaction_id})
        self._history(program_id, row["id"], status, target, actor, note)
        self._announce(program_id, row["id"], f"coop.claim_{target.value}")
        return self.claim(program_id, row["id"])

    def _history(self, program_id: int, claim_id: int, before: S | None, after: S, actor: Actor, note: str) -> None:
        self.port.add_history({"program_id": program_id, "claim_id": claim_id,
                               "from_status": before.value if before else None, "to_status": after.value,
                               "actor": actor.ref, "note": note, "at": self.clock.now()})

    def _announce(self, program_id: int, claim_id: int, topic: str) -> None:
        row = self._row(program_id, claim_id)
        self.port.emit(program_id, topic, {
            "claim_id": claim_id, "status": row["status"], "activity_type": row["activity_type"],
            "cost": row["cost"], "currency": row["currency"], "brand_count": row["brand_count"],
            "unit": row["unit"], "requested_amount": row["requested_amount"],
            "approved_amount": row["approved_amount"], "reason": row["reason"],
            "settlement_transaction_id": row["settlement_transaction_id"]}, row["organization_id"])

    # -- reading ------------------------------------------------------------------------------------
    def claim(self, program_id: int, claim_id: int) -> dict[str, Any]:
        row = self._row(program_id, claim_id)
        return self.view(row, history=self.port.history(claim_id), proofs=self.port.proofs(claim_id))

    @staticmethod
    def view(row: dict[str, Any], *, history: list[dict[str, Any]] | None = None,
             proofs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k not in ("invoice_key", "submitted_by", "reviewed_by")}
        if history is not None:
            out["history"] = history
        if proofs is not None:
            out["proofs"] = proofs
        return out
