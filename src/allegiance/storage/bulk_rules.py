"""Bulk import for programs with rules: every row through ``EventsService.record_one``, so the
rules → postings pipeline runs in the chunk's transaction. Slower (several queries per event), and
in this process: rules need the full event, and they, not parsing, are the cost here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from sqlalchemy.exc import IntegrityError

from allegiance.bootstrap import Allegiance
from allegiance.events.model import Outcome
from allegiance.events.rows import RowError, parse_row
from allegiance.events.service import EventConflict
from allegiance.kernel.errors import AllegianceError
from allegiance.storage.bulk_summary import (
    CONFLICT_REASON,
    ImportSummary,
    OnReject,
    Progress,
    Tally,
    add,
    emit_imported,
)


def import_through_rules(app: Allegiance, program_id: int, rows: Iterable[tuple[int, Mapping[str, Any] | RowError]],
                          chunk_size: int, on_progress: Progress, on_reject: OnReject) -> ImportSummary:
    """The slower path for programs with rules: the full pipeline per event, a savepoint each, so
    a bad row is rejected without losing the rest of the chunk."""
    summary = ImportSummary()
    iterator = iter(rows)
    while batch := list(islice(iterator, chunk_size)):
        tally = Tally()
        with app.write() as uow:
            for line, raw in batch:
                event = raw if isinstance(raw, RowError) else parse_row(raw)
                if isinstance(event, RowError):
                    source_id = raw.get("source_id") if isinstance(raw, Mapping) else None
                    tally.reject(line, event.field, event.reason, source_id if isinstance(source_id, str) else "")
                    continue
                for attempt in (1, 2):
                    try:
                        with uow.conn.begin_nested():
                            recorded = uow.events.record_one(program_id, event)
                    except EventConflict:
                        tally.conflicts += 1
                        tally.reject(line, "source_id", CONFLICT_REASON, event.source_id)
                    except AllegianceError as exc:
                        tally.reject(line, exc.field or "row", exc.message, event.source_id)
                    except IntegrityError:
                        if attempt == 1:  # a concurrent importer stored it first: now it is a duplicate
                            continue
                        raise
                    else:
                        if recorded.outcome is Outcome.ACCEPTED:
                            tally.stored(1, recorded.event_id, recorded.event_id)
                        else:
                            tally.duplicates += 1
                    break
            emit_imported(uow, app, program_id, tally)
        add(summary, tally, on_reject, on_progress)
    return summary
