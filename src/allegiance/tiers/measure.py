"""Reading and feeding the running totals a ladder qualifies on.

Totals live in storage as daily rows per subject (``o:42`` or ``p:7``); a ladder at organization
level with ``rollup`` sums its whole subtree (subsidiaries and sites via parent links).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from allegiance.tiers.model import Criterion, Ladder, Level, Measure, Window, WindowKind
from allegiance.tiers.policy import MeasureKey, day_start, key_of, read_amount, utc_day, window_days
from allegiance.tiers.ports import TiersPort

EVENT_MEASURES = (Measure.VALUE, Measure.VOLUME, Measure.COUNT)
LIFETIME = Window(kind=WindowKind.LIFETIME)


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
        ladder = stored.ladder
        if ladder.level is Level.PARTICIPANT and participant_id is None:
            return False
        subject = org_subject(organization_id) if ladder.level is Level.ORGANIZATION else \
            person_subject(participant_id or 0)
        done: set[str] = set()
        changed = False
        for criterion in ladder.criteria():
            signature = criterion.signature()
            if signature in done or event_type not in criterion.event_types:
                continue
            done.add(signature)
            if criterion.measure in EVENT_MEASURES:
                amount = 0
                if criterion.field is not None:
                    amount = read_amount(payload, criterion.field) or 0
                self.port.add_measure(program_id, stored.scope, subject, organization_id, signature,
                                      utc_day(occurred_at), amount, 1)
                changed = True
            elif criterion.measure is Measure.PARTICIPANTS and participant_id is not None:
                self.port.mark_participant(program_id, stored.scope, signature, participant_id, organization_id,
                                           occurred_at)
                changed = True
        return changed

    def rebuild(self, program_id: int, stored: StoredLadder) -> int:
        """Recompute a ladder's totals from the stored events (after it is created or changed)."""
        self.port.clear_measures(program_id, stored.scope)
        types = sorted({t for c in stored.ladder.criteria() for t in c.event_types})
        replayed = 0
        if types:
            for organization_id, participant_id, type_, occurred_at, payload in self.port.replay_events(program_id,
                                                                                                      types):
                self.record(program_id, stored, type_, occurred_at, payload, organization_id, participant_id)
                replayed += 1
        return replayed
