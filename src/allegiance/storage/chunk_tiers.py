"""The tiers port of one bulk-import chunk: what a ladder or a discount card qualifies on, kept in
memory, so programs with tier ladders import in bulk instead of event by event.

Event by event, every event of a ladder program cost about twelve statements: its daily total
upserted, then for the organization and each group above it the subtree read again, every
criterion's window summed over a year of daily rows, the status read (measured: 228 events/s on
SQLite, 87 on PostgreSQL, against 34,000 and 16,000 without a ladder). Here, within a chunk:

- the organization tree (ancestors, subtrees), discount cards and tier statuses are read once;
- a window total — one criterion over some subjects and days — is read once: the database plus
  this chunk's daily totals not yet written; from then on every daily amount or tier credit the
  chunk adds is also added to each kept total whose subjects and days include it, so the next
  read is a dictionary lookup;
- daily totals and tier credits are written by the chunk's ``flush`` (one upsert per subject,
  measure and day; credits with the rest of the chunk's rows).

Why the tiers come out as event by event: a kept total is the same sum the database would give
after each event (sums commute, and it starts from the database plus what is pending); a status
is read once and re-read whenever this port writes it; a change of status (rare) is written at
once, its status row locked first as before, its outbox row queued in order with the chunk's
others. What a concurrent writer commits during the chunk is not seen until the next chunk —
as event by event, where it is not seen until that writer commits; an upgrade is still decided
under the status row's lock. Participant counts (``count_participants``) read the database each
time: their marks are written at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from allegiance.kernel.clock import Clock
from allegiance.storage.chunk_writes import ChunkWrites
from allegiance.storage.tiers_repo import SqlTiers

MeasureKey = tuple[int, str, str, str]  # program, scope, measure, subject: one series of daily totals
WindowTotal = tuple[int, str, str, tuple[str, ...], date | None, date]  # program, scope, measure, subjects, days
CreditTotal = tuple[int, tuple[int, ...], int | None, datetime | None, datetime]  # program, orgs, person, times


def _within(day: date, first: date | None, last: date) -> bool:
    return (first is None or day >= first) and day <= last


class BufferedTiers(SqlTiers):
    """``SqlTiers`` for one chunk; see the module doc."""

    def __init__(self, conn: Connection, clock: Clock, writes: ChunkWrites) -> None:
        super().__init__(conn, clock)
        self.writes = writes
        self.status_writes = 0  # how many times a status row was written (an organization's tier may have moved)
        self._ancestors: dict[tuple[int, int], list[int]] = {}
        self._subtrees: dict[tuple[int, int], list[int]] = {}
        self._cards: dict[tuple[int, int], dict[str, Any] | None] = {}
        self._statuses: dict[tuple[int, str], dict[str, Any] | None] = {}
        self._totals: dict[WindowTotal, list[int]] = {}
        self._totals_of: dict[MeasureKey, list[WindowTotal]] = defaultdict(list)
        self._credits: dict[CreditTotal, list[int]] = {}
        self._credits_of: dict[tuple[int, int], list[CreditTotal]] = defaultdict(list)
        self._pending_credits: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
        self._pending_since = writes.flushes  # ``_pending_credits`` holds the credits added since this flush

    # -- what does not change within a chunk ------------------------------------------------------
    def ancestors(self, program_id: int, organization_id: int) -> list[int]:
        key = (program_id, organization_id)
        if key not in self._ancestors:
            self._ancestors[key] = super().ancestors(program_id, organization_id)
        return self._ancestors[key]

    def subtree(self, program_id: int, organization_id: int) -> list[int]:
        key = (program_id, organization_id)
        if key not in self._subtrees:
            self._subtrees[key] = super().subtree(program_id, organization_id)
        return self._subtrees[key]

    def card(self, program_id: int, organization_id: int) -> dict[str, Any] | None:
        key = (program_id, organization_id)
        if key not in self._cards:
            self._cards[key] = super().card(program_id, organization_id)
        return self._cards[key]

    # -- statuses: read once, read again after this port writes them ------------------------------------
    def status(self, ladder_id: int, subject: str, *, lock: bool = False) -> dict[str, Any] | None:
        key = (ladder_id, subject)
        if lock or key not in self._statuses:
            self._statuses[key] = super().status(ladder_id, subject, lock=lock)
        return self._statuses[key]

    def insert_status(self, values: dict[str, Any]) -> None:
        super().insert_status(values)
        self._statuses.pop((values["ladder_id"], values["subject"]), None)
        self.status_writes += 1

    def update_status(self, status_id: int, values: dict[str, Any]) -> None:
        super().update_status(status_id, values)
        for key, row in list(self._statuses.items()):
            if row is not None and row["id"] == status_id:
                del self._statuses[key]
        self.status_writes += 1

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None:
        self.writes.emit(program_id, topic, payload, organization_id)

    # -- daily totals -----------------------------------------------------------------------------------
    def add_measure(self, program_id: int, scope: str, subject: str, organization_id: int, measure: str,
                    day: date, amount: int, count: int) -> None:
        series: MeasureKey = (program_id, scope, measure, subject)
        pending = self.writes.tier_measures.setdefault(series, (organization_id, {}))[1]
        entry = pending.setdefault(day, [0, 0])
        entry[0] += amount
        entry[1] += count
        for key in self._totals_of.get(series, ()):
            if _within(day, key[4], key[5]):
                total = self._totals[key]
                total[0] += amount
                total[1] += count

    def sum_measure(self, program_id: int, scope: str, measure: str, subjects: Sequence[str],
                    first: date | None, last: date) -> tuple[int, int]:
        key: WindowTotal = (program_id, scope, measure, tuple(dict.fromkeys(subjects)), first, last)
        total = self._totals.get(key)
        if total is None:
            amount, count = super().sum_measure(program_id, scope, measure, key[3], first, last)
            for subject in key[3]:
                series: MeasureKey = (program_id, scope, measure, subject)
                for day, (more, times) in self.writes.tier_measures.get(series, (0, {}))[1].items():
                    if _within(day, first, last):
                        amount, count = amount + more, count + times
                self._totals_of[series].append(key)
            total = self._totals[key] = [amount, count]
        return total[0], total[1]

    # -- tier-qualifying credits -------------------------------------------------------------------------
    def _unwritten_credits(self) -> dict[tuple[int, int], list[dict[str, Any]]]:
        """This chunk's credits not yet written, by organization (a flush wrote the earlier ones)."""
        if self._pending_since != self.writes.flushes:
            self._pending_credits.clear()
            self._pending_since = self.writes.flushes
        return self._pending_credits

    def add_credit(self, values: dict[str, Any]) -> None:
        row = {**values, "created_at": self.clock.now()}
        self.writes.tier_credits.append(row)
        organization = (row["program_id"], row["organization_id"])
        self._unwritten_credits()[organization].append(row)
        for key in self._credits_of.get(organization, ()):
            _, _, person, start, end = key
            if _credit_counts(row, person, start, end):
                self._credits[key][0] += row["amount"]

    def sum_credits(self, program_id: int, organization_ids: Sequence[int], participant_id: int | None,
                    start: datetime | None, end: datetime) -> int:
        key: CreditTotal = (program_id, tuple(dict.fromkeys(organization_ids)), participant_id, start, end)
        total = self._credits.get(key)
        if total is None:
            amount = super().sum_credits(program_id, key[1], participant_id, start, end)
            unwritten = self._unwritten_credits()
            for organization_id in key[1]:
                amount += sum(row["amount"] for row in unwritten.get((program_id, organization_id), ())
                              if _credit_counts(row, participant_id, start, end))
                self._credits_of[(program_id, organization_id)].append(key)
            total = self._credits[key] = [amount]
        return total[0]


def _credit_counts(row: dict[str, Any], participant_id: int | None, start: datetime | None, end: datetime) -> bool:
    """Whether a credit row is in a ``sum_credits`` total (as its SQL filters it)."""
    return ((participant_id is None or row["participant_id"] == participant_id)
            and (start is None or row["occurred_at"] >= start) and row["occurred_at"] < end)
