"""Earning rules at work: save and activate versions, and run the active set on each event.

``apply`` runs inside the event's transaction (called by the event pipeline): it evaluates the
active version, settles caps and volume ladders under row locks, posts awards through the
ledger (each posting's transaction records the rule, the version and the inputs that fired
it), keeps pending awards until the event or date that releases them, and claws back
proportionally on returns. If anything raises, the event and all of it roll back together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import Conflict, NotFound
from allegiance.ledger.model import AccountKind, TransactionKind
from allegiance.ledger.policy import AwardSplit, SplitMode
from allegiance.ledger.service import Credit, Debit, LedgerService
from allegiance.programs.model import ProgramSettings
from allegiance.rules.backtest import Backtesting
from allegiance.rules.engine import EventContext
from allegiance.rules.evaluate import (
    MISSING,
    CompiledRuleSet,
    Firing,
    contest_entries,
    evaluate,
    read,
)
from allegiance.rules.model import AWARDING, Clawback, Recipient, Rule
from allegiance.rules.ports import NoTiers, RulesPort, TierView
from allegiance.rules.settle import CounterKey, Counters, period_key, settle
from allegiance.rules.validation import NotActivatable, RuleSetInvalid, validated


class AlreadyActive(Conflict):
    code = "rule_set_already_active"


@dataclass(frozen=True)
class Outcome:
    """What one event earned: posted transactions, and the firings kept for explanation."""

    transaction_ids: tuple[int, ...]
    awards: tuple[dict[str, Any], ...]


class RulesService(Backtesting):
    def __init__(self, port: RulesPort, ledger: LedgerService, settings_of: Any, clock: Clock,
                 tiers: TierView | None = None, declared_types: Any = None) -> None:
        self.port = port
        self.ledger = ledger
        self.settings_of = settings_of  # program_id -> ProgramSettings
        self.declared_types = declared_types  # program_id -> set of event types, or None (no check)
        self.clock = clock
        self.tiers: TierView = tiers or NoTiers()
        # (program, version, release event type) -> the match-key paths it releases by
        self._release_keys: dict[tuple[int, int, str], list[str]] = {}

    # -- versions ---------------------------------------------------------------------------
    def save(self, program_id: int, document: Any, *, by: str, note: str = "") -> dict[str, Any]:
        types = self.declared_types(program_id) if self.declared_types else None
        rule_set = validated(document, self.settings_of(program_id), types)
        version = self.port.save_version(program_id, rule_set.model_dump(mode="json", exclude_none=True), by=by,
                                         note=note)
        self.port.emit(program_id, "rules.saved", {"version": version, "by": by}, None)
        saved = self.port.version(program_id, version)
        assert saved is not None
        return saved

    def save_rule(self, program_id: int, rule_document: Any, *, by: str) -> dict[str, Any]:
        """Add or replace one rule: a new version = the latest version with that rule changed."""
        latest = self.port.latest_version(program_id)
        document = dict(latest["document"]) if latest else {"rules": [], "caps": []}
        if not isinstance(rule_document, dict) or not isinstance(rule_document.get("code"), str):
            raise RuleSetInvalid("a rule needs a code", field="code")
        rules = [r for r in document.get("rules", []) if r.get("code") != rule_document["code"]]
        position = next((i for i, r in enumerate(document.get("rules", [])) if r.get("code") == rule_document["code"]),
                        len(rules))
        rules.insert(position, rule_document)
        try:
            return self.save(program_id, {**document, "rules": rules}, by=by, note=f"rule {rule_document['code']}")
        except RuleSetInvalid as exc:
            if exc.field and exc.field.startswith(f"rules[{position}]"):
                exc.field = exc.field.removeprefix(f"rules[{position}]").lstrip(".") or "rule"
            raise

    def activate(self, program_id: int, version: int, *, by: str) -> dict[str, Any]:
        """The audited act that puts a version live. Every enabled earning rule must say which
        behaviour it should change, the metric that will show it and the expected uplift."""
        stored = self.port.version(program_id, version)
        if stored is None:
            raise NotFound(f"rule set version {version} not found", field="version")
        if stored["status"] == "active":
            raise AlreadyActive(f"version {version} is already active", field="version")
        types = self.declared_types(program_id) if self.declared_types else None
        rule_set = validated(stored["document"], self.settings_of(program_id), types)
        for index, rule in enumerate(rule_set.rules):
            if rule.enabled and rule.action.kind in AWARDING and rule.goal is None:
                raise NotActivatable(f"rule {rule.code!r} has no goal: name the behaviour it should change, the "
                                     "metric that will show it and the expected uplift", field=f"rules[{index}].goal")
        for index, contest in enumerate(rule_set.contests):
            if contest.goal is None:
                raise NotActivatable(f"contest {contest.code!r} has no goal", field=f"contests[{index}].goal")
        if not self.port.activate(program_id, version, by=by):
            raise AlreadyActive(f"version {version} is already active", field="version")
        self.port.emit(program_id, "rules.activated", {"version": version, "by": by}, None)
        activated = self.port.version(program_id, version)
        assert activated is not None
        return activated

    def compiled(self, program_id: int, version: int) -> CompiledRuleSet:
        compiled = self.port.compiled(program_id, version)
        if compiled is None:
            raise NotFound(f"rule set version {version} not found", field="version")
        return compiled

    def is_idle(self, program_id: int) -> bool:
        return self.port.active(program_id) is None

    # -- the pipeline -----------------------------------------------------------------------
    def subject(self, program_id: int, context: EventContext) -> tuple[dict[str, Any], Decimal]:
        org = dict(context.organization or {})
        multiplier = Decimal(1)
        if org.get("id") is not None:
            tier, multiplier = self.tiers.tier_of(program_id, int(org["id"]), organization=context.organization)
            org["tier"] = tier
        person = dict(context.participant or {})
        event = {"type": context.type, "occurred_at": context.occurred_at.isoformat(), "id": context.event_id}
        return {"payload": context.payload, "organization": org, "participant": person, "event": event}, multiplier

    def apply(self, context: EventContext) -> list[int]:
        compiled = self.port.active(context.program_id)
        if compiled is None or context.organization is None:
            return []
        settings = self.settings_of(context.program_id)
        subject, multiplier = self.subject(context.program_id, context)
        firings = evaluate(compiled, context.type, context.occurred_at, subject, default_unit=settings.default_unit,
                           tier_multiplier=multiplier)
        posted: list[int] = []
        counters = self.port.counters(context.program_id)
        for firing in firings:
            posted.extend(self._realise(compiled, settings, context, subject, firing, counters))
        if context.type in compiled.release_types:
            posted.extend(self._release_matching(compiled, settings, context, subject, counters))
        if context.type in compiled.contests:
            org_id = int(context.organization["id"])
            for contest, score in contest_entries(compiled, context.type, subject):
                key = CounterKey(f"contest:{contest.code}", f"o:{org_id}",
                                 period_key(contest.period, context.occurred_at))
                counters.lock([key])
                counters.add(key, score, 1)
        return posted

    def _recipient(self, rule: Rule, context: EventContext) -> tuple[int, int | None]:
        assert context.organization is not None
        org_id = int(context.organization["id"])
        person = context.participant["id"] if context.participant else None
        if rule.recipient is Recipient.ORGANIZATION:
            return org_id, None
        return org_id, person

    def _realise(self, compiled: CompiledRuleSet, settings: ProgramSettings, context: EventContext,
                 subject: dict[str, Any], firing: Firing, counters: Counters) -> list[int]:
        compiled_rule = compiled.compiled(firing.rule)
        assert compiled_rule is not None
        rule = compiled_rule.rule
        if firing.kind == "clawback":
            return self._claw_back(rule, context, firing)
        org_id, person_id = self._recipient(rule, context)
        key = firing.key
        if key is None and rule.timing.until_event:
            value = read(subject, rule.timing.key)
            key = None if value is MISSING else value
        base = {"program_id": context.program_id, "rule_set_version": compiled.version, "rule_code": rule.code,
                "event_id": context.event_id, "occurred_at": context.occurred_at, "organization_id": org_id,
                "participant_id": person_id, "unit": firing.unit, "basis": firing.basis,
                "match_key": None if key is None else str(key)[:200], "reason": firing.reason[:500],
                "inputs": firing.inputs}
        if firing.kind == "benefit":
            self.port.insert_award({**base, "kind": "benefit", "amount": firing.amount, "status": "granted"})
            self.port.emit(context.program_id, "benefit.granted", {
                "rule": rule.code, "benefit": firing.inputs.get("benefit"), "quantity": firing.amount,
                "organization_id": org_id, "participant_id": person_id, "event_id": context.event_id,
                "description": firing.reason}, org_id)
            return []
        if firing.kind == "tier_credit":
            self.tiers.add_qualifying_credit(context.program_id, org_id, person_id, firing.amount,
                                             context.occurred_at, context.event_id, rule.code)
            self.port.insert_award({**base, "kind": "tier_credit", "amount": firing.amount, "status": "granted"})
            return []
        if not rule.timing.immediate:
            release_at = None
            if rule.timing.after_days:
                release_at = context.occurred_at + timedelta(days=rule.timing.after_days)
            self.port.insert_award({**base, "kind": "award", "amount": firing.amount, "status": "pending",
                                    "release_type": rule.timing.until_event, "release_at": release_at,
                                    "inputs": {**firing.inputs, "_firing_kind": firing.kind,
                                               "_multiplier": str(firing.multiplier)}})
            self.port.emit(context.program_id, "award.pending", {
                "rule": rule.code, "amount": firing.amount, "unit": firing.unit, "organization_id": org_id,
                "participant_id": person_id, "event_id": context.event_id}, org_id)
            return []
        grant = settle(firing, compiled_rule, context.occurred_at, org_id, person_id, counters)
        award_id = self.port.insert_award({**base, "kind": "award", "amount": grant.amount, "capped": grant.capped,
                                           "caps_hit": list(grant.caps_hit), "status": "posted"})
        if grant.caps_hit:
            self.port.emit(context.program_id, "rule.cap_hit", {
                "rule": rule.code, "caps": list(grant.caps_hit), "capped": grant.capped, "unit": firing.unit,
                "organization_id": org_id, "participant_id": person_id}, org_id)
        if grant.amount <= 0:
            return []
        transaction_id = self._post(settings, rule, compiled.version, context.program_id, org_id, person_id,
                                    firing.unit or settings.default_unit, grant.amount, context.occurred_at,
                                    context.event_id, firing, grant.capped, grant.caps_hit, award_id)
        self.port.update_award(award_id, {"transaction_id": transaction_id})
        return [transaction_id]

    def _post(self, settings: ProgramSettings, rule: Rule, version: int, program_id: int, org_id: int,
              person_id: int | None, unit: str, amount: int, earned_at: datetime, event_id: int | None,
              firing: Firing, capped: int, caps_hit: Sequence[str], award_id: int) -> int:
        split = rule.split or settings.award_split
        if rule.recipient is Recipient.PARTICIPANT and person_id is not None:
            split = AwardSplit(mode=SplitMode.PARTICIPANT)
        metadata = {"rule": rule.code, "rule_name": rule.name, "rule_set_version": version, "inputs": firing.inputs,
                    "reason": firing.reason, "award_id": award_id}
        if capped:
            metadata.update({"capped": capped, "caps_hit": list(caps_hit)})
        posted = self.ledger.award(program_id, unit, amount, organization_id=org_id, participant_id=person_id,
                                   split=split, expiry=settings.expiry_for(unit), earned_at=earned_at,
                                   memo=f"{rule.name}: {firing.reason}"[:500], event_id=event_id, metadata=metadata)
        return posted.transaction_id

    # -- read-only answers ---------------------------------------------------------------------
    def quote(self, program_id: int, organization: dict[str, Any], participant: dict[str, Any] | None,
              event_type: str, payload: dict[str, Any], at: datetime) -> dict[str, Any]:
        """What an event would earn now (caps and ladders as they stand), writing nothing."""
        compiled = self.port.active(program_id)
        result: dict[str, Any] = {"rule_set_version": compiled.version if compiled else None, "awards": [],
                                  "pending": [], "tier_credits": [], "benefits": [], "totals": {}}
        if compiled is None:
            return result
        settings = self.settings_of(program_id)
        context = EventContext(program_id, 0, event_type, at, payload, organization, participant)
        subject, multiplier = self.subject(program_id, context)
        counters = self.port.peek_counters(program_id)
        for firing in evaluate(compiled, event_type, at, subject, default_unit=settings.default_unit,
                               tier_multiplier=multiplier):
            compiled_rule = compiled.compiled(firing.rule)
            assert compiled_rule is not None
            rule = compiled_rule.rule
            org_id, person_id = self._recipient(rule, context)
            entry = {"rule": rule.code, "name": rule.name, "reason": firing.reason, "inputs": firing.inputs}
            if firing.kind in ("award", "stepped"):
                if not rule.timing.immediate:
                    result["pending"].append({**entry, "unit": firing.unit, "amount": firing.amount,
                                              "until_event": rule.timing.until_event,
                                              "after_days": rule.timing.after_days})
                    continue
                grant = settle(firing, compiled_rule, at, org_id, person_id, counters)
                unit = firing.unit or settings.default_unit
                result["awards"].append({**entry, "unit": unit, "amount": grant.amount, "capped": grant.capped,
                                         "caps_hit": list(grant.caps_hit)})
                result["totals"][unit] = result["totals"].get(unit, 0) + grant.amount
            elif firing.kind == "tier_credit":
                result["tier_credits"].append({**entry, "amount": firing.amount})
            elif firing.kind == "benefit":
                result["benefits"].append({**entry, "benefit": firing.inputs.get("benefit"),
                                           "quantity": firing.amount})
        return result

    def standing(self, program_id: int, organization: dict[str, Any], participant: dict[str, Any] | None,
                 at: datetime) -> list[dict[str, Any]]:
        """What would qualify: for each rule this organization/person can earn from, the event
        requirements, what is left of each cap, and the next step of a volume ladder."""
        from dataclasses import asdict

        from allegiance.rules.explain import standing

        compiled = self.port.active(program_id)
        if compiled is None:
            return []
        org = dict(organization)
        org["tier"], _ = self.tiers.tier_of(program_id, int(org["id"]), organization=organization)
        rows = standing(compiled, org, participant, at, self.settings_of(program_id).default_unit,
                        lambda keys: self.port.read_counters(program_id, keys))
        out = []
        for row in rows:
            data = asdict(row)
            for cap, standing_cap in zip(data["caps"], row.caps, strict=True):
                cap["remaining_amount"] = standing_cap.remaining_amount
            out.append(data)
        return out

    # -- pending awards -----------------------------------------------------------------------
    def _release_matching(self, compiled: CompiledRuleSet, settings: ProgramSettings, context: EventContext,
                          subject: dict[str, Any], counters: Counters) -> list[int]:
        cached = (context.program_id, compiled.version, context.type)  # a version never changes
        keys = self._release_keys.get(cached)
        if keys is None:
            keys = self._release_keys[cached] = sorted({rule.timing.key for rule in compiled.rule_set.rules
                                                        if rule.timing.until_event == context.type})
        posted: list[int] = []
        for path in keys:
            value = read(subject, path)
            if value is MISSING or value is None:
                continue
            for row in self.port.pending_released_by(context.program_id, context.type, str(value)[:200]):
                posted.extend(self._release(row, settings, counters, f"{context.type} {value}"))
        return posted

    def release_due(self, limit: int = 500) -> int:
        """Release date-pending awards whose day has come (idempotent: each row changes once)."""
        released = 0
        for row in self.port.pending_due(self.clock.now(), limit):
            settings = self.settings_of(row["program_id"])
            self._release(row, settings, self.port.counters(row["program_id"]), "release date reached")
            released += 1
        return released

    def _release(self, row: dict[str, Any], settings: ProgramSettings, counters: Counters, why: str) -> list[int]:
        compiled = self.compiled(row["program_id"], row["rule_set_version"])
        compiled_rule = compiled.compiled(row["rule_code"])
        if compiled_rule is None:  # a rule disabled in its own version cannot have created a row
            return []
        rule = compiled_rule.rule
        inputs = dict(row["inputs"])
        kind = inputs.pop("_firing_kind", "award")
        multiplier = Decimal(inputs.pop("_multiplier", "1"))
        remaining = row["amount"]  # clawbacks of a pending award already lowered it
        now = self.clock.now()
        if remaining <= 0:
            self.port.update_award(row["id"], {"status": "cancelled", "released_at": now}, expected_status="pending")
            return []
        firing = Firing(rule.code, rule.name, kind, remaining, row["unit"], rule.recipient, inputs, row["reason"],
                        row["basis"], row["match_key"], multiplier=multiplier)
        grant = settle(firing, compiled_rule, row["occurred_at"], row["organization_id"], row["participant_id"],
                       counters)
        if not self.port.update_award(row["id"], {"status": "posted", "amount": grant.amount, "capped": grant.capped,
                                                  "caps_hit": list(grant.caps_hit), "released_at": now},
                                      expected_status="pending"):
            return []
        if grant.amount <= 0:
            return []
        firing = Firing(rule.code, rule.name, kind, grant.amount, row["unit"], rule.recipient,
                        {**inputs, "released_by": why}, row["reason"], row["basis"], row["match_key"])
        transaction_id = self._post(settings, rule, compiled.version, row["program_id"], row["organization_id"],
                                    row["participant_id"], row["unit"] or settings.default_unit, grant.amount,
                                    row["occurred_at"], row["event_id"], firing, grant.capped, grant.caps_hit,
                                    row["id"])
        self.port.update_award(row["id"], {"transaction_id": transaction_id})
        return [transaction_id]

    # -- clawback -----------------------------------------------------------------------------
    def _claw_back(self, rule: Rule, context: EventContext, firing: Firing) -> list[int]:
        """Take back the share of the original awards that the return represents, cumulatively:
        after returns totalling R of a basis B, Σ clawed = floor(awarded × R / B), never above
        what was awarded. What a holder has already spent cannot be taken; it is reported."""
        action = rule.action
        assert isinstance(action, Clawback)
        posted: list[int] = []
        for row in self.port.awards_by_key(context.program_id, action.rules, str(firing.key)[:200]):
            awarded = row["amount"] + (row["clawed"] if row["status"] == "pending" else 0)
            returned = row["returned"] + (firing.basis or 0)
            if firing.basis is None or not row["basis"]:
                target = awarded
            else:
                target = min(awarded, awarded * returned // row["basis"])
            delta = target - row["clawed"]
            if delta <= 0:
                self.port.update_award(row["id"], {"returned": returned})
                continue
            if row["status"] == "pending":
                self.port.update_award(row["id"], {"returned": returned, "clawed": target,
                                                   "amount": awarded - target})
                continue
            taken, transaction_id = self._take_back(context, row, delta, rule)
            self.port.update_award(row["id"], {"returned": returned, "clawed": row["clawed"] + taken})
            if transaction_id is not None:
                posted.append(transaction_id)
            if taken < delta:
                self.port.emit(context.program_id, "clawback.unrecovered", {
                    "rule": row["rule_code"], "award_id": row["id"], "wanted": delta, "taken": taken,
                    "organization_id": row["organization_id"]}, row["organization_id"])
        return posted

    def _take_back(self, context: EventContext, row: dict[str, Any], amount: int, rule: Rule) -> tuple[int, int | None]:
        """Debit the accounts the award credited, in proportion, up to what each still holds."""
        if row["transaction_id"] is None:
            return 0, None
        credited = [(account_id, value) for account_id, value, _u, _e, _l in
                    self.ledger.port.transaction_postings(row["transaction_id"]) if value > 0]
        total = sum(value for _, value in credited)
        locked = self.ledger.port.lock_accounts(sorted(a for a, _ in credited))
        debits = []
        remaining = amount
        for index, (account_id, value) in enumerate(credited):
            share = amount * value // total if index < len(credited) - 1 else remaining
            account = locked[account_id]
            share = min(share, account.balance or 0, remaining)
            if share > 0:
                debits.append(Debit(account, share))
                remaining -= share
        taken = amount - remaining
        if taken <= 0:
            return 0, None
        issued = self.ledger.system_account(context.program_id, AccountKind.ISSUED, row["unit"])
        posted = self.ledger.execute(
            context.program_id, TransactionKind.ADJUST, debits, [Credit(issued, taken)],
            memo=f"clawback by {rule.name}: {row['reason']}"[:500],
            metadata={"rule": rule.code, "clawback_of": row["transaction_id"], "award_id": row["id"],
                      "inputs": {k: v for k, v in (context.payload or {}).items() if isinstance(v, str | int)}},
            organization_id=row["organization_id"], event_id=context.event_id)
        return taken, posted.transaction_id
