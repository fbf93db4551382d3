"""Rewards use cases: the catalog, approval policies, and redemptions as two-phase ledger holds.

A redemption takes, in one transaction and in this order (the lock order every writer follows):
the item's stock (conditional UPDATE), the recipient's annual gift total (conditional UPDATE),
then a ledger hold on the paying account (holder accounts by id, the chain head last). Every later
move first wins a compare-and-set on the redemption's version, then releases stock and gift total,
then resolves the hold — so a hold is posted or voided at most once, and only by the one winner.

Raises: ``NotFound`` (not in this program), ``ValidationFailed`` (bad input, naming the field),
``ItemNotAvailable``, ``PoolNotAllowed``, ``OutOfStock``, ``AnnualCapExceeded``, ``Overdraw``
(insufficient balance, from the ledger), ``InvalidTransition`` (state does not allow it, or a
concurrent move won), ``DuplicateItemCode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import Forbidden, NotFound, ValidationFailed
from allegiance.ledger.service import LedgerService
from allegiance.programs.service import ProgramsService
from allegiance.rewards.errors import (
    AnnualCapExceeded,
    DuplicateItemCode,
    InvalidTransition,
    ItemNotAvailable,
    OutOfStock,
    PoolNotAllowed,
)
from allegiance.rewards.model import (
    ApprovalPolicy,
    Availability,
    CatalogItemCreate,
    CatalogItemUpdate,
    Category,
    DonationRequest,
    FaceValue,
    RedemptionRequest,
    RedemptionStatus,
    Source,
    Step,
    localized,
)
from allegiance.rewards.policies import ApprovalPolicies
from allegiance.rewards.policy import (
    GRANTS,
    Actor,
    Requester,
    may_spend_pool,
    required_steps,
    unavailable_because,
)
from allegiance.rewards.ports import RewardsPort, TierOf
from allegiance.rewards.redemption import HoldEffect, Move, initial
from allegiance.rewards.redemption import apply as apply_move

S = RedemptionStatus
SYSTEM = Actor(Requester.OPERATOR, "system:expiry")
NOT_NULL = {"names", "description", "category", "cost", "availability", "active"}


@dataclass(frozen=True)
class Offer:
    """What is being redeemed: a catalog item, or a concierge quote (no item, no stock)."""

    code: str
    names: dict[str, str]
    category: Category
    unit: str
    unit_cost: int
    item_id: int | None = None
    availability: Availability | None = None
    active: bool = True
    limited_stock: bool = False
    concierge_request_id: int | None = None


@dataclass(frozen=True)
class Order:
    """How an offer is redeemed: how many, paid from where, by and for whom."""

    quantity: int = 1
    source: Source = Source.PERSONAL
    participant_id: int | None = None
    organization_id: int | None = None
    recipient_participant_id: int | None = None
    delivery: str = ""


@dataclass(frozen=True)
class Parties:
    organization: dict[str, Any]
    payer: dict[str, Any] | None  # personal: whose account pays
    person: dict[str, Any] | None  # the participant acting (participant keys)
    recipient: dict[str, Any] | None


class RewardsService(ApprovalPolicies):
    def __init__(self, port: RewardsPort, ledger: LedgerService, programs: ProgramsService, clock: Clock,
                 tier_of: TierOf) -> None:
        self.port = port
        self.ledger = ledger
        self.programs = programs
        self.clock = clock
        self.tier_of = tier_of

    # -- catalog -----------------------------------------------------------------------------------
    def item(self, program_id: int, item_id: int) -> dict[str, Any]:
        row = self.port.item(program_id, item_id)
        if row is None:
            raise NotFound(f"catalog item {item_id} not found", field="item_id")
        return row

    def _check_unit(self, program_id: int, unit: str | None, field: str = "unit") -> str:
        settings = self.programs.settings(program_id)
        code = unit or settings.default_unit
        if settings.unit(code) is None:
            raise ValidationFailed(f"unit {code!r} is not one of the program's units", field=field)
        return code

    def create_item(self, program_id: int, body: CatalogItemCreate) -> dict[str, Any]:
        unit = self._check_unit(program_id, body.unit)
        if self.port.item_by_code(program_id, body.code) is not None:
            raise DuplicateItemCode(f"an item with code {body.code!r} exists", field="code")
        now = self.clock.now()
        values = {**body.model_dump(mode="json"), "unit": unit, "program_id": program_id, "created_at": now,
                  "updated_at": now}
        item_id = self.port.insert_item(values)
        self.port.emit(program_id, "catalog.item_created", {"item_id": item_id, "code": body.code}, None)
        return self.item(program_id, item_id)

    def update_item(self, program_id: int, item_id: int, body: CatalogItemUpdate) -> dict[str, Any]:
        current = self.item(program_id, item_id)
        changes = body.model_dump(mode="json", exclude_unset=True)
        for name, value in changes.items():
            if value is None and name in NOT_NULL:
                raise ValidationFailed("cannot be null", field=name)
        merged = {**current, **changes}
        if merged["category"] == Category.CHARITY.value and not merged["face_value"]:
            raise ValidationFailed("a charity item needs face_value: what the cause receives per item",
                                   field="face_value")
        if changes:
            self.port.update_item(item_id, {**changes, "updated_at": self.clock.now()})
            self.port.emit(program_id, "catalog.item_updated", {"item_id": item_id, "changed": sorted(changes)},
                           None)
        return self.item(program_id, item_id)

    def why_unavailable(self, program_id: int, item: dict[str, Any], organization: dict[str, Any],
                        person: dict[str, Any] | None, *, check_role: bool = True) -> str | None:
        if not item["active"]:
            return "not active"
        return unavailable_because(Availability.model_validate(item["availability"]),
                                   tier=self.tier_of(program_id, organization["id"]), kind=organization["kind"],
                                   country=organization["country"], role=person["role"] if person else None,
                                   check_role=check_role)

    def available_items(self, program_id: int, organization_id: int, person: dict[str, Any] | None, *,
                        items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Of ``items``, those this organization (and person, when given) may redeem."""
        organization = self.programs.organization(program_id, organization_id)
        return [i for i in items if self.why_unavailable(program_id, i, organization, person,
                                                         check_role=person is not None) is None]

    # -- redeeming ------------------------------------------------------------------------------------
    def redeem(self, program_id: int, actor: Actor, request: RedemptionRequest) -> dict[str, Any]:
        item = self.item(program_id, request.item_id)
        offer = Offer(code=item["code"], names=item["names"], category=Category(item["category"]), unit=item["unit"],
                      unit_cost=item["cost"], item_id=item["id"],
                      availability=Availability.model_validate(item["availability"]), active=item["active"],
                      limited_stock=item["stock"] is not None)
        return self.redeem_offer(program_id, actor, offer, Order(
            request.quantity, request.source, request.participant_id, request.organization_id,
            request.recipient_participant_id, request.delivery))

    def parties(self, program_id: int, actor: Actor, source: Source, participant_id: int | None,
                organization_id: int | None, recipient_id: int | None) -> Parties:
        person = self.programs.participant(program_id, actor.participant_id) if actor.participant_id else None
        payer = None
        if source is Source.PERSONAL:
            payer_id = participant_id or actor.participant_id
            if payer_id is None:
                raise ValidationFailed("name the participant whose points pay", field="participant_id")
            if actor.kind is not Requester.OPERATOR and payer_id != actor.participant_id:
                raise Forbidden("only the person themselves may spend their own points", field="participant_id")
            payer = self._active_person(program_id, payer_id, "participant_id")
            if organization_id is not None and organization_id != payer["organization_id"]:
                raise ValidationFailed("the participant is not in that organization", field="organization_id")
            organization_id = payer["organization_id"]
        organization_id = organization_id or actor.organization_id
        if organization_id is None:
            raise ValidationFailed("name the organization whose pool pays", field="organization_id")
        organization = self.programs.organization(program_id, organization_id)
        recipient = None
        if recipient_id is not None:
            recipient = self._active_person(program_id, recipient_id, "recipient_participant_id")
            home = recipient["organization_id"]
            if home != organization_id and organization_id not in self.programs.port.ancestors(program_id, home):
                raise ValidationFailed("the recipient must belong to the paying organization",
                                       field="recipient_participant_id")
        return Parties(organization, payer, person, recipient)

    def _active_person(self, program_id: int, participant_id: int, field: str) -> dict[str, Any]:
        try:
            person = self.programs.participant(program_id, participant_id)
        except NotFound as exc:
            raise NotFound(f"participant {participant_id} not found", field=field) from exc
        if person["status"] == "left":
            raise ValidationFailed("the participant has left the organization", field=field)
        return person

    def redeem_offer(self, program_id: int, actor: Actor, offer: Offer, request: Order) -> dict[str, Any]:
        parties = self.parties(program_id, actor, request.source, request.participant_id, request.organization_id,
                               request.recipient_participant_id)
        organization = parties.organization
        policy = self.policy_for(program_id, organization["id"])
        subject = parties.recipient or parties.payer or parties.person
        if offer.item_id is not None:
            item = {"active": offer.active, "availability": (offer.availability or Availability()).model_dump()}
            why = self.why_unavailable(program_id, item, organization, subject)
            if why:
                raise ItemNotAvailable(f"item {offer.code!r} is {why}", field="item_id")
        if request.source is Source.POOL and not may_spend_pool(
                policy, actor.kind, role=parties.person["role"] if parties.person else None,
                is_org_admin=bool(parties.person and parties.person["is_org_admin"])):
            raise PoolNotAllowed(f"the policy lets {policy.pool_spenders} spend the company pool", field="source")
        cost = offer.unit_cost * request.quantity
        steps = required_steps(policy, actor.kind, source=request.source, category=offer.category, unit=offer.unit,
                               cost=cost)
        now = self.clock.now()
        if offer.item_id is not None and offer.limited_stock and not self.port.take_stock(
                offer.item_id, request.quantity):
            left = (self.port.item(program_id, offer.item_id) or {}).get("stock")
            raise OutOfStock(f"only {left} of {offer.code!r} left", field="quantity", available=left)
        cap_person = None if offer.category is Category.CHARITY else (parties.recipient or parties.payer)
        if cap_person is not None:
            self._count_gift(program_id, policy, cap_person, now.year, offer.unit, cost, parties.recipient is not None)
        account = self.ledger.holder_account(program_id, offer.unit, organization["id"],
                                             parties.payer["id"] if parties.payer else None)
        hold = self.ledger.reserve(program_id, account.id, cost, ttl=timedelta(days=policy.hold_days),
                                   memo=f"redemption of {offer.code}")
        after = self.ledger.port.get_account(program_id, account.id)
        balance_after = after.balance if after is not None and after.balance is not None else 0
        locale = (subject or {}).get("locale") or organization.get("locale")
        first = initial(steps)
        redemption_id = self.port.insert_redemption({
            "program_id": program_id, "organization_id": organization["id"], "item_id": offer.item_id,
            "concierge_request_id": offer.concierge_request_id, "item_code": offer.code,
            "item_name": localized(offer.names, locale)[:300], "category": offer.category.value, "unit": offer.unit,
            "unit_cost": offer.unit_cost, "quantity": request.quantity, "cost": cost, "source": request.source.value,
            "account_id": account.id, "participant_id": (parties.payer or parties.person or {}).get("id"),
            "recipient_participant_id": parties.recipient["id"] if parties.recipient else None,
            "requester": actor.ref, "requester_role": actor.kind.value, "hold_id": hold.id,
            "status": first.status.value, "approvals_outstanding": sorted(s.value for s in first.outstanding),
            "approvals": [], "balance_before": balance_after + cost, "balance_after": balance_after,
            "cap_participant_id": cap_person["id"] if cap_person else None, "year": now.year, "reason": "",
            "delivery": request.delivery, "fulfilment_note": "", "expires_at": hold.expires_at, "version": 1,
            "created_at": now, "updated_at": now, "resolved_at": None,
        })
        self._history(program_id, redemption_id, None, S.REQUESTED, actor, "")
        self._history(program_id, redemption_id, S.REQUESTED, first.status, actor, "")
        self._announce(program_id, redemption_id, "redemption.requested")
        if first.status is S.APPROVED:
            self._announce(program_id, redemption_id, "redemption.approved")
            if offer.category is Category.CHARITY:  # nothing to deliver: the points go to the cause now
                return self.fulfil(program_id, redemption_id, actor, "donated")
        return self.redemption(program_id, redemption_id)

    def _count_gift(self, program_id: int, policy: ApprovalPolicy, person: dict[str, Any], year: int, unit: str,
                    cost: int, named: bool) -> None:
        cap = policy.annual_cap.get(unit)
        if not self.port.add_gift(program_id, person["id"], year, unit, cost, cap):
            used = self.port.gift_total(program_id, person["id"], year, unit)
            raise AnnualCapExceeded(
                f"{person['name']} has received {used} {unit} of gifts in {year}; {cost} more would pass the "
                f"annual cap of {cap}", field="recipient_participant_id" if named else "participant_id",
                cap=cap, used=used, requested=cost, year=year, unit=unit)

    # -- moves ------------------------------------------------------------------------------------------
    def approve(self, program_id: int, redemption_id: int, actor: Actor) -> dict[str, Any]:
        return self._move(program_id, redemption_id, Move.APPROVE, actor)

    def reject(self, program_id: int, redemption_id: int, actor: Actor, reason: str) -> dict[str, Any]:
        if not reason.strip():
            raise ValidationFailed("a rejection needs a reason", field="reason")
        return self._move(program_id, redemption_id, Move.REJECT, actor, reason)

    def cancel(self, program_id: int, redemption_id: int, actor: Actor, reason: str = "") -> dict[str, Any]:
        return self._move(program_id, redemption_id, Move.CANCEL, actor, reason)

    def fulfil(self, program_id: int, redemption_id: int, actor: Actor, note: str = "") -> dict[str, Any]:
        return self._move(program_id, redemption_id, Move.FULFIL, actor, note)

    def expire_due(self, limit: int = 500) -> int:
        """The expiry job: redemptions still waiting when their hold runs out release everything."""
        count = 0
        for due in self.port.due_redemptions(self.clock.now(), limit):
            try:
                self._move(due["program_id"], due["id"], Move.EXPIRE, SYSTEM, "not resolved in time")
                count += 1
            except InvalidTransition:
                continue
        return count

    def _move(self, program_id: int, redemption_id: int, move: Move, actor: Actor, note: str = "") -> dict[str, Any]:
        row = self.port.redemption(program_id, redemption_id)
        if row is None:
            raise NotFound(f"redemption {redemption_id} not found", field="redemption_id")
        now = self.clock.now()
        status = S(row["status"])
        if move in (Move.APPROVE, Move.FULFIL) and row["expires_at"] <= now and not status.is_final:
            raise InvalidTransition("this redemption has run out of time; its points are being released",
                                    state=status.value)
        if (move is Move.CANCEL and actor.kind is Requester.PARTICIPANT
                and row["participant_id"] != actor.participant_id):
            raise Forbidden("only the person who asked (or an admin) may cancel a redemption")
        outstanding = frozenset(Step(s) for s in row["approvals_outstanding"])
        moved = apply_move(status, move, outstanding, GRANTS[actor.kind])
        values: dict[str, Any] = {"status": moved.status.value, "updated_at": now,
                                  "approvals_outstanding": sorted(s.value for s in moved.outstanding)}
        if moved.granted:
            values["approvals"] = [*row["approvals"], *({"step": s.value, "by": actor.ref, "at": now.isoformat()}
                                                        for s in sorted(moved.granted))]
        if move in (Move.REJECT, Move.CANCEL, Move.EXPIRE):
            values["reason"] = note
        if move is Move.FULFIL:
            values["fulfilment_note"] = note
        if moved.status.is_final:
            values["resolved_at"] = now
        if not self.port.move_redemption(redemption_id, row["version"], values):
            raise InvalidTransition("someone else changed this redemption at the same moment; read it again",
                                    state=status.value)
        if moved.hold in (HoldEffect.VOID, HoldEffect.EXPIRE):
            self._release(program_id, row)
            hold = self.ledger.port.get_hold(program_id, row["hold_id"])
            if hold is not None and hold.status == "pending":  # the ledger's own job may have expired it
                self.ledger.void_hold(program_id, row["hold_id"], expired=moved.hold is HoldEffect.EXPIRE)
        elif moved.hold is HoldEffect.POST:
            self.ledger.post_hold(program_id, row["hold_id"])
        self._history(program_id, redemption_id, status, moved.status, actor, note)
        if moved.status is not status:
            self._announce(program_id, redemption_id, f"redemption.{moved.status.value}")
        if moved.status is S.FULFILLED and row["category"] == Category.CHARITY.value:
            self._donate(program_id, row)
        if moved.status is S.APPROVED and row["category"] == Category.CHARITY.value:
            return self.fulfil(program_id, redemption_id, actor, "donated")
        return self.redemption(program_id, redemption_id)

    def _release(self, program_id: int, row: dict[str, Any]) -> None:
        if row["item_id"] is not None:
            self.port.return_stock(row["item_id"], row["quantity"])
        if row["cap_participant_id"] is not None:
            self.port.remove_gift(program_id, row["cap_participant_id"], row["year"], row["unit"], row["cost"])

    def _donate(self, program_id: int, row: dict[str, Any]) -> None:
        item = self.item(program_id, row["item_id"])
        value = FaceValue.model_validate(item["face_value"])
        donation_id = self.port.insert_donation({
            "program_id": program_id, "organization_id": row["organization_id"], "redemption_id": row["id"],
            "item_id": row["item_id"], "participant_id": row["participant_id"], "unit": row["unit"],
            "points": row["cost"], "currency": value.currency, "value": value.amount * row["quantity"],
            "created_at": self.clock.now()})
        receipt = f"DON-{row['year']}-{program_id}-{donation_id:07d}"
        self.port.set_receipt(donation_id, receipt)
        self.port.emit(program_id, "donation.recorded", {
            "donation_id": donation_id, "redemption_id": row["id"], "cause_id": row["item_id"],
            "points": row["cost"], "currency": value.currency, "value": value.amount * row["quantity"],
            "receipt_number": receipt}, row["organization_id"])

    def _history(self, program_id: int, redemption_id: int, before: S | None, after: S, actor: Actor,
                 note: str) -> None:
        self.port.add_history({"program_id": program_id, "redemption_id": redemption_id,
                               "from_status": before.value if before else None, "to_status": after.value,
                               "actor": actor.ref, "note": note, "at": self.clock.now()})

    def _announce(self, program_id: int, redemption_id: int, topic: str) -> None:
        """Fulfilment partners subscribe to these through the outbox relay."""
        row = self.port.redemption(program_id, redemption_id)
        assert row is not None
        self.port.emit(program_id, topic, {
            "redemption_id": redemption_id, "item_id": row["item_id"], "item_code": row["item_code"],
            "quantity": row["quantity"], "cost": row["cost"], "unit": row["unit"], "status": row["status"],
            "source": row["source"], "participant_id": row["participant_id"],
            "recipient_participant_id": row["recipient_participant_id"], "delivery": row["delivery"],
            "reason": row["reason"]}, row["organization_id"])

    # -- reading ----------------------------------------------------------------------------------------
    def redemption(self, program_id: int, redemption_id: int) -> dict[str, Any]:
        row = self.port.redemption(program_id, redemption_id)
        if row is None:
            raise NotFound(f"redemption {redemption_id} not found", field="redemption_id")
        return self.view(row, history=self.port.history(redemption_id))

    def view(self, row: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k not in ("version", "requester", "cap_participant_id", "year")}
        out["version"] = row["version"]
        if history is not None:
            out["history"] = history
        if row["category"] == Category.CHARITY.value:
            out["donation"] = self.port.donation_for(row["id"])
        return out

    # -- charity ------------------------------------------------------------------------------------------
    def donate(self, program_id: int, actor: Actor, body: DonationRequest) -> dict[str, Any]:
        """Points to a listed cause: a redemption of its charity item, fulfilled as soon as approved."""
        cause = self.item(program_id, body.cause_id)
        if cause["category"] != Category.CHARITY.value:
            raise ValidationFailed(f"item {body.cause_id} is not a charity cause", field="cause_id")
        if body.points % cause["cost"]:
            raise ValidationFailed(f"donate a multiple of {cause['cost']} {cause['unit']}", field="points")
        return self.redeem(program_id, actor, RedemptionRequest(
            item_id=body.cause_id, quantity=body.points // cause["cost"], source=body.source,
            participant_id=body.participant_id, organization_id=body.organization_id))
