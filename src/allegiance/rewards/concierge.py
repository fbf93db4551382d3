"""Off-catalog requests: a participant asks, the account manager quotes a price in points, the
participant accepts — and from then on it is an ordinary redemption (hold, approvals, fulfilment).

    open ──quote──▶ quoted ──accept──▶ accepted (→ a redemption)
      │               │ ▲ └──decline──▶ declined
      └──decline──────┤ └─ re-quote
                      └──(quote validity passes)──▶ expired

Nothing is held before acceptance, so declining or letting a quote expire releases nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import Forbidden, NotFound
from allegiance.rewards.errors import InvalidTransition, QuoteExpired
from allegiance.rewards.model import (
    Category,
    ConciergeAsk,
    ConciergeQuote,
    ConciergeStatus,
    Source,
)
from allegiance.rewards.policy import Actor, Requester
from allegiance.rewards.ports import RewardsPort
from allegiance.rewards.service import SYSTEM, Offer, Order, RewardsService

C = ConciergeStatus


class ConciergeService:
    def __init__(self, port: RewardsPort, rewards: RewardsService, clock: Clock) -> None:
        self.port = port
        self.rewards = rewards
        self.clock = clock

    def get(self, program_id: int, request_id: int) -> dict[str, Any]:
        row = self.port.concierge(program_id, request_id)
        if row is None:
            raise NotFound(f"concierge request {request_id} not found", field="request_id")
        return row

    def ask(self, program_id: int, actor: Actor, body: ConciergeAsk) -> dict[str, Any]:
        parties = self.rewards.parties(program_id, actor, body.source, body.participant_id, body.organization_id,
                                       body.recipient_participant_id)
        now = self.clock.now()
        organization_id = parties.organization["id"]
        request_id = self.port.insert_concierge({
            "program_id": program_id, "organization_id": organization_id,
            "participant_id": (parties.payer or parties.person or {}).get("id"),
            "recipient_participant_id": parties.recipient["id"] if parties.recipient else None,
            "requester": actor.ref, "requester_role": actor.kind.value, "description": body.description,
            "source": body.source.value, "status": C.OPEN.value, "category": body.category.value,
            "quote_note": "", "reason": "", "version": 1, "created_at": now, "updated_at": now})
        self.port.emit(program_id, "concierge.requested", {"request_id": request_id, "description": body.description},
                       organization_id)
        return self.get(program_id, request_id)

    def _move(self, row: dict[str, Any], allowed: set[C], target: C, values: dict[str, Any]) -> dict[str, Any]:
        status = C(row["status"])
        if status not in allowed:
            raise InvalidTransition(f"a {status.value} concierge request cannot become {target.value}",
                                    state=status.value)
        now = self.clock.now()
        if not self.port.move_concierge(row["id"], row["version"], {**values, "status": target.value,
                                                                    "updated_at": now}):
            raise InvalidTransition("someone else changed this request at the same moment; read it again",
                                    state=status.value)
        self.port.emit(row["program_id"], f"concierge.{target.value}", {"request_id": row["id"]},
                       row["organization_id"])
        return self.get(row["program_id"], row["id"])

    def quote(self, program_id: int, request_id: int, actor: Actor, body: ConciergeQuote) -> dict[str, Any]:
        row = self.get(program_id, request_id)
        unit = self.rewards._check_unit(program_id, body.unit)
        days = self.rewards.policy_for(program_id, row["organization_id"]).quote_days
        now = self.clock.now()
        return self._move(row, {C.OPEN, C.QUOTED}, C.QUOTED, {
            "quote_unit": unit, "quote_cost": body.cost, "quote_note": body.note, "quoted_by": actor.ref,
            "quoted_at": now, "quote_expires_at": now + timedelta(days=days),
            "category": (body.category or Category(row["category"])).value})

    def _own(self, row: dict[str, Any], actor: Actor) -> None:
        if actor.kind is Requester.PARTICIPANT and row["participant_id"] != actor.participant_id:
            raise Forbidden("only the person who asked (or an admin) may answer this quote")

    def accept(self, program_id: int, request_id: int, actor: Actor) -> dict[str, Any]:
        """Turns the quote into a redemption in the same transaction: both happen or neither."""
        row = self.get(program_id, request_id)
        self._own(row, actor)
        if row["status"] == C.QUOTED.value and row["quote_expires_at"] <= self.clock.now():
            raise QuoteExpired("the quote has expired; ask for a new one", field="request_id")
        accepted = self._move(row, {C.QUOTED}, C.ACCEPTED, {})
        source = Source(row["source"])
        offer = Offer(code=f"concierge-{request_id}", names={"en": row["description"]},
                      category=Category(row["category"]), unit=row["quote_unit"], unit_cost=row["quote_cost"],
                      concierge_request_id=request_id)
        redemption = self.rewards.redeem_offer(program_id, actor, offer, Order(
            source=source, participant_id=row["participant_id"] if source is Source.PERSONAL else None,
            organization_id=row["organization_id"], recipient_participant_id=row["recipient_participant_id"]))
        self.port.move_concierge(request_id, accepted["version"], {"redemption_id": redemption["id"]})
        return {**self.get(program_id, request_id), "redemption": redemption}

    def decline(self, program_id: int, request_id: int, actor: Actor, reason: str) -> dict[str, Any]:
        row = self.get(program_id, request_id)
        self._own(row, actor)
        return self._move(row, {C.OPEN, C.QUOTED}, C.DECLINED, {"reason": reason})

    def expire_due(self, limit: int = 500) -> int:
        count = 0
        for due in self.port.due_quotes(self.clock.now(), limit):
            try:
                self._move(self.get(due["program_id"], due["id"]), {C.QUOTED}, C.EXPIRED,
                           {"reason": f"quote not accepted in time ({SYSTEM.ref})"})
                count += 1
            except InvalidTransition:
                continue
        return count
