"""The organizations and participants a bulk import refers to, fetched a chunk at a time.

One query per kind of reference per chunk (only for what the cache lacks), instead of the API
path's queries per event. Ids and external ids never change once created, so what is found is
cached across chunks; only hits are cached, so an organization created during a long import is
found. The cache is bounded: when a chunk would overflow it, everything the chunk does not need is
dropped first (a chunk's own needs always fit, however small the limit).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from sqlalchemy import Column, Connection, select

from allegiance.events.prepare import P_ORG_EXT, P_ORG_ID, P_PERSON_EXT, P_PERSON_ID, Prepared
from allegiance.events.rows import RowError
from allegiance.storage import tables as t

CACHE_LIMIT = 200_000
SLICE = 5000  # ids per IN (...) list: far below SQLite's 32,766 bound parameters


def slices(values: list[Any], size: int = SLICE) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


class Subjects:
    """Resolve the subject references of prepared rows (``load`` the chunk, then ``resolve`` each row)."""

    def __init__(self, program_id: int, limit: int = CACHE_LIMIT) -> None:
        self.program_id = program_id
        self.limit = limit
        # organization id → itself; external id → organization id; participant id or external id →
        # (participant id, its organization id)
        self.org_ids: dict[int, int] = {}
        self.org_exts: dict[str, int] = {}
        self.person_ids: dict[int, tuple[int, int]] = {}
        self.person_exts: dict[str, tuple[int, int]] = {}

    def load(self, conn: Connection, rows: list[Prepared]) -> None:
        """Make sure every reference of these rows that exists is in the cache. (An external id
        next to an id is fetched too, though the id wins: rare, and cheaper than sorting them out.)"""
        o, p = t.organizations.c, t.participants.c
        for cache, index, key, columns in (
                (self.org_ids, P_ORG_ID, o.id, [o.id]),
                (self.org_exts, P_ORG_EXT, o.external_id, [o.id]),
                (self.person_ids, P_PERSON_ID, p.id, [p.id, p.organization_id]),
                (self.person_exts, P_PERSON_EXT, p.external_id, [p.id, p.organization_id])):
            wanted = set(map(itemgetter(index), rows))
            wanted.discard(None)
            missing = list(wanted - cache.keys())
            if not missing:
                continue
            if len(cache) + len(missing) > self.limit:
                kept = {k: cache[k] for k in wanted if k in cache}
                cache.clear()
                cache.update(kept)
            self._fetch(conn, cache, key, columns, missing)

    def _fetch(self, conn: Connection, cache: dict[Any, Any], key: Column[Any], columns: list[Column[Any]],
               missing: list[Any]) -> None:
        for part in slices(missing):
            query = select(key, *columns).where(key.table.c.program_id == self.program_id, key.in_(part))
            for row in conn.execute(query):
                cache[row[0]] = row[1] if len(columns) == 1 else (row[1], row[2])

    def resolve(self, row: Prepared) -> tuple[int | None, int | None] | RowError:
        """(organization id, participant id) of a loaded row, with the API path's rules and messages."""
        if row[P_ORG_ID] is None and row[P_PERSON_ID] is None:  # external ids: nearly every row of a file
            org = self.org_exts.get(row[P_ORG_EXT])
            if org is not None:
                if row[P_PERSON_EXT] is None:
                    return org, None
                person = self.person_exts.get(row[P_PERSON_EXT])
                if person is not None and person[1] == org:
                    return org, person[0]
        return self._resolve(row)

    def _resolve(self, row: Prepared) -> tuple[int | None, int | None] | RowError:
        org_id, org_ext, person_id, person_ext = row[P_ORG_ID:P_PERSON_EXT + 1]
        org = None
        if org_id is not None:
            org = self.org_ids.get(org_id)
            if org is None:
                return RowError("organization_id", f"organization {org_id} does not exist")
        elif org_ext is not None:
            org = self.org_exts.get(org_ext)
            if org is None:
                return RowError("organization_external_id", f"no organization with external_id {org_ext!r}")
        if person_id is not None:
            field_name, person = "participant_id", self.person_ids.get(person_id)
            absent = f"participant {person_id} does not exist"
        elif person_ext is not None:
            field_name, person = "participant_external_id", self.person_exts.get(person_ext)
            absent = f"no participant with external_id {person_ext!r}"
        else:
            return org, None
        if person is None:
            return RowError(field_name, absent)
        if org is not None and org != person[1]:
            return RowError(field_name, "the participant does not belong to that organization")
        return person[1], person[0]
