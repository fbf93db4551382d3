"""Analytics' storage adapter: the operational database as analytics frames, plus snapshots and
versioned configurations.

Events are streamed in keyset-paginated chunks and sorted into frames by the same
``FrameBuilder`` the synthetic path uses, so a metric cannot behave differently on stored data
than on generated data. Organizations and people are renamed to their external ids on the way.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import orjson
import polars as pl
from sqlalchemy import Connection, and_, bindparam, func, select

from allegiance.analytics.frames import SCHEMAS, FrameBuilder, Frames
from allegiance.kernel.clock import Clock
from allegiance.storage import tables as t
from allegiance.storage import tables_analytics as a
from allegiance.storage import tables_tiers as tt
from allegiance.storage.rows import all_rows, one_row
from allegiance.storage.upsert import insert_ignore

CHUNK = 20_000
# Ledger movements that tell whether a program is used: value issued to a holder, value a holder
# gave up for a reward (a direct spend, or the hold a redemption starts with).
EARNING = ("award",)
REDEEMING = ("spend", "hold")


class SqlAnalytics:
    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    # -- frames -----------------------------------------------------------------------------
    def frames(self, program_id: int, *, until: datetime | None = None) -> Frames:
        orgs, org_keys = self._organizations(program_id)
        people, person_keys = self._people(program_id, org_keys)
        builder = FrameBuilder()
        for type_, org_id, person_id, at, payload in self._events(program_id, until):
            builder.add(type_, org_keys.get(org_id) if org_id is not None else None,
                        person_keys.get(person_id) if person_id is not None else None, at, payload)
        return Frames(organizations=orgs, people=people, orders=builder.frame("orders"),
                      order_lines=builder.frame("order_lines"), returns=builder.frame("returns"),
                      activity=builder.frame("activity"), responses=builder.frame("responses"),
                      program=self._program(program_id, org_keys, person_keys, until))

    def _organizations(self, program_id: int) -> tuple[pl.DataFrame, dict[int, str]]:
        o = t.organizations
        parent = o.alias("parent")
        rows = self.conn.execute(
            select(o.c.id, o.c.external_id, o.c.name, o.c.kind, parent.c.external_id.label("parent"), o.c.segment,
                   o.c.country, o.c.status, o.c.joined_on, o.c.left_on)
            .outerjoin(parent, parent.c.id == o.c.parent_id)
            .where(o.c.program_id == program_id).order_by(o.c.id)).all()
        keys = {r.id: r.external_id for r in rows}
        frame = pl.DataFrame([tuple(r)[1:] for r in rows], schema=SCHEMAS["organizations"], orient="row")
        return frame, keys

    def _people(self, program_id: int, org_keys: dict[int, str]) -> tuple[pl.DataFrame, dict[int, str]]:
        p = t.participants
        rows = self.conn.execute(select(p.c.id, p.c.external_id, p.c.organization_id, p.c.role, p.c.status,
                                        p.c.left_at).where(p.c.program_id == program_id).order_by(p.c.id)).all()
        keys = {r.id: r.external_id for r in rows}
        data = [(r.external_id, org_keys.get(r.organization_id), r.role, r.status,
                 r.left_at.date() if r.left_at else None) for r in rows]
        return pl.DataFrame(data, schema=SCHEMAS["people"], orient="row"), keys

    def _events(self, program_id: int, until: datetime | None) -> Iterator[tuple[str, int | None, int | None,
                                                                                   datetime, dict[str, Any]]]:
        e = t.events
        last = 0
        while True:
            condition = and_(e.c.program_id == program_id, e.c.id > last)
            if until is not None:
                condition = and_(condition, e.c.occurred_at < until)
            rows = self.conn.execute(select(e.c.id, e.c.type, e.c.organization_id, e.c.participant_id,
                                            e.c.occurred_at, e.c.payload).where(condition)
                                     .order_by(e.c.id).limit(CHUNK)).all()
            if not rows:
                return
            for row in rows:
                payload = row.payload
                if isinstance(payload, str | bytes):
                    payload = orjson.loads(payload)
                yield row.type, row.organization_id, row.participant_id, row.occurred_at, payload
            last = rows[-1].id

    def _program(self, program_id: int, org_keys: dict[int, str], person_keys: dict[int, str],
                 until: datetime | None) -> pl.DataFrame:
        tx, po, ac, ev = t.transactions, t.postings, t.accounts, t.events
        # When a movement happened: an award caused by an event happened when the event did
        # (imported history is posted today but was earned back then), a back-dated award when its
        # metadata says it was earned; anything else when it was posted.
        query = (select(ac.c.organization_id, ac.c.participant_id, ev.c.occurred_at, tx.c.created_at, tx.c.metadata,
                        tx.c.kind, po.c.amount)
                 .select_from(po.join(tx, tx.c.id == po.c.transaction_id).join(ac, ac.c.id == po.c.account_id)
                              .outerjoin(ev, ev.c.id == tx.c.event_id))
                 .where(po.c.program_id == program_id, tx.c.kind.in_(EARNING + REDEEMING),
                        ac.c.kind.in_(("pool", "personal"))))
        data = []
        for org_id, person_id, occurred, created, metadata, kind, amount in self.conn.execute(query):
            at = occurred or _earned_at(metadata) or created
            if until is not None and at >= until:
                continue
            if kind in EARNING and amount > 0:
                data.append((org_keys.get(org_id), person_keys.get(person_id), at, "earned", amount))
            elif kind in REDEEMING and amount < 0:
                data.append((org_keys.get(org_id), person_keys.get(person_id), at, "redeemed", -amount))
        return pl.DataFrame(data, schema=SCHEMAS["program"], orient="row")

    # -- what analytics writes back -----------------------------------------------------------
    def organization_keys(self, program_id: int) -> dict[int, str]:
        o = t.organizations
        return {r.id: r.external_id for r in self.conn.execute(
            select(o.c.id, o.c.external_id).where(o.c.program_id == program_id).order_by(o.c.id))}

    def organization_tiers(self, program_id: int) -> dict[str, str]:
        """external id -> current tier code of the organization-level ladder."""
        o, st, ld = t.organizations, tt.tier_status, tt.tier_ladders
        rows = self.conn.execute(
            select(o.c.external_id, st.c.tier).select_from(st.join(ld, ld.c.id == st.c.ladder_id)
                                                           .join(o, o.c.id == st.c.organization_id))
            .where(st.c.program_id == program_id, ld.c.level == "organization", st.c.participant_id.is_(None),
                   st.c.tier.is_not(None))).all()
        return {r.external_id: r.tier for r in rows}

    def write_segments(self, program_id: int, membership: dict[str, list[str]] | Any) -> int:
        """Store each organization's segment codes under ``attributes["segments"]`` (where earning
        rules read them); only organizations whose list changed are written. Returns that count."""
        o = t.organizations
        changed = []
        for row in self.conn.execute(select(o.c.id, o.c.external_id, o.c.attributes)
                                     .where(o.c.program_id == program_id)):
            attributes = dict(row.attributes or {})
            codes = list(membership.get(row.external_id, []))
            if attributes.get("segments", []) != codes:
                if codes:
                    attributes["segments"] = codes
                else:
                    attributes.pop("segments", None)
                changed.append({"row_id": row.id, "new_attributes": attributes})
        if changed:
            self.conn.execute(o.update().where(o.c.id == bindparam("row_id"))
                              .values(attributes=bindparam("new_attributes")), changed)
        return len(changed)

    # -- snapshots ----------------------------------------------------------------------------
    def save_snapshot(self, program_id: int, kind: str, as_of: date, document: dict[str, Any]) -> None:
        """One row per (program, kind, day): a re-run replaces the day's document."""
        s = a.analytics_snapshots
        now = self.clock.now()
        insert_ignore(self.conn, s, {"program_id": program_id, "kind": kind, "as_of": as_of, "document": document,
                                     "created_at": now}, ["program_id", "kind", "as_of"])
        self.conn.execute(s.update().where(s.c.program_id == program_id, s.c.kind == kind, s.c.as_of == as_of)
                          .values(document=document, created_at=now))

    def snapshots(self, program_id: int, kind: str, *, limit: int = 400) -> list[dict[str, Any]]:
        s = a.analytics_snapshots
        rows = all_rows(self.conn, select(s.c.as_of, s.c.document, s.c.created_at)
                        .where(s.c.program_id == program_id, s.c.kind == kind)
                        .order_by(s.c.as_of.desc()).limit(limit))
        return rows[::-1]

    def latest_snapshot(self, program_id: int, kind: str) -> dict[str, Any] | None:
        s = a.analytics_snapshots
        return one_row(self.conn, select(s.c.as_of, s.c.document, s.c.created_at)
                       .where(s.c.program_id == program_id, s.c.kind == kind).order_by(s.c.as_of.desc()).limit(1))

    # -- versioned configurations -----------------------------------------------------------
    def save_config(self, program_id: int, kind: str, document: dict[str, Any], *, by: str) -> int:
        c = a.analytics_configs
        latest = self.conn.execute(select(func.max(c.c.version)).where(c.c.program_id == program_id,
                                                                      c.c.kind == kind)).scalar()
        version = int(latest or 0) + 1
        self.conn.execute(c.insert().values(program_id=program_id, kind=kind, version=version, document=document,
                                            created_by=by, created_at=self.clock.now()))
        return version

    def config(self, program_id: int, kind: str, version: int | None = None) -> dict[str, Any] | None:
        c = a.analytics_configs
        query = select(c.c.version, c.c.document, c.c.created_by, c.c.created_at).where(
            c.c.program_id == program_id, c.c.kind == kind)
        query = query.where(c.c.version == version) if version is not None else query.order_by(
            c.c.version.desc()).limit(1)
        return one_row(self.conn, query)


def _earned_at(metadata: Any) -> datetime | None:
    if isinstance(metadata, str | bytes):
        metadata = orjson.loads(metadata)
    value = metadata.get("earned_at") if isinstance(metadata, dict) else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
