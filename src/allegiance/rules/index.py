"""Which rules of one trigger can fire for an event, found with a few dictionary look-ups instead of
testing every rule (a discrimination index, as production rule engines build; issue 4).

Two facts about an event decide most of a large rule set before any condition is tested:

- **Equality conditions.** Conditions are and-ed, so a rule with ``organization.country eq DE``
  cannot fire for any other country. Such a rule is filed under its field and value; an event
  reads each indexed field once and visits only the rules filed under the value it has, plus the
  rules without an indexable equality. Twelve country rules cost one look-up, not twelve tests,
  and the index has *decided* that condition, so the evaluator does not test it again.
- **Validity windows.** The ``valid_from``/``valid_to`` instants of all rules cut time into
  *epochs* inside which the set of valid rules does not change; one ``bisect`` finds the
  event's epoch. Twenty-four monthly promotions cost one binary search, not twenty-four tests.

The candidates — in priority order, windows already applied — depend only on the epoch and on
which indexed values the event has, so they are remembered per combination (a bounded cache,
cleared when full). A value that no rule is filed under is remembered as "none", which keeps the
cache small even for fields with many values (order ids, SKUs).

This module knows nothing about actions: it files opaque items; ``evaluate.py`` decides what an
item is.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from allegiance.rules.fields import Subject, read_parts
from allegiance.rules.model import Condition, Op

T = TypeVar("T")
Equality = tuple[tuple[str, ...], Any]  # (path split at its dots, value)
CACHE_LIMIT = 4096  # remembered candidate lists per trigger; a few hundred bytes each
_NONE = object()  # the cache key's stand-in for "no rule is filed under this event's value"


def equality_position(conditions: Sequence[Condition]) -> int | None:
    """Where the first ``eq`` condition is that a dictionary look-up decides exactly like ``==``:
    not on ``participant.role`` (a person may hold several roles and matches any), and with a
    hashable value that equals itself (a NaN never equals anything, but a look-up finds it by
    identity)."""
    for position, condition in enumerate(conditions):
        if condition.op is not Op.EQ or condition.field == "participant.role":
            continue
        value = condition.value
        try:
            hash(value)
        except TypeError:
            continue
        if value != value:
            continue
        return position
    return None


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One rule as the index sees it: what to hand back, the equality that files it, its window."""

    item: T
    equality: Equality | None
    valid_from: datetime | None
    valid_to: datetime | None


class TriggerIndex(Generic[T]):
    """The candidate rules of one trigger for an event (see the module docstring)."""

    def __init__(self, entries: Sequence[Entry[T]]) -> None:
        self._items = tuple(entry.item for entry in entries)
        always: list[int] = []
        by_path: dict[tuple[str, ...], dict[Any, list[int]]] = {}
        for position, entry in enumerate(entries):
            if entry.equality is None:
                always.append(position)
            else:
                parts, value = entry.equality
                by_path.setdefault(parts, {}).setdefault(value, []).append(position)
        self._always = tuple(always)
        self._paths = tuple((parts, {value: tuple(found) for value, found in table.items()})
                            for parts, table in by_path.items())
        self._boundaries = sorted({moment for entry in entries for moment in (entry.valid_from, entry.valid_to)
                                   if moment is not None})
        rank = {moment: position for position, moment in enumerate(self._boundaries)}
        # a rule is valid in epoch e (= how many boundaries are <= the event's time) when its
        # valid_from is among those e boundaries and its valid_to is not
        self._windows = tuple((-1 if entry.valid_from is None else rank[entry.valid_from],
                               len(self._boundaries) if entry.valid_to is None else rank[entry.valid_to])
                              for entry in entries)
        self._entries = tuple(entries)
        self._everything = self._items if not self._boundaries else None
        self._cache: dict[tuple[Any, ...], tuple[T, ...]] = {}

    def candidates(self, occurred_at: datetime, subject: Subject) -> tuple[T, ...]:
        """The rules that may fire, in the order given (priority order), windows applied; a rule
        filed under an equality is only returned when the event has that value."""
        if not self._paths and self._everything is not None:
            return self._everything
        try:
            epoch = bisect_right(self._boundaries, occurred_at) if self._boundaries else 0
        except TypeError:  # a naive time: compared rule by rule, failing as the rule would
            return self._collect(self._hits(subject), None, occurred_at)
        key: list[Any] = [epoch]
        for parts, table in self._paths:
            value = read_parts(subject, parts)
            try:
                key.append(value if value in table else _NONE)
            except TypeError:  # an unhashable value (a list, an object) equals no scalar
                key.append(_NONE)
        cache_key = tuple(key)
        found = self._cache.get(cache_key)
        if found is None:
            found = self._collect(self._hits(subject), epoch, occurred_at)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[cache_key] = found
        return found

    def _hits(self, subject: Subject) -> list[tuple[int, ...]]:
        hits = []
        for parts, table in self._paths:
            try:
                hit = table.get(read_parts(subject, parts))
            except TypeError:
                hit = None
            if hit:
                hits.append(hit)
        return hits

    def _collect(self, hits: list[tuple[int, ...]], epoch: int | None, occurred_at: datetime) -> tuple[T, ...]:
        positions = list(self._always)
        for hit in hits:
            positions.extend(hit)
        positions.sort()
        out = []
        for position in positions:
            if epoch is not None:
                since, until = self._windows[position]
                if not since < epoch <= until:
                    continue
            else:
                entry = self._entries[position]
                if ((entry.valid_from and occurred_at < entry.valid_from)
                        or (entry.valid_to and occurred_at >= entry.valid_to)):
                    continue
            out.append(self._items[position])
        return tuple(out)
