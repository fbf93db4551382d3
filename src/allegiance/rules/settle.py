"""Settling a firing against the program's counters: stepped volume ladders and caps.

The counters live behind a port: the database locks their rows for the live pipeline (so two
concurrent events can never both take the last of a cap — the row lock serialises them, no
count-then-insert race), and a backtest uses a dict. The arithmetic here is the same for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from allegiance.rules.evaluate import CompiledRule, Firing, rounded, stepped_amount
from allegiance.rules.model import CapScope, Period, Stepped


class CounterKey(NamedTuple):
    """A counter row's identity. A named tuple, not a dataclass: a backtest builds and hashes
    about two of these per award, and tuple hashing and ordering run in C."""

    name: str  # "cap:<code>" or "steps:<rule>"
    subject: str  # "p:<participant>", "o:<organization>" or "all"
    period: str  # "2026-05", "2026-W20", "2026-Q2", "2026", "all"...


class Counters(Protocol):
    def lock(self, keys: Sequence[CounterKey]) -> dict[CounterKey, tuple[int, int]]:
        """(amount, count) used so far for each key, rows locked until the transaction ends."""

    def add(self, key: CounterKey, amount: int, count: int) -> None: ...


_NOTHING = (0, 0)
_new_tuple = tuple.__new__  # a named tuple without its generated ``__new__`` (a Python frame per key)


class MemoryCounters:
    """The in-memory counters of a backtest (and of property tests)."""

    def __init__(self) -> None:
        self.values: dict[CounterKey, tuple[int, int]] = {}

    def lock(self, keys: Sequence[CounterKey]) -> dict[CounterKey, tuple[int, int]]:
        values = self.values
        return {key: values.get(key, _NOTHING) for key in keys}

    def add(self, key: CounterKey, amount: int, count: int) -> None:
        used, times = self.values.get(key, _NOTHING)
        self.values[key] = (used + amount, times + count)


def period_key(period: Period | str, at: datetime) -> str:
    """The bucket of ``at`` (UTC calendar) for a cap or ladder period (formatted by hand: it is
    computed for every cap of every award, and ``strftime`` costs several times more)."""
    return _bucket(period if isinstance(period, Period) else Period(period), at)


def _bucket(period: Period, at: datetime) -> str:
    if period is Period.MONTH:
        return f"{at.year}-{at.month:02d}"
    if period is Period.YEAR:
        return str(at.year)
    if period is Period.DAY:
        return f"{at.year}-{at.month:02d}-{at.day:02d}"
    if period is Period.WEEK:
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.QUARTER:
        return f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    return "all"


def subject_of(scope: CapScope, organization_id: int, participant_id: int | None) -> str:
    """A participant cap falls back to the organization when the event names no person."""
    if scope is CapScope.RULE:
        return "all"
    if scope is CapScope.PARTICIPANT and participant_id is not None:
        return f"p:{participant_id}"
    return f"o:{organization_id}"


class Grant(NamedTuple):
    """A settled firing (a named tuple: one is made per award, see ``CounterKey``)."""

    firing: Firing
    amount: int  # what may be awarded now
    capped: int  # what the caps cut off
    caps_hit: tuple[str, ...]
    quantity_before: int | None = None  # stepped: the period's cumulative quantity before this event


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
    caps = rule.caps_for(firing.unit)
    if not caps:
        return Grant(firing, amount, 0, (), before)
    # ``subject_of`` and ``CounterKey(...)`` written out: this runs for every cap of every award (a
    # backtest of 1,000,000 events settles 2.5 million), and each call is a Python frame.
    person = f"p:{participant_id}" if participant_id is not None else None
    company = f"o:{organization_id}"
    keys = [_new_tuple(CounterKey, (name, "all" if cap.scope is CapScope.RULE else
                                  person if cap.scope is CapScope.PARTICIPANT and person is not None else company,
                                  _bucket(cap.period, at)))
            for cap, name in caps]
    used = counters.lock(sorted(keys) if len(keys) > 1 else keys)  # locked in one order: no deadlock
    allowed = amount
    hit = []
    for (cap, _), key in zip(caps, keys, strict=True):
        spent, times = used[key]
        room = allowed
        if cap.max_count is not None and times >= cap.max_count:
            room = 0
        if cap.max_amount is not None:
            room = min(room, max(cap.max_amount - spent, 0))
        if room < allowed:
            hit.append(cap.code)
            allowed = room
    if allowed > 0:
        for key in keys:
            counters.add(key, allowed, 1)
    return _new_tuple(Grant, (firing, allowed, amount - allowed, tuple(hit), before))
