"""The stateless half of a backtest: each stored event evaluated against the draft, as plain values.

``Evaluator`` reads nothing the simulation changes (the draft, the event, its organization, person
and tier), so it may run ahead of ``Simulation.apply`` — in a second process for a long backtest
(``storage/backtest_feed.py``), the events carried as ``packed`` tuples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from allegiance.rules.actions import new_firing
from allegiance.rules.engine import EventContext
from allegiance.rules.evaluate import MISSING, CompiledRuleSet, Firing, evaluate, read
from allegiance.rules.fields import parts_of, read_parts
from allegiance.rules.model import Recipient, Rounding

_ONE = Decimal(1)
_PLAIN: dict[Recipient | Rounding, str] = {**{r: r.value for r in Recipient}, **{r: r.value for r in Rounding}}


class Draft(NamedTuple):
    """A backtest's rule set: compiled, its saved version (None: a document never saved), and the
    document itself (what a second process compiles again)."""

    compiled: CompiledRuleSet
    version: int | None
    document: Any

    @property
    def event_types(self) -> list[str]:
        """The event types a backtest of it reads: its triggers and its release events."""
        return sorted(set(self.compiled.by_trigger) | self.compiled.release_types)


class Evaluated(NamedTuple):
    """One event as the stateful half of a backtest (``Simulation.apply``) needs it: plain values,
    no payload and no subject, so that evaluating and settling can run in two processes."""

    type: str
    occurred_at: datetime
    organization_id: int | None  # None: the event names no organization, nothing is earned
    participant_id: int | None
    firings: list[tuple[Firing, str | None]]  # each with its match key (clawbacks, releases), if any
    fired: list[str]  # codes of the rules that fired
    releases: list[str]  # the match keys of pending awards this event releases
    stamp: str = ""  # occurred_at in ISO 8601, when the evaluator has already written it


def packed(event: Evaluated) -> tuple[Any, ...]:
    """The event in values ``marshal`` carries (strings, numbers, None, lists, tuples), its firings
    reduced to what settling reads — ~15x cheaper to load than a pickle of the objects."""
    return (event.type, event.stamp or event.occurred_at.isoformat(), event.organization_id, event.participant_id,
            [(f.rule, f.kind, f.amount, f.unit, _PLAIN[f.recipient], f.basis,
              None if f.multiplier == 1 else str(f.multiplier), _PLAIN[f.rounding],
              str(f.inputs.get("benefit")) if f.kind == "benefit" else None, key) for f, key in event.firings],
            event.fired, event.releases)


class Unpacker:
    """``packed`` undone: the event with firings that settle exactly as the originals (their
    display fields — name, reason, inputs other than a benefit's code — left empty)."""

    def __init__(self) -> None:
        self.multipliers: dict[str, Decimal] = {}
        self.recipients = {r.value: r for r in Recipient}
        self.roundings = {r.value: r for r in Rounding}

    def __call__(self, plain: tuple[Any, ...]) -> Evaluated:
        kind, at, organization_id, participant_id, firings, fired, releases = plain
        return Evaluated(kind, datetime.fromisoformat(at), organization_id, participant_id, [
            (new_firing(rule, "", firing_kind, amount, unit, self.recipients[recipient],
                        {} if benefit is None else {"benefit": benefit}, "", basis, None, None,
                        _ONE if multiplier is None else self._decimal(multiplier), self.roundings[rounding]), key)
            for rule, firing_kind, amount, unit, recipient, basis, multiplier, rounding, benefit, key in firings],
            fired, releases)

    def _decimal(self, text: str) -> Decimal:
        found = self.multipliers.get(text)
        if found is None:
            found = self.multipliers[text] = Decimal(text)
        return found


class Evaluator:
    """The stateless half of a backtest: an event's subject evaluated against the draft. It reads
    nothing the simulation changes, so it may run ahead of it (``storage.backtest_feed``)."""

    def __init__(self, compiled: CompiledRuleSet, default_unit: str) -> None:
        self.compiled = compiled
        self.default_unit = default_unit
        self.release_keys = {kind: [parts_of(key) for key in sorted({r.timing.key for r in compiled.rule_set.rules
                                                                     if r.enabled and r.timing.until_event == kind})]
                             for kind in compiled.release_types}

    def __call__(self, context: EventContext, multiplier: Decimal = Decimal(1)) -> Evaluated:
        """``context.organization`` carries its ``tier``, ``multiplier`` the tier's earn multiplier
        (as ``RulesService.subject`` builds them for the live pipeline)."""
        return self.stored(context.type, context.occurred_at, context.event_id, context.payload,
                           context.organization, context.participant, multiplier)

    def stored(self, event_type: str, occurred_at: datetime, event_id: int, payload: dict[str, Any],
               organization: dict[str, Any] | None, participant: dict[str, Any] | None,
               multiplier: Decimal = _ONE) -> Evaluated:
        """``__call__`` from the parts of an ``EventContext`` (a backtest replays a million events:
        building the frozen context for each cost more than a microsecond)."""
        if organization is None:  # as the live pipeline: no organization, nothing earned
            return Evaluated(event_type, occurred_at, None, None, [], [], [])
        stamp = occurred_at.isoformat()
        event = {"type": event_type, "occurred_at": stamp, "id": event_id}
        subject = {"payload": payload, "organization": organization, "participant": participant or {},
                   "event": event}
        fired: list[str] = []
        firings = [(firing, self._match_key(firing, subject))
                   for firing in evaluate(self.compiled, event_type, occurred_at, subject,
                                          default_unit=self.default_unit, tier_multiplier=multiplier, fired=fired)]
        releases = []
        for parts in self.release_keys.get(event_type, ()):
            value = read_parts(subject, parts)
            if value is not MISSING and value is not None:
                releases.append(str(value)[:200])
        person = int(participant["id"]) if participant else None
        return Evaluated(event_type, occurred_at, int(organization["id"]), person, firings, fired, releases, stamp)

    def _match_key(self, firing: Firing, subject: dict[str, Any]) -> str | None:
        """The key a clawback looks awards up by, or an award is kept under (the live
        ``rule_awards.match_key``): the firing's own, else a pending award's release key."""
        if firing.kind == "clawback":
            return str(firing.key)[:200]
        if firing.kind in ("benefit", "tier_credit"):
            return None
        key = firing.key
        if key is None:
            compiled_rule = self.compiled.compiled(firing.rule)
            if compiled_rule is not None and compiled_rule.rule.timing.until_event:
                value = read(subject, compiled_rule.rule.timing.key)
                key = None if value is MISSING else value
        return None if key is None else str(key)[:200]


# Where a backtest's evaluated events come from: (program id, draft, start, end) -> events in order
Feed = Callable[[int, Draft, datetime, datetime], Iterable[Evaluated]]
