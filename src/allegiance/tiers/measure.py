"""Reading and feeding the running totals a ladder qualifies on.

Totals live in storage as daily rows per subject (``o:42`` or ``p:7``); a ladder at organization
level with ``rollup`` sums its whole subtree (subsidiaries and sites via parent links).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from allegiance.tiers.model import Criterion, Ladder, Level, Measure, Window, WindowKind
from allegiance.tiers.policy import MeasureKey, day_start, key_of, read_amount, utc_day, window_days
from allegiance.tiers.ports import TiersPort

EVENT_MEASURES = (Measure.VALUE, Measure.VOLUME, Measure.COUNT)
LIFETIME = Window(kind=WindowKind.LIFETIME)
REBUILD_BATCH = 50_000  # daily totals and marks kept in memory before they are written


def org_subject(organization_id: int) -> str:
    return f"o:{organization_id}"


def person_subject(participant_id: int) -> str:
    return f"p:{participant_id}"


@dataclass(frozen=True)
class StoredLadder:
    id: int
    code: str
    version: int
    ladder: Ladder

    @property
    def scope(self) -> str:
        return f"ladder:{self.id}"


def window_of(ladder: Ladder, criterion: Criterion) -> Window:
    """A criterion's own window, else the ladder's; counting people looks at all time by default."""
    if criterion.window is not None:
        return criterion.window
    return LIFETIME if criterion.measure is Measure.PARTICIPANTS else ladder.window


class Measurer:
    def __init__(self, port: TiersPort) -> None:
        self.port = port

    def values(self, program_id: int, stored: StoredLadder, organization_id: int, participant_id: int | None,
               day: date) -> dict[MeasureKey, int]:
        """Every criterion's total for one subject over its window ending on ``day``."""
        ladder = stored.ladder
        if ladder.level is Level.ORGANIZATION:
            organizations = self.port.subtree(program_id, organization_id) if ladder.rollup else [organization_id]
            subjects = [org_subject(o) for o in organizations]
            person = None
        else:
            assert participant_id is not None
            organizations, subjects, person = [organization_id], [person_subject(participant_id)], participant_id
        out: dict[MeasureKey, int] = {}
        for criterion in ladder.criteria():
            first, last = window_days(window_of(ladder, criterion), day)
            signature = criterion.signature()
            if criterion.measure in (Measure.VALUE, Measure.VOLUME):
                out[key_of(criterion)] = self.port.sum_measure(program_id, stored.scope, signature, subjects,
                                                               first, last)[0]
            elif criterion.measure is Measure.COUNT:
                out[key_of(criterion)] = self.port.sum_measure(program_id, stored.scope, signature, subjects,
                                                               first, last)[1]
            elif criterion.measure is Measure.CREDITS:
                out[key_of(criterion)] = self.port.sum_credits(
                    program_id, organizations, person, day_start(first) if first else None,
                    day_start(last + timedelta(days=1)))
            else:
                marked = bool(criterion.event_types)
                out[key_of(criterion)] = self.port.count_participants(
                    program_id, organizations, criterion.roles, stored.scope if marked else None,
                    signature if marked else None, day_start(first) if first and marked else None)
        return out

    def record(self, program_id: int, stored: StoredLadder, event_type: str, occurred_at: datetime,
               payload: Mapping[str, Any], organization_id: int, participant_id: int | None) -> bool:
        """Add one event to the ladder's totals; True if anything it measures changed."""
        changed = False
        for part in contributions(stored.ladder, event_type, occurred_at, payload, organization_id, participant_id):
            if isinstance(part, DailyAmount):
                self.port.add_measure(program_id, stored.scope, part.subject, organization_id, part.measure,
                                      part.day, part.amount, 1)
            else:
                self.port.mark_participant(program_id, stored.scope, part.measure, part.participant_id,
                                           organization_id, occurred_at)
            changed = True
        return changed

    def rebuild(self, program_id: int, stored: StoredLadder, *, batch: int = REBUILD_BATCH) -> int:
        """Recompute a ladder's totals from the stored events (after it is created or changed).

        The events' contributions are added up in memory and written ``batch`` rows at a time, in
        one statement each: what ``record`` per event would leave (sums commute; a participant's
        mark keeps the first replayed event's time and the latest one), at ~6x the speed."""
        self.port.clear_measures(program_id, stored.scope)
        types = sorted({t for c in stored.ladder.criteria() for t in c.event_types})
        if not types:
            return 0
        totals: dict[tuple[str, str, date], list[int]] = {}  # (subject, measure, day) -> [organization, amount, n]
        marks: dict[tuple[str, int], list[Any]] = {}  # (measure, participant) -> [organization, first, last]
        replayed = 0
        for organization_id, participant_id, type_, occurred_at, payload in self.port.replay_events(program_id,
                                                                                                  types):
            for part in contributions(stored.ladder, type_, occurred_at, payload, organization_id, participant_id):
                if isinstance(part, DailyAmount):
                    total = totals.setdefault((part.subject, part.measure, part.day), [organization_id, 0, 0])
                    total[1] += part.amount
                    total[2] += 1
                else:
                    mark = marks.setdefault((part.measure, part.participant_id), [organization_id, occurred_at,
                                                                                  occurred_at])
                    mark[2] = max(mark[2], occurred_at)
            replayed += 1
            if len(totals) + len(marks) >= batch:
                self._write(program_id, stored, totals, marks)
        self._write(program_id, stored, totals, marks)
        return replayed

    def _write(self, program_id: int, stored: StoredLadder, totals: dict[tuple[str, str, date], list[int]],
               marks: dict[tuple[str, int], list[Any]]) -> None:
        self.port.add_measures([
            {"program_id": program_id, "scope": stored.scope, "measure": measure, "subject": subject, "day": day,
             "organization_id": organization_id, "amount": amount, "count": count}
            for (subject, measure, day), (organization_id, amount, count) in sorted(totals.items())])
        self.port.mark_participants([
            {"program_id": program_id, "scope": stored.scope, "measure": measure, "participant_id": participant_id,
             "organization_id": organization_id, "first_at": first, "last_at": last}
            for (measure, participant_id), (organization_id, first, last) in sorted(marks.items())])
        totals.clear()
        marks.clear()


class DailyAmount(NamedTuple):
    subject: str
    measure: str
    day: date
    amount: int


class ParticipantMark(NamedTuple):
    measure: str
    participant_id: int


def contributions(ladder: Ladder, event_type: str, occurred_at: datetime, payload: Mapping[str, Any],
                  organization_id: int, participant_id: int | None) -> Iterator[DailyAmount | ParticipantMark]:
    """What one event adds to a ladder's totals: an amount on its subject's UTC day per measure of
    its type, and a mark for a person counted by a participants criterion."""
    if ladder.level is Level.PARTICIPANT and participant_id is None:
        return
    subject = org_subject(organization_id) if ladder.level is Level.ORGANIZATION else \
        person_subject(participant_id or 0)
    done: set[str] = set()
    for criterion in ladder.criteria():
        signature = criterion.signature()
        if signature in done or event_type not in criterion.event_types:
            continue
        done.add(signature)
        if criterion.measure in EVENT_MEASURES:
            amount = 0
            if criterion.field is not None:
                amount = read_amount(payload, criterion.field) or 0
            yield DailyAmount(subject, signature, utc_day(occurred_at), amount)
        elif criterion.measure is Measure.PARTICIPANTS and participant_id is not None:
            yield ParticipantMark(signature, participant_id)
