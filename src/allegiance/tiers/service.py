"""Tier use cases: ladders as data, status that rises at once and falls only at period end.

``TiersService`` is three things to the rest of the system:

- the rules' ``TierView``: an organization's tier and earn multiplier (``tier_of``), and where
  tier-qualifying credits go (``add_qualifying_credit``);
- an events ``EventObserver``: ``after_event`` runs inside the event's transaction, adds the event
  to every ladder's running totals and upgrades the organization (and the groups above it) or
  person at once — if it raises, the event rolls back with it;
- the review job (``review``): downgrades only at a period end, after the ladder's grace period,
  with a warning first; idempotent, so cron can run it as often as it likes.

Every change of tier writes a history row and a ``tier.changed`` outbox row in the same transaction.
Raises ``LadderInvalid`` / ``DiscountCardInvalid`` (422 naming the field), ``DuplicateLadder``
(409), ``NotFound``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import NotFound
from allegiance.programs.ports import ProgramsPort
from allegiance.programs.service import ProgramsService
from allegiance.rules.engine import EventContext
from allegiance.tiers.cards import DiscountCards
from allegiance.tiers.errors import DuplicateLadder, LadderInvalid, parse
from allegiance.tiers.measure import Measurer, StoredLadder, org_subject, person_subject
from allegiance.tiers.model import Ladder, Level
from allegiance.tiers.policy import (
    StatusFacts,
    Verdict,
    benefits_at,
    last_boundary,
    progress,
    qualify,
    review,
    visible_to,
)
from allegiance.tiers.ports import TiersPort

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TiersService(DiscountCards):
    def __init__(self, port: TiersPort, programs: ProgramsService, program_store: ProgramsPort, clock: Clock,
                 declared_types: Callable[[int], set[str]] | None = None) -> None:
        self.port = port
        self.programs = programs
        self.program_store = program_store
        self.clock = clock
        self.declared_types = declared_types
        self.measurer = Measurer(port)
        self._ladders: dict[int, list[StoredLadder]] = {}
        self._cards: dict[int, bool] = {}
        self._credited: set[tuple[int, int, int | None]] = set()

    # -- ladders --------------------------------------------------------------------------------
    def ladders(self, program_id: int) -> list[StoredLadder]:
        if program_id not in self._ladders:
            self._ladders[program_id] = [StoredLadder(r["id"], r["code"], r["version"], Ladder.model_validate(
                r["document"])) for r in self.port.ladders(program_id)]
        return self._ladders[program_id]

    def ladder_at(self, program_id: int, level: Level) -> StoredLadder | None:
        return next((s for s in self.ladders(program_id) if s.ladder.level is level), None)

    def _validated(self, program_id: int, document: Any) -> Ladder:
        ladder = parse(Ladder, document, LadderInvalid)
        roles = self.programs.settings(program_id).role_codes()
        types = self.declared_types(program_id) if self.declared_types else None
        for t_index, tier in enumerate(ladder.tiers):
            for c_index, criterion in enumerate(tier.requires):
                where = f"tiers[{t_index}].requires[{c_index}]"
                unknown = [r for r in criterion.roles if r not in roles]
                if unknown:
                    raise LadderInvalid(f"unknown roles {unknown}; the program's roles are {sorted(roles)}",
                                        field=f"{where}.roles")
                missing = [t for t in criterion.event_types if types is not None and t not in types]
                if missing:
                    raise LadderInvalid(f"event types {missing} are not declared in this program",
                                        field=f"{where}.event_types")
            for b_index, benefit in enumerate(tier.benefits):
                unknown = [r for r in benefit.roles if r not in roles]
                if unknown:
                    raise LadderInvalid(f"unknown roles {unknown}; the program's roles are {sorted(roles)}",
                                        field=f"tiers[{t_index}].benefits[{b_index}].roles")
        return ladder

    def save_ladder(self, program_id: int, document: Any, *, by: str, code: str | None = None) -> dict[str, Any]:
        """Create a ladder (``code`` None) or replace the one with that code; its running totals are
        rebuilt from the stored events in the same transaction."""
        ladder = self._validated(program_id, document)
        if code is not None and ladder.code != code:
            raise LadderInvalid("the ladder's code must match the path", field="code")
        existing = self.port.ladder(program_id, ladder.code)
        if code is None and existing is not None:
            raise DuplicateLadder(f"ladder {ladder.code!r} already exists", field="code")
        if code is not None and existing is None:
            raise NotFound(f"ladder {code!r} not found")
        same_level = self.ladder_at(program_id, ladder.level)
        if same_level is not None and same_level.code != ladder.code:
            raise DuplicateLadder(f"the program already has an {ladder.level.value} ladder ({same_level.code!r})",
                                  field="level")
        stored_doc = ladder.model_dump(mode="json")
        if existing is None:
            ladder_id = self.port.insert_ladder(program_id, ladder.code, ladder.level.value, stored_doc, by)
        else:
            ladder_id = existing["id"]
            self.port.update_ladder(ladder_id, stored_doc, by)
        self._ladders.pop(program_id, None)
        row = self.port.ladder(program_id, ladder.code)
        assert row is not None
        self.measurer.rebuild(program_id, StoredLadder(ladder_id, ladder.code, row["version"], ladder))
        self.port.emit(program_id, "tier.ladder_saved", {"ladder": ladder.code, "version": row["version"], "by": by},
                       None)
        return row

    def delete_ladder(self, program_id: int, code: str, *, by: str) -> None:
        row = self.port.ladder(program_id, code)
        if row is None:
            raise NotFound(f"ladder {code!r} not found")
        self.port.delete_ladder(row["id"])
        self._ladders.pop(program_id, None)
        self.port.emit(program_id, "tier.ladder_deleted", {"ladder": code, "by": by}, None)

    # -- TierView (for the rules) --------------------------------------------------------------
    def _rank(self, stored: StoredLadder, subject: str) -> int:
        status = self.port.status(stored.id, subject)
        if status is None:
            return qualify(stored.ladder, {})  # the base tier everyone holds, if it asks nothing
        return stored.ladder.rank_of(status["tier"])

    def effective_rank(self, program_id: int, stored: StoredLadder, organization_id: int) -> int:
        """Own tier, or a better one of a group above when the ladder lets subsidiaries share it."""
        rank = self._rank(stored, org_subject(organization_id))
        if stored.ladder.subsidiaries_share_status:
            for parent in self.port.ancestors(program_id, organization_id):
                rank = max(rank, self._rank(stored, org_subject(parent)))
        return rank

    def tier_of(self, program_id: int, organization_id: int, *,
                organization: Mapping[str, Any] | None = None) -> tuple[str | None, Decimal]:
        """The organization's tier and earn multiplier. ``organization``: its row, if the caller has
        just read it — without a ladder the tier is an attribute of that row, not read again."""
        stored = self.ladder_at(program_id, Level.ORGANIZATION)
        if stored is None:  # no ladder: a tier an operator keeps in the organization's attributes, if any
            org = organization if organization is not None else \
                self.program_store.organization(program_id, organization_id) or {}
            tier = (org.get("attributes") or {}).get("tier")
            return (str(tier) if tier is not None else None), Decimal(1)
        rank = self.effective_rank(program_id, stored, organization_id)
        if rank < 0:
            return None, Decimal(1)
        tier = stored.ladder.tiers[rank]
        return tier.code, tier.earn_multiplier

    def tier_code(self, program_id: int, organization_id: int) -> str | None:
        """For catalog availability (``rewards``): the organization's tier code."""
        return self.tier_of(program_id, organization_id)[0]

    def add_qualifying_credit(self, program_id: int, organization_id: int, participant_id: int | None, amount: int,
                              occurred_at: datetime, event_id: int | None, rule: str) -> None:
        self.port.add_credit({"program_id": program_id, "organization_id": organization_id,
                              "participant_id": participant_id, "amount": amount, "occurred_at": occurred_at,
                              "event_id": event_id, "rule": rule[:80]})
        self._credited.add((program_id, organization_id, participant_id))

    # -- EventObserver ----------------------------------------------------------------------------
    def is_idle(self, program_id: int) -> bool:
        if program_id not in self._cards:
            self._cards[program_id] = self.port.has_cards(program_id)
        return not self.ladders(program_id) and not self._cards[program_id]

    def after_event(self, event: EventContext, transaction_ids: Sequence[int]) -> None:
        if event.organization is None or self.is_idle(event.program_id):
            return
        program_id = event.program_id
        organization_id = int(event.organization["id"])
        participant_id = int(event.participant["id"]) if event.participant else None
        credited = {(o, p) for prog, o, p in self._credited if prog == program_id}
        self._credited = {c for c in self._credited if c[0] != program_id}
        for stored in self.ladders(program_id):
            changed = self.measurer.record(program_id, stored, event.type, event.occurred_at, event.payload,
                                           organization_id, participant_id)
            if stored.ladder.level is Level.ORGANIZATION:
                if changed or any(o == organization_id for o, _ in credited):
                    reason = f"{event.type} (event {event.event_id})"
                    for org in [organization_id, *(self.port.ancestors(program_id, organization_id)
                                                   if stored.ladder.rollup else [])]:
                        self.requalify(program_id, stored, org, None, reason=reason, event_id=event.event_id)
            elif participant_id is not None and (changed or (organization_id, participant_id) in credited):
                self.requalify(program_id, stored, organization_id, participant_id,
                               reason=f"{event.type} (event {event.event_id})", event_id=event.event_id)
        if self._cards.get(program_id):
            self._record_card(program_id, organization_id, event)

    # -- status changes ---------------------------------------------------------------------------
    def _subject(self, stored: StoredLadder, organization_id: int, participant_id: int | None) -> str:
        return org_subject(organization_id) if stored.ladder.level is Level.ORGANIZATION else \
            person_subject(participant_id or 0)

    def _locked_status(self, program_id: int, stored: StoredLadder, organization_id: int,
                       participant_id: int | None) -> dict[str, Any]:
        subject = self._subject(stored, organization_id, participant_id)
        status = self.port.status(stored.id, subject, lock=True)
        if status is None:
            base = qualify(stored.ladder, {})
            self.port.insert_status({
                "program_id": program_id, "ladder_id": stored.id, "subject": subject,
                "organization_id": organization_id, "participant_id": participant_id,
                "tier": stored.ladder.tiers[base].code if base >= 0 else None, "since": EPOCH})
            status = self.port.status(stored.id, subject, lock=True)
        assert status is not None
        return status

    def requalify(self, program_id: int, stored: StoredLadder, organization_id: int, participant_id: int | None,
                  *, reason: str, event_id: int | None = None) -> str | None:
        """Upgrade at once if the totals now earn a higher tier; a pending downgrade is cancelled
        if the current tier is earned again. Returns the tier code held afterwards."""
        subject = self._subject(stored, organization_id, participant_id)
        now = self.clock.now()
        values = self.measurer.values(program_id, stored, organization_id, participant_id, now.date())
        earned = qualify(stored.ladder, values)
        status = self.port.status(stored.id, subject)
        current = stored.ladder.rank_of(status["tier"]) if status else qualify(stored.ladder, {})
        if earned > current:
            status = self._locked_status(program_id, stored, organization_id, participant_id)
            current = stored.ladder.rank_of(status["tier"])
            if earned > current:
                self._change(program_id, stored, status, current, earned, "up", reason, values, event_id)
                return stored.ladder.tiers[earned].code
        if status is not None and status["pending_tier"] is not None and earned >= current:
            self._cancel_pending(program_id, stored, status, reason, values)
        return status["tier"] if status else (stored.ladder.tiers[current].code if current >= 0 else None)

    def _change(self, program_id: int, stored: StoredLadder, status: dict[str, Any], old: int, new: int,
                direction: str, reason: str, values: dict[Any, int], event_id: int | None,
                reviewed_through: datetime | None = None) -> None:
        now = self.clock.now()
        ladder = stored.ladder
        old_code = ladder.tiers[old].code if old >= 0 else None
        new_code = ladder.tiers[new].code if new >= 0 else None
        changes: dict[str, Any] = {"tier": new_code, "since": now, "pending_tier": None, "downgrade_at": None}
        if reviewed_through is not None:
            changes["reviewed_through"] = reviewed_through
        self.port.update_status(status["id"], changes)
        shown = _shown(ladder, values)
        self.port.insert_history({
            "program_id": program_id, "ladder_id": stored.id, "subject": status["subject"],
            "organization_id": status["organization_id"], "participant_id": status["participant_id"],
            "from_tier": old_code, "to_tier": new_code, "direction": direction, "reason": reason[:300],
            "measures": shown, "event_id": event_id, "at": now})
        self.port.emit(program_id, "tier.changed", {
            "ladder": stored.code, "organization_id": status["organization_id"],
            "participant_id": status["participant_id"], "from": old_code, "to": new_code, "direction": direction,
            "reason": reason[:300], "event_id": event_id, "measures": shown}, status["organization_id"])

    def _cancel_pending(self, program_id: int, stored: StoredLadder, status: dict[str, Any], reason: str,
                        values: dict[Any, int]) -> None:
        self.port.update_status(status["id"], {"pending_tier": None, "downgrade_at": None})
        self.port.insert_history({
            "program_id": program_id, "ladder_id": stored.id, "subject": status["subject"],
            "organization_id": status["organization_id"], "participant_id": status["participant_id"],
            "from_tier": status["tier"], "to_tier": status["tier"], "direction": "kept",
            "reason": f"requalified: {reason}"[:300], "measures": _shown(stored.ladder, values), "event_id": None,
            "at": self.clock.now()})
        self.port.emit(program_id, "tier.downgrade_cancelled", {
            "ladder": stored.code, "organization_id": status["organization_id"],
            "participant_id": status["participant_id"], "tier": status["tier"]}, status["organization_id"])

    # -- the review job ---------------------------------------------------------------------------
    def review(self, program_id: int, *, batch: int = 500) -> dict[str, int]:
        """Re-qualify every organization (and person) of the program: upgrade at once, warn and
        then downgrade at period end after the grace period. Idempotent."""
        counts = {"reviewed": 0, "upgraded": 0, "warned": 0, "downgraded": 0}
        for stored in self.ladders(program_id):
            after = 0
            while True:
                subjects: list[tuple[int, int | None]]
                if stored.ladder.level is Level.ORGANIZATION:
                    subjects = [(o, None) for o in self.port.organization_ids(program_id, after, batch)]
                else:
                    subjects = [(o, p) for p, o in self.port.participant_ids(program_id, after, batch)]
                if not subjects:
                    break
                for organization_id, participant_id in subjects:
                    verdict = self._review_one(program_id, stored, organization_id, participant_id)
                    counts["reviewed"] += 1
                    if verdict is not Verdict.KEEP:
                        counts[{"upgrade": "upgraded", "warn": "warned", "downgrade": "downgraded"}[verdict]] += 1
                last_org, last_person = subjects[-1]
                after = last_person if last_person is not None else last_org
        return counts

    def _review_one(self, program_id: int, stored: StoredLadder, organization_id: int,
                    participant_id: int | None) -> Verdict:
        ladder = stored.ladder
        now = self.clock.now()
        subject = self._subject(stored, organization_id, participant_id)
        existing = self.port.status(stored.id, subject)
        current = ladder.rank_of(existing["tier"]) if existing else qualify(ladder, {})
        values = self.measurer.values(program_id, stored, organization_id, participant_id, now.date())
        earned = qualify(ladder, values)
        if existing is None and earned <= current:
            return Verdict.KEEP
        boundary = last_boundary(ladder.review_period, now)
        at_end = current
        if earned < current:
            at_end = qualify(ladder, self.measurer.values(program_id, stored, organization_id, participant_id,
                                                          boundary.date() - timedelta(days=1)))
        status = self._locked_status(program_id, stored, organization_id, participant_id)
        facts = StatusFacts(ladder.rank_of(status["tier"]), status["since"], status["reviewed_through"],
                            status["downgrade_at"])
        decision = review(facts, now=now, boundary=boundary, qualified_now=earned, qualified_at_end=at_end,
                          grace_days=ladder.grace_days)
        if decision.verdict is Verdict.UPGRADE:
            self._change(program_id, stored, status, facts.rank, decision.target, "up", "review", values, None)
        elif decision.verdict is Verdict.DOWNGRADE:
            self._change(program_id, stored, status, facts.rank, decision.target, "down",
                         f"not requalified for the period ending {boundary.date().isoformat()}", values, None,
                         reviewed_through=decision.reviewed_through)
        elif decision.verdict is Verdict.WARN:
            target = ladder.tiers[decision.target].code if decision.target >= 0 else None
            if status["downgrade_at"] == decision.due and status["pending_tier"] == target:
                return Verdict.KEEP  # already warned for this period end
            self.port.update_status(status["id"], {"pending_tier": target, "downgrade_at": decision.due})
            self.port.insert_history({
                "program_id": program_id, "ladder_id": stored.id, "subject": subject,
                "organization_id": organization_id, "participant_id": participant_id, "from_tier": status["tier"],
                "to_tier": target, "direction": "warned", "reason": f"downgrade due {decision.due:%Y-%m-%d}",
                "measures": _shown(ladder, values), "event_id": None, "at": now})
            self.port.emit(program_id, "tier.downgrade_warned", {
                "ladder": stored.code, "organization_id": organization_id, "participant_id": participant_id,
                "from": status["tier"], "to": target, "due": decision.due.isoformat() if decision.due else None},
                organization_id)
        else:
            if status["pending_tier"] is not None:
                self._cancel_pending(program_id, stored, status, "review", values)
            if decision.reviewed_through is not None and status["reviewed_through"] != decision.reviewed_through:
                self.port.update_status(status["id"], {"reviewed_through": decision.reviewed_through})
        return decision.verdict

    # -- read side ----------------------------------------------------------------------------------
    def standing(self, program_id: int, organization_id: int, participant_id: int | None = None,
                 history: int = 50) -> dict[str, Any]:
        """Status, what it was measured on, how far the next tier is, and the history (newest first)."""
        level = Level.PARTICIPANT if participant_id is not None else Level.ORGANIZATION
        stored = self.ladder_at(program_id, level)
        if stored is None:
            return {"ladder": None, "tier": None, "progress": None, "history": []}
        ladder = stored.ladder
        subject = self._subject(stored, organization_id, participant_id)
        now = self.clock.now()
        values = self.measurer.values(program_id, stored, organization_id, participant_id, now.date())
        status = self.port.status(stored.id, subject)
        own = ladder.rank_of(status["tier"]) if status else qualify(ladder, {})
        rank = self.effective_rank(program_id, stored, organization_id) if participant_id is None else own
        tier = ladder.tiers[rank] if rank >= 0 else None
        ahead = progress(ladder, values, own)
        return {
            "ladder": stored.code,
            "tier": tier.code if tier else None,
            "tier_name": tier.name if tier else None,
            "own_tier": ladder.tiers[own].code if own >= 0 else None,
            "since": status["since"] if status and status["since"] != EPOCH else None,
            "earn_multiplier": str(tier.earn_multiplier) if tier else "1",
            "discount_percent": str(tier.discount_percent) if tier else "0",
            "pending_downgrade": ({"to": status["pending_tier"], "at": status["downgrade_at"]}
                                  if status and status["downgrade_at"] else None),
            "measures": _shown(ladder, values),
            "progress": asdict(ahead) if ahead else None,
            "history": [_history(h) for h in self.port.history(stored.id, subject, history)],
        }

    def benefits(self, program_id: int, organization_id: int, role: str | None, *,
                 everything: bool) -> dict[str, Any]:
        """The tier's benefits the caller may see: a person sees those open to their role;
        operators and organization admins see all of them."""
        stored = self.ladder_at(program_id, Level.ORGANIZATION)
        if stored is None:
            return {"tier": None, "items": []}
        rank = self.effective_rank(program_id, stored, organization_id)
        if rank < 0:
            return {"tier": None, "items": []}
        tier = stored.ladder.tiers[rank]
        manager = self.port.manager(program_id, organization_id)
        items = []
        for benefit in visible_to(benefits_at(stored.ladder, rank), role, everything=everything):
            item = benefit.model_dump(mode="json")
            if benefit.kind.value == "personal_manager" and manager is not None:
                item["details"] = {"manager": manager, **item["details"]}
            items.append(item)
        return {"tier": tier.code, "tier_name": tier.name, "earn_multiplier": str(tier.earn_multiplier),
                "discount_percent": str(tier.discount_percent), "items": items}


def _shown(ladder: Ladder, values: dict[Any, int]) -> list[dict[str, Any]]:
    out = []
    for criterion in ladder.criteria():
        out.append({"measure": criterion.measure.value, "event_types": criterion.event_types,
                    "roles": criterion.roles, "value": values.get((criterion.signature(), criterion.window), 0)})
    return out


def _history(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "from_tier", "to_tier", "direction", "reason", "event_id", "at", "measures")
    return {k: row[k] for k in keep}
