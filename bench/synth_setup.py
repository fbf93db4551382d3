"""A synthetic program ready for importing: the event types of ``event_type_catalog()`` declared,
every organization (parents first) and person created through the services, and the event rows
exactly as ``iter_event_rows`` yields them (what ``allegiance synth`` writes to JSON Lines)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from allegiance.bootstrap import Allegiance
from allegiance.storage import tables as t
from allegiance.synthetic import SynthConfig, SyntheticProgram, event_type_catalog, generate, iter_event_rows
from bench import db
from bench.common import Context

BATCH = 5_000
EVENTS_PER_ORGANIZATION = 60  # the generator yields ~70 per organization over 24 months; stay below


@dataclass
class SyntheticDb:
    template: db.Prepared
    data: SyntheticProgram
    events: int
    organizations: dict[str, int]
    participants: dict[str, int]

    def rows(self) -> Iterator[dict[str, Any]]:
        """The first ``events`` synthetic events, as flat JSON-ready dicts."""
        return islice(iter_event_rows(self.data), self.events)

    def write_jsonl(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as out:
            for row in self.rows():
                out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        return path


def _organizations(app: Allegiance, program_id: int, data: SyntheticProgram) -> dict[str, int]:
    """Bulk INSERT … RETURNING, parents before children. The services would also open accounts and
    emit outbox rows per organization — ~6 queries each, over half an hour for the 83,000
    organizations of a 5M-event program — and importing events needs neither."""
    ids: dict[str, int] = {}
    pending = list(data.organizations)
    now = datetime.now(UTC)
    o = t.organizations
    while pending:
        ready = [org for org in pending if org.parent_external_id is None or org.parent_external_id in ids]
        if not ready:
            raise ValueError("synthetic organizations form a cycle or miss a parent")
        for start in range(0, len(ready), BATCH):
            rows = [{"program_id": program_id, "external_id": org.external_id, "name": org.name, "kind": org.kind,
                     "parent_id": ids.get(org.parent_external_id) if org.parent_external_id else None,
                     "segment": org.segment, "country": org.country, "locale": org.locale, "status": org.status,
                     "joined_on": org.joined_on, "left_on": org.left_on, "account_manager_id": None,
                     "attributes": {}, "created_at": now} for org in ready[start:start + BATCH]]
            with app.write() as uow:
                for new_id, external_id in uow.conn.execute(insert(o).returning(o.c.id, o.c.external_id), rows):
                    ids[external_id] = int(new_id)
        pending = [org for org in pending if org.external_id not in ids]
    return ids


def _participants(app: Allegiance, program_id: int, data: SyntheticProgram, orgs: dict[str, int]) -> dict[str, int]:
    ids: dict[str, int] = {}
    people = list(data.participants)
    now = datetime.now(UTC)
    p = t.participants
    for start in range(0, len(people), BATCH):
        rows = [{"program_id": program_id, "organization_id": orgs[person.organization_external_id],
                 "external_id": person.external_id, "name": person.name, "email": person.email, "role": person.role,
                 "is_org_admin": person.is_org_admin, "locale": person.locale, "time_zone": person.time_zone,
                 "birthday": person.birthday, "preferred_channel": person.preferred_channel, "consents": {},
                 "status": "active", "joined_at": now, "left_at": None} for person in people[start:start + BATCH]]
        with app.write() as uow:
            for new_id, external_id in uow.conn.execute(insert(p).returning(p.c.id, p.c.external_id), rows):
                ids[external_id] = int(new_id)
    return ids


def prepare_synthetic(ctx: Context, backend: str, events: int, *, seed: int = 7) -> SyntheticDb:
    """A migrated template database holding the synthetic program's organizations and people."""
    data = generate(SynthConfig(seed=seed, organizations=max(1, math.ceil(events / EVENTS_PER_ORGANIZATION))))
    template = db.prepare(ctx, backend, f"synth_{backend[:2]}", organizations=0, event_types=event_type_catalog())
    with db.application(template.url) as app:
        orgs = _organizations(app, template.program_id, data)
        people = _participants(app, template.program_id, data, orgs)
    return SyntheticDb(template, data, events, orgs, people)
