"""Imports run at the same moment by several threads (the concurrency tests of the importers)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from allegiance.bootstrap import Allegiance
from allegiance.storage.bulk_events import ImportSummary, import_rows


def overlapping_halves(rows: list[Any]) -> list[list[Any]]:
    """The first two thirds and the last two thirds: the middle third is in both."""
    return [rows[: len(rows) * 2 // 3], rows[len(rows) // 3:]]


def import_at_once(app: Allegiance, program_id: int, parts: Sequence[list[tuple[int, Mapping[str, Any]]]],
                   chunk_size: int) -> list[ImportSummary]:
    """Each part imported by its own thread, all released together; the summaries of those that
    finished (fewer than the parts when one raised)."""
    barrier = threading.Barrier(len(parts))
    results: list[ImportSummary] = []

    def run(part: list[tuple[int, Mapping[str, Any]]]) -> None:
        barrier.wait()
        results.append(import_rows(app, program_id, part, chunk_size=chunk_size))

    threads = [threading.Thread(target=run, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
