"""Backtest: replay stored events through a draft rule set and add up what it *would* have done.

The arithmetic is the live pipeline's (``evaluate`` → ``settle`` → pending → release → clawback,
in the same order, with the same rounding), but every effect is a number in this object instead of
a row: nothing is posted, no counter row is touched, no award is logged. That is what lets an
operator compare a draft against history before activating it, and what the test comparing a
simulation with a real activation + import relies on.

Counters start **from nothing** (``MemoryCounters``), not from the stored ``rule_counters``: the
stored ones were consumed by the *active* rules on these very events (seeding from them would count
the period twice) and a draft's cap codes may mean something else. The cost: a year or lifetime cap
partly used before ``start`` looks emptier than it was — the report says so.

Memory is bounded by what the program has, not by how many events are replayed: counters (one per
cap or ladder × subject × period that actually earned), totals per organization and person, and the
awards a clawback or a release may still need — at most ``key_limit`` match keys, the oldest
forgotten first (counted in ``evicted_keys``). Events themselves stream through in chunks.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from allegiance.ledger.policy import AwardSplit, SplitMode
from allegiance.programs.model import ProgramSettings
from allegiance.rules.actions import new_firing
from allegiance.rules.backtest_events import Evaluated, Evaluator
from allegiance.rules.engine import EventContext
from allegiance.rules.evaluate import CompiledRule, CompiledRuleSet, Firing
from allegiance.rules.model import Clawback, Recipient, Rounding
from allegiance.rules.settle import Grant, MemoryCounters, settle

KEY_LIMIT = 1_000_000  # match keys kept for clawbacks and releases (~200 bytes each)
TOP = 10

# (occurred_at, id, type, organization_id, participant_id, payload): one stored event as the port streams it
StoredEvent = tuple[datetime, int, str, int | None, int | None, dict[str, Any]]


def merged(streams: Iterable[Iterator[StoredEvent]]) -> Iterator[StoredEvent]:
    """One stream in (occurred_at, id) order from per-event-type streams that are each in that order
    (each read along the ``(program, type, occurred_at)`` index, so no query sorts the history)."""
    return heapq.merge(*streams, key=lambda event: (event[0], event[1]))


_NO_ORGANIZATION: tuple[None, Decimal] = (None, Decimal(1))


class _Award:
    """What a clawback or a release needs of one simulated award (the live ``rule_awards`` row)."""

    __slots__ = ("amount", "basis", "clawed", "kind", "multiplier", "occurred_at", "organization_id",
                 "participant_id", "returned", "rule", "status", "unit")

    def __init__(self, rule: CompiledRule, firing: Firing, amount: int, status: str, at: datetime, org_id: int,
                 person_id: int | None, unit: str) -> None:
        self.rule = rule
        self.kind = firing.kind
        self.multiplier = firing.multiplier
        self.basis = firing.basis
        self.amount = amount
        self.status = status
        self.occurred_at = at
        self.organization_id = org_id
        self.participant_id = person_id
        self.unit = unit
        self.returned = 0
        self.clawed = 0


@dataclass
class SimulationReport:
    """What a draft rule set would have done over ``start`` … ``end`` (amounts in minor units)."""

    program_id: int
    rule_set_version: int | None  # None: a document that was never saved
    start: datetime
    end: datetime
    events_read: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # unit code → kind (points, store_credit, ...)
    issued: dict[str, int] = field(default_factory=dict)
    clawed_back: dict[str, int] = field(default_factory=dict)
    capped: dict[str, int] = field(default_factory=dict)  # what caps cut off
    awards: int = 0  # postings that would have been made
    caps_hit: dict[str, int] = field(default_factory=dict)  # cap code → times it cut or refused an award
    pending: dict[str, dict[str, int]] = field(default_factory=dict)  # unit → {count, amount} still pending at end
    tier_credits: int = 0
    benefits: dict[str, int] = field(default_factory=dict)  # benefit code → quantity
    organizations_affected: int = 0
    participants_affected: int = 0
    top_organizations: dict[str, list[dict[str, int]]] = field(default_factory=dict)  # unit → best first
    top_participants: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # code → {fired: events, issued: {unit: n}}
    never_fired: list[str] = field(default_factory=list)
    tier_moves: list[dict[str, Any]] | None = None  # None: no tiers service to ask
    counters_seeded_from: str = "nothing"
    evicted_keys: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def liability(self) -> dict[str, int]:
        """Issued minus clawed back, per unit: what the program would owe."""
        return {unit: self.issued.get(unit, 0) - self.clawed_back.get(unit, 0)
                for unit in sorted(set(self.issued) | set(self.clawed_back))}

    def as_dict(self) -> dict[str, Any]:
        return {
            "program_id": self.program_id, "rule_set_version": self.rule_set_version,
            "from": self.start.isoformat(), "to": self.end.isoformat(), "events_read": self.events_read,
            "events_by_type": dict(sorted(self.events_by_type.items())), "units": self.units,
            "issued": dict(sorted(self.issued.items())), "clawed_back": dict(sorted(self.clawed_back.items())),
            "liability": self.liability, "capped": dict(sorted(self.capped.items())), "awards": self.awards,
            "caps_hit": dict(sorted(self.caps_hit.items())), "pending": dict(sorted(self.pending.items())),
            "tier_credits": self.tier_credits, "benefits": dict(sorted(self.benefits.items())),
            "organizations_affected": self.organizations_affected,
            "participants_affected": self.participants_affected,
            "top_organizations": self.top_organizations, "top_participants": self.top_participants,
            "rules": self.rules, "never_fired": self.never_fired, "tier_moves": self.tier_moves,
            "counters_seeded_from": self.counters_seeded_from, "evicted_keys": self.evicted_keys,
            "notes": self.notes,
        }


def _add(totals: dict[Any, int], key: Any, amount: int) -> None:
    totals[key] = totals.get(key, 0) + amount


class Simulation:
    """Feed it events in (occurred_at, id) order; ``report()`` adds up the effects."""

    def __init__(self, compiled: CompiledRuleSet, settings: ProgramSettings, report: SimulationReport, *,
                 key_limit: int = KEY_LIMIT) -> None:
        self.compiled = compiled
        self.settings = settings
        self.out = report
        # Counted in ``defaultdict``s (``d[k] += n`` stays in C: millions of additions in a long
        # backtest), handed over as plain dicts by ``report()``.
        report.events_by_type, report.issued, report.capped, report.caps_hit = (
            defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int))
        self.key_limit = key_limit
        self.counters = MemoryCounters()
        self.keyed: dict[str, list[_Award]] = {}  # match key → awards (insertion = id order)
        self.waiting: dict[tuple[str, str], list[_Award]] = {}  # (release event type, key) → pending awards
        self.evaluator = Evaluator(compiled, settings.default_unit)
        self.fired: dict[str, int] = defaultdict(int)
        self.rule_issued: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.pending_count: dict[str, int] = {}
        self.pending_amount: dict[str, int] = {}
        self.tier_credit_orgs: dict[int, int] = {}
        self.org_totals: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.person_totals: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.orgs: set[int] = set()
        self.people: set[int] = set()
        self.splits: dict[str, AwardSplit] = {}  # rule code -> its split (a model: built once, not per award)

    # -- one event ---------------------------------------------------------------------------
    def feed(self, context: EventContext, multiplier: Decimal = Decimal(1)) -> None:
        """One event, evaluated here (see ``Evaluator``)."""
        self.apply(self.evaluator(context, multiplier))

    def apply(self, event: Evaluated) -> None:
        """One evaluated event, in (occurred_at, id) order: its firings settled against the
        counters, then the pending awards it releases."""
        out = self.out
        out.events_read += 1
        out.events_by_type[event.type] += 1
        if event.organization_id is None:
            return
        for firing, match_key in event.firings:
            self._realise(event, firing, match_key)
        fired = self.fired
        for code in event.fired:
            fired[code] += 1
        for value in event.releases:
            for award in self.waiting.pop((event.type, value), []):
                if award.status == "pending":
                    self._release(award)

    def _realise(self, event: Evaluated, firing: Firing, match_key: str | None) -> None:
        compiled_rule = self.compiled.compiled(firing.rule)
        assert compiled_rule is not None and event.organization_id is not None
        rule = compiled_rule.rule
        if firing.kind == "clawback":
            self._claw_back(compiled_rule, firing, match_key)
            return
        org_id = event.organization_id
        person_id = None if rule.recipient is Recipient.ORGANIZATION else event.participant_id
        if firing.kind == "benefit":
            _add(self.out.benefits, str(firing.inputs.get("benefit")), firing.amount)
            self._affected(org_id, person_id)
            return
        if firing.kind == "tier_credit":
            self.out.tier_credits += firing.amount
            _add(self.tier_credit_orgs, org_id, firing.amount)
            return
        unit = firing.unit or self.settings.default_unit
        if not rule.timing.immediate:
            award = _Award(compiled_rule, firing, firing.amount, "pending", event.occurred_at, org_id, person_id,
                           unit)
            _add(self.pending_count, unit, 1)
            _add(self.pending_amount, unit, firing.amount)
            self._affected(org_id, person_id)
            if match_key is not None:
                self._keep(match_key, award)
                if rule.timing.until_event:
                    self.waiting.setdefault((rule.timing.until_event, match_key), []).append(award)
            return
        grant = settle(firing, compiled_rule, event.occurred_at, org_id, person_id, self.counters)
        self._granted(compiled_rule, grant, unit, org_id, person_id)
        if match_key is not None and grant.amount > 0:
            self._keep(match_key, _Award(compiled_rule, firing, grant.amount, "posted", event.occurred_at, org_id,
                                         person_id, unit))

    def _granted(self, compiled_rule: CompiledRule, grant: Grant, unit: str, org_id: int,
                 person_id: int | None) -> None:
        out = self.out
        out.awards += 1
        for code in grant.caps_hit:
            out.caps_hit[code] += 1
        if grant.capped:
            out.capped[unit] += grant.capped
        amount = grant.amount
        if amount <= 0:
            return
        out.issued[unit] += amount
        self.rule_issued[compiled_rule.rule.code][unit] += amount
        self._credit(compiled_rule, unit, amount, org_id, person_id)

    def _credit(self, compiled_rule: CompiledRule, unit: str, amount: int, org_id: int, person_id: int | None) -> None:
        """Per-holder totals for the top earners (negative amounts for clawbacks)."""
        self.org_totals[unit][org_id] += amount
        self.orgs.add(org_id)
        if person_id is None:
            return
        person_share = self._split(compiled_rule).split(amount)[1] if amount > 0 else \
            -self._split(compiled_rule).split(-amount)[1]
        if person_share:
            self.person_totals[unit][person_id] += person_share
            self.people.add(person_id)

    def _split(self, compiled_rule: CompiledRule) -> AwardSplit:
        rule = compiled_rule.rule
        found = self.splits.get(rule.code)
        if found is None:
            found = self.splits[rule.code] = AwardSplit(mode=SplitMode.PARTICIPANT) \
                if rule.recipient is Recipient.PARTICIPANT else rule.split or self.settings.award_split
        return found

    def _affected(self, org_id: int, person_id: int | None) -> None:
        self.orgs.add(org_id)
        if person_id is not None:
            self.people.add(person_id)

    def _keep(self, match_key: str, award: _Award) -> None:
        """Remember an award for later clawbacks and releases, forgetting the oldest key past the limit."""
        found = self.keyed.get(match_key)
        if found is None:
            if len(self.keyed) >= self.key_limit:
                oldest = next(iter(self.keyed))
                for old in self.keyed.pop(oldest):
                    if old.status == "pending" and old.rule.rule.timing.until_event:
                        self.waiting.pop((old.rule.rule.timing.until_event, oldest), None)
                self.out.evicted_keys += 1
            self.keyed[match_key] = [award]
        else:
            found.append(award)

    # -- pending awards ------------------------------------------------------------------------
    def _release(self, award: _Award) -> None:
        _add(self.pending_count, award.unit, -1)
        _add(self.pending_amount, award.unit, -award.amount)
        if award.amount <= 0:
            award.status = "cancelled"
            return
        rule = award.rule.rule
        firing = new_firing(rule.code, rule.name, award.kind, award.amount, award.unit, rule.recipient, {}, "",
                            award.basis, None, None, award.multiplier, Rounding.DOWN)
        grant = settle(firing, award.rule, award.occurred_at, award.organization_id, award.participant_id,
                       self.counters)
        award.status = "posted"
        award.amount = grant.amount
        self._granted(award.rule, grant, award.unit, award.organization_id, award.participant_id)

    # -- clawback -------------------------------------------------------------------------------
    def _claw_back(self, compiled_rule: CompiledRule, firing: Firing, match_key: str | None) -> None:
        """The live arithmetic (``RulesService._claw_back``), assuming the holders still hold what
        is taken back: a backtest cannot know what they would have spent in between."""
        action = compiled_rule.rule.action
        assert isinstance(action, Clawback)
        for award in self.keyed.get(match_key or "", []):
            if award.rule.rule.code not in action.rules or award.status not in ("posted", "pending"):
                continue
            awarded = award.amount + (award.clawed if award.status == "pending" else 0)
            returned = award.returned + (firing.basis or 0)
            if firing.basis is None or not award.basis:
                target = awarded
            else:
                target = min(awarded, awarded * returned // award.basis)
            delta = target - award.clawed
            award.returned = returned
            if delta <= 0:
                continue
            if award.status == "pending":
                _add(self.pending_amount, award.unit, (awarded - target) - award.amount)
                award.clawed, award.amount = target, awarded - target
                continue
            award.clawed += delta
            _add(self.out.clawed_back, award.unit, delta)
            self._credit(award.rule, award.unit, -delta, award.organization_id, award.participant_id)

    # -- the report ------------------------------------------------------------------------------
    def report(self) -> SimulationReport:
        out = self.out
        out.events_by_type, out.issued, out.capped, out.caps_hit = (
            dict(out.events_by_type), dict(out.issued), dict(out.capped), dict(out.caps_hit))
        out.units = {u.code: str(u.kind) for u in self.settings.units}
        out.pending = {unit: {"count": count, "amount": self.pending_amount.get(unit, 0)}
                       for unit, count in sorted(self.pending_count.items()) if count}
        out.organizations_affected = len(self.orgs)
        out.participants_affected = len(self.people)
        out.top_organizations = {unit: [{"organization_id": holder, "amount": amount} for holder, amount in
                                        heapq.nlargest(TOP, totals.items(), key=lambda item: (item[1], -item[0]))]
                                 for unit, totals in sorted(self.org_totals.items())}
        out.top_participants = {unit: [{"participant_id": holder, "amount": amount} for holder, amount in
                                       heapq.nlargest(TOP, totals.items(), key=lambda item: (item[1], -item[0]))]
                                for unit, totals in sorted(self.person_totals.items())}
        enabled = [r.code for r in self.compiled.rule_set.rules if r.enabled]
        out.rules = {code: {"fired": self.fired.get(code, 0), "issued": dict(self.rule_issued.get(code, {}))}
                     for code in enabled}
        out.never_fired = [code for code in enabled if code not in self.fired]
        out.notes = [
            "counters start from nothing at `from`: a cap already partly used before it looks emptier",
            "awards pending on a date are not released (they stay in `pending`), as if release-due never ran",
            "clawbacks are assumed to recover in full (what holders would have spent is unknown)",
            *(["match keys past the memory limit were forgotten: later returns/releases of them are missed"]
              if out.evicted_keys else []),
        ]
        return out

    def credits_by_organization(self) -> dict[int, int]:
        """Tier-qualifying credits per organization (what a tiers service needs for tier moves)."""
        return dict(self.tier_credit_orgs)



Loader = Callable[[Collection[int], Collection[int]], tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]]
TierOf = Callable[[int, dict[str, Any]], tuple[str | None, Decimal]]  # (organization id, its row)


class Subjects:
    """Organizations (with their tier) and people by id, loaded once per chunk of events for the ids
    not already known; at most ``limit`` of each kept (the cache is emptied when full)."""

    def __init__(self, load: Loader, tier_of: TierOf, limit: int = 100_000) -> None:
        self.load = load
        self.tier_of = tier_of
        self.limit = limit
        self.orgs: dict[int, tuple[dict[str, Any], Decimal]] = {}
        self.people: dict[int, dict[str, Any]] = {}

    def prepare(self, events: list[StoredEvent]) -> None:
        org_ids = {e[3] for e in events if e[3] is not None and e[3] not in self.orgs}
        person_ids = {e[4] for e in events if e[4] is not None and e[4] not in self.people}
        if not (org_ids or person_ids):
            return
        if len(self.orgs) + len(org_ids) > self.limit:
            self.orgs.clear()
            org_ids = {e[3] for e in events if e[3] is not None}
        if len(self.people) + len(person_ids) > self.limit:
            self.people.clear()
            person_ids = {e[4] for e in events if e[4] is not None}
        orgs, people = self.load(org_ids, person_ids)
        for org_id, row in orgs.items():
            tier, multiplier = self.tier_of(org_id, row)
            self.orgs[org_id] = ({**row, "tier": tier}, multiplier)
        self.people.update(people)

    def of(self, event: StoredEvent) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Decimal]:
        """The event's organization (with its tier), person and earn multiplier, as loaded."""
        org_id, person_id = event[3], event[4]
        org, multiplier = self.orgs.get(org_id, _NO_ORGANIZATION) if org_id is not None else _NO_ORGANIZATION
        return org, self.people.get(person_id) if person_id is not None else None, multiplier
