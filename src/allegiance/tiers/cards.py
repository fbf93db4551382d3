"""Discount cards of ``TiersService``: a fixed percentage, or one that grows with cumulative
purchases; the organization gets the better of its card and its tier (they don't stack).

A mixin, because cards share the service's port, clock and tier look-ups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.rules.engine import EventContext
from allegiance.tiers.errors import DiscountCardInvalid, parse
from allegiance.tiers.measure import StoredLadder, org_subject
from allegiance.tiers.model import CardKind, DiscountCard, Level
from allegiance.tiers.policy import Discount, discount, read_amount, utc_day
from allegiance.tiers.ports import TiersPort


class DiscountCards:
    port: TiersPort
    clock: Clock
    declared_types: Callable[[int], set[str]] | None
    _cards: dict[int, bool]

    def ladder_at(self, program_id: int, level: Level) -> StoredLadder | None:
        raise NotImplementedError  # TiersService's

    def effective_rank(self, program_id: int, stored: StoredLadder, organization_id: int) -> int:
        raise NotImplementedError  # TiersService's

    # -- discount cards ---------------------------------------------------------------------------
    def set_card(self, program_id: int, organization_id: int, document: Any, *, by: str) -> dict[str, Any]:
        card = parse(DiscountCard, document, DiscountCardInvalid)
        types = self.declared_types(program_id) if self.declared_types else None
        missing = [t for t in card.event_types if types is not None and t not in types]
        if missing:
            raise DiscountCardInvalid(f"event types {missing} are not declared in this program", field="event_types")
        self.port.save_card(program_id, organization_id, card.model_dump(mode="json"), by)
        self._cards[program_id] = True
        row = self.port.card(program_id, organization_id)
        assert row is not None
        scope = f"card:{row['id']}"
        self.port.clear_measures(program_id, scope)
        if card.kind is CardKind.CUMULATIVE:
            since = datetime.fromisoformat(card.valid_from).replace(tzinfo=UTC) if card.valid_from else None
            for _org, _person, _type, occurred_at, payload in self.port.replay_events(
                    program_id, card.event_types, organization_id=organization_id, since=since):
                self.port.add_measure(program_id, scope, org_subject(organization_id), organization_id,
                                      "cumulative", utc_day(occurred_at), read_amount(payload, card.field) or 0, 1)
        self.port.emit(program_id, "discount_card.set", {"organization_id": organization_id,
                                                         "kind": card.kind.value, "by": by}, organization_id)
        return self.card(program_id, organization_id)

    def card(self, program_id: int, organization_id: int) -> dict[str, Any]:
        row = self.port.card(program_id, organization_id)
        found = self.discount_for(program_id, organization_id, self.clock.now())
        return {"organization_id": organization_id, "card": row["document"] if row else None,
                "updated_at": row["updated_at"] if row else None, "discount": _plain(found)}

    def discount_for(self, program_id: int, organization_id: int, at: datetime) -> Discount:
        """The organization's discount now: the better of its card and its tier (they don't stack)."""
        row = self.port.card(program_id, organization_id)
        card = DiscountCard.model_validate(row["document"]) if row else None
        cumulative = 0
        if row is not None and card is not None and card.kind is CardKind.CUMULATIVE:
            first = datetime.fromisoformat(card.valid_from).date() if card.valid_from else None
            cumulative = self.port.sum_measure(program_id, f"card:{row['id']}", "cumulative",
                                               [org_subject(organization_id)], first, utc_day(at))[0]
        tier_code, tier_percent = None, Decimal(0)
        stored = self.ladder_at(program_id, Level.ORGANIZATION)
        if stored is not None:
            rank = self.effective_rank(program_id, stored, organization_id)
            if rank >= 0:
                tier_code, tier_percent = stored.ladder.tiers[rank].code, stored.ladder.tiers[rank].discount_percent
        return discount(card, cumulative, utc_day(at), tier_code, tier_percent)

    def _record_card(self, program_id: int, organization_id: int, event: EventContext) -> None:
        row = self.port.card(program_id, organization_id)
        if row is None:
            return
        card = DiscountCard.model_validate(row["document"])
        if card.kind is not CardKind.CUMULATIVE or event.type not in card.event_types:
            return
        if card.valid_from and utc_day(event.occurred_at).isoformat() < card.valid_from:
            return
        amount = read_amount(event.payload, card.field) or 0
        self.port.add_measure(program_id, f"card:{row['id']}", org_subject(organization_id), organization_id,
                              "cumulative", utc_day(event.occurred_at), amount, 1)


def _plain(found: Discount) -> dict[str, Any]:
    out = asdict(found)
    for key in ("percent", "next_percent"):
        if out[key] is not None:
            out[key] = str(out[key])
    return out
