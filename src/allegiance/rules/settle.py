"""Settling a firing against the program's counters: stepped volume ladders and caps.

The counters live behind a port: the database locks their rows for the live pipeline (so two
concurrent events can never both take the last of a cap — the row lock serialises them, no
count-then-insert race), and a backtest uses a dict. The arithmetic here is the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from allegiance.rules.evaluate import CompiledRule, Firing, rounded, stepped_amount
from allegiance.rules.model import Cap, CapScope, Period, Stepped


@dataclass(frozen=True, order=True)
class CounterKey:
    name: str  # "cap:<code>" or "steps:<rule>"
    subject: str  # "p:<participant>", "o:<organization>" or "all"
    period: str  # "2026-05", "2026-W20", "2026-Q2", "2026", "all"...


class Counters(Protocol):
    def lock(self, keys: Sequence[CounterKey]) -> dict[CounterKey, tuple[int, int]]:
        """(amount, count) used so far for each key, rows locked until the transaction ends."""

    def add(self, key: CounterKey, amount: int, count: int) -> None: ...


class MemoryCounters:
    """The in-memory counters of a backtest (and of property tests)."""

    def __init__(self) -> None:
        self.values: dict[CounterKey, tuple[int, int]] = {}

    def lock(self, keys: Sequence[CounterKey]) -> dict[CounterKey, tuple[int, int]]:
        return {key: self.values.get(key, (0, 0)) for key in keys}

    def add(self, key: CounterKey, amount: int, count: int) -> None:
        used, times = self.values.get(key, (0, 0))
        self.values[key] = (used + amount, times + count)


def period_key(period: Period | str, at: datetime) -> str:
    """The bucket of ``at`` (UTC calendar) for a cap or ladder period."""
    period = Period(period)
    if period is Period.DAY:
        return at.strftime("%Y-%m-%d")
    if period is Period.WEEK:
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.MONTH:
        return at.strftime("%Y-%m")
    if period is Period.QUARTER:
        return f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    if period is Period.YEAR:
        return str(at.year)
    return "all"


def subject_of(scope: CapScope, organization_id: int, participant_id: int | None) -> str:
    """A participant cap falls back to the organization when the event names no person."""
    if scope is CapScope.RULE:
        return "all"
    if scope is CapScope.PARTICIPANT and participant_id is not None:
        return f"p:{participant_id}"
    return f"o:{organization_id}"


@dataclass(frozen=True)
class Grant:
    firing: Firing
    amount: int  # what may be awarded now
    capped: int  # what the caps cut off
    caps_hit: tuple[str, ...]
    quantity_before: int | None = None  # stepped: the period's cumulative quantity before this event


def _cap_applies(cap: Cap, unit: str | None) -> bool:
    return cap.unit is None or cap.unit == unit


def settle(firing: Firing, rule: CompiledRule, at: datetime, organization_id: int, participant_id: int | None,
           counters: Counters) -> Grant:
    """Turn a firing into the amount it may award now, consuming ladder and cap counters."""
    amount = firing.amount
    before = None
    if firing.kind == "stepped":
        action = rule.rule.action
        assert isinstance(action, Stepped)
        key = CounterKey(f"steps:{rule.rule.code}", f"o:{organization_id}", period_key(action.period, at))
        before = counters.lock([key])[key][0]
        steps = [(s.from_quantity, s.amount) for s in action.steps]
        amount = rounded(Decimal(stepped_amount(steps, before, firing.amount)) * firing.multiplier, firing.rounding)
        counters.add(key, firing.amount, 1)
    if firing.kind not in ("award", "stepped") or amount <= 0:
        return Grant(firing, max(amount, 0), 0, (), before)
    caps = [c for c in rule.caps if _cap_applies(c, firing.unit)]
    if not caps:
        return Grant(firing, amount, 0, (), before)
    keys = {cap.code: CounterKey(f"cap:{cap.code}", subject_of(cap.scope, organization_id, participant_id),
                                 period_key(cap.period, at)) for cap in caps}
    used = counters.lock(sorted(keys.values()))
    allowed = amount
    hit = []
    for cap in caps:
        spent, times = used[keys[cap.code]]
        room = allowed
        if cap.max_count is not None and times >= cap.max_count:
            room = 0
        if cap.max_amount is not None:
            room = min(room, max(cap.max_amount - spent, 0))
        if room < allowed:
            hit.append(cap.code)
            allowed = room
    if allowed > 0:
        for key in keys.values():
            counters.add(key, allowed, 1)
    return Grant(firing, allowed, amount - allowed, tuple(hit), before)
