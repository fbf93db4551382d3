"""What a bulk import did, chunk by chunk: outcomes are tallied per chunk and reach the summary
only once that chunk's transaction committed, so the summary never counts what a crash undid."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from allegiance.bootstrap import Allegiance, UnitOfWork
from allegiance.storage.outbox import emit

CONFLICT_REASON = "was already recorded with other content"
IMPORTED_TOPIC = "events.imported"
KEEP_REJECTS = 100


class Reject(NamedTuple):
    line: int
    field: str
    reason: str
    source_id: str = ""


@dataclass
class ImportSummary:
    """What an import did. ``rejected`` lists every reject, unless an ``on_reject`` callback took
    them (then only the first ``KEEP_REJECTS``); ``rejected_count`` always counts all of them.
    Conflicts (same source id, other content) are rejects too, and also counted in ``conflicts``."""

    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: list[Reject] = field(default_factory=list)
    rejected_count: int = 0
    chunks: int = 0

    @property
    def rows(self) -> int:
        return self.accepted + self.duplicates + self.rejected_count


class Tally:
    """One chunk's outcomes; they reach the summary only once its transaction committed."""

    def __init__(self, rejects: Iterable[tuple[int, str, str, str]] = ()) -> None:
        self.accepted = 0
        self.duplicates = 0
        self.conflicts = 0
        self.rejects = [Reject(*reject) for reject in rejects]
        self.first_id = 0
        self.last_id = 0

    def stored(self, count: int, first_id: int, last_id: int) -> None:
        self.accepted += count
        if count:
            self.first_id = min(self.first_id or first_id, first_id)
            self.last_id = max(self.last_id, last_id)

    def reject(self, line: int, field_name: str, reason: str, source_id: str = "") -> None:
        self.rejects.append(Reject(line, field_name, reason, source_id))

    def same_or_conflict(self, line: int, source_id: str, fingerprint: str, stored: str) -> None:
        if stored == fingerprint:
            self.duplicates += 1
        else:
            self.conflicts += 1
            self.reject(line, "source_id", CONFLICT_REASON, source_id)


Progress = Callable[[ImportSummary], None] | None
OnReject = Callable[[Reject], None] | None


def emit_imported(uow: UnitOfWork, app: Allegiance, program_id: int, tally: Tally) -> None:
    """The chunk's one outbox row, in its transaction: which events it stored."""
    if tally.accepted:
        emit(uow.conn, app.clock, program_id, IMPORTED_TOPIC,
             {"first_event_id": tally.first_id, "last_event_id": tally.last_id, "count": tally.accepted}, None)


def add(summary: ImportSummary, tally: Tally, on_reject: OnReject, on_progress: Progress) -> None:
    """Count a committed chunk in the summary; rejects go to ``on_reject`` in line order."""
    summary.chunks += 1
    summary.accepted += tally.accepted
    summary.duplicates += tally.duplicates
    summary.conflicts += tally.conflicts
    summary.rejected_count += len(tally.rejects)
    tally.rejects.sort()
    if on_reject is None:
        summary.rejected.extend(tally.rejects)
    else:
        for reject in tally.rejects:
            on_reject(reject)
        summary.rejected.extend(tally.rejects[:max(0, KEEP_REJECTS - len(summary.rejected))])
    if on_progress is not None:
        on_progress(summary)
