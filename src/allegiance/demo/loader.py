"""Load a synthetic program into a database, the way an operator would: declare event types,
create organizations (parents first) and people, import the event history in bulk, then seed the
ledger with quarterly awards on paid invoices, a few redemptions and a pending approval.

The awards here stand in for earning rules (the rules engine arrives with the program-mechanics
work); they go through the real ledger service, so every balance is still Σ postings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from allegiance.access.model import KeyRole
from allegiance.bootstrap import Allegiance
from allegiance.kernel.errors import AllegianceError
from allegiance.ledger.model import UnitKind
from allegiance.ledger.policy import AwardSplit, ExpiryMode, ExpiryPolicy
from allegiance.programs.model import ProgramSettings, UnitConfig
from allegiance.storage import tables as t
from allegiance.storage.bulk_events import import_rows
from allegiance.synthetic import SynthConfig, SyntheticProgram, event_type_catalog, generate, iter_event_rows

DEMO_SLUG = "demo"
DEMO_EMAIL = "operator@demo.allegiance.local"
DEMO_PASSWORD = "allegiance-demo"  # development only: `demo` refuses to run in production


LOADED = "demo.loaded"


class DemoIncomplete(AllegianceError):
    code = "demo_incomplete"


@dataclass(frozen=True)
class DemoSummary:
    program_id: int
    organizations: int
    participants: int
    events: int
    awards: int
    created: bool


def demo_settings() -> ProgramSettings:
    return ProgramSettings(
        units=[UnitConfig(code="PTS", name="Points"),
               UnitConfig(code="EUR", name="Store credit", scale=2, kind=UnitKind.STORE_CREDIT)],
        award_split=AwardSplit(participant_percent=30),
        expiry=ExpiryPolicy(mode=ExpiryMode.END_OF_YEAR, periods_after=1),
    )


def _create_organizations(app: Allegiance, program_id: int, data: SyntheticProgram) -> dict[str, int]:
    ids: dict[str, int] = {}
    pending = list(data.organizations)
    while pending:  # parents first: a child waits until its parent exists
        ready = [o for o in pending if o.parent_external_id is None or o.parent_external_id in ids]
        if not ready:
            raise ValueError("organization hierarchy has a cycle or a missing parent")
        with app.write() as uow:
            for org in ready:
                created = uow.programs.create_organization(program_id, {
                    "external_id": org.external_id, "name": org.name, "kind": org.kind,
                    "parent_id": ids.get(org.parent_external_id) if org.parent_external_id else None,
                    "segment": org.segment, "country": org.country, "locale": org.locale,
                    "status": org.status, "joined_on": org.joined_on, "left_on": org.left_on,
                })
                ids[org.external_id] = created["id"]
        pending = [o for o in pending if o.external_id not in ids]
    return ids


def _create_participants(app: Allegiance, program_id: int, data: SyntheticProgram,
                         orgs: dict[str, int]) -> dict[str, int]:
    ids: dict[str, int] = {}
    people = list(data.participants)
    for start in range(0, len(people), 500):
        with app.write() as uow:
            for person in people[start:start + 500]:
                created = uow.programs.create_participant(program_id, {
                    "organization_id": orgs[person.organization_external_id],
                    "external_id": person.external_id, "name": person.name, "email": person.email,
                    "role": person.role, "is_org_admin": person.is_org_admin, "locale": person.locale,
                    "time_zone": person.time_zone, "birthday": person.birthday,
                    "preferred_channel": person.preferred_channel,
                    "consents": {person.preferred_channel: True},
                })
                ids[person.external_id] = created["id"]
    return ids


def _seed_ledger(app: Allegiance, program_id: int, settings: ProgramSettings) -> int:
    """Quarterly awards: 1 point per euro of paid invoices, to the company (and its buyer)."""
    e = t.events
    with app.read() as uow:
        rows = uow.conn.execute(select(e.c.organization_id, e.c.participant_id, e.c.occurred_at, e.c.payload)
                                .where(e.c.program_id == program_id, e.c.type == "invoice.paid")).all()
    totals: dict[tuple[int, int | None, int, int], int] = defaultdict(int)
    for row in rows:
        quarter = (row.occurred_at.month - 1) // 3
        totals[(row.organization_id, row.participant_id, row.occurred_at.year, quarter)] += \
            int(row.payload.get("amount_minor", 0)) // 100
    awards = 0
    items = sorted(totals.items(), key=lambda kv: (kv[0][2], kv[0][3], kv[0][0]))
    for start in range(0, len(items), 400):
        with app.write() as uow:
            for (org, person, year, quarter), points in items[start:start + 400]:
                if points <= 0:
                    continue
                earned = min(datetime(year, quarter * 3 + 1, 1, tzinfo=UTC) + timedelta(days=95), app.clock.now())
                uow.ledger.award(program_id, "PTS", points, organization_id=org, participant_id=person,
                                 split=settings.award_split, expiry=settings.expiry, earned_at=earned,
                                 memo=f"Paid invoices Q{quarter + 1} {year}",
                                 metadata={"source": "demo seeding", "quarter": f"{year}Q{quarter + 1}",
                                           "earned_at": earned.isoformat()})
                awards += 1
    return awards


def _seed_redemptions(app: Allegiance, program_id: int) -> None:
    """A few redemptions and one pending approval, so statements show every kind of entry."""
    a = t.accounts
    with app.read() as uow:
        rich = uow.conn.execute(select(a.c.id).where(a.c.program_id == program_id, a.c.kind == "pool",
                                                     a.c.unit == "PTS", a.c.balance >= 5000)
                                .order_by(a.c.balance.desc()).limit(12)).scalars().all()
    with app.write() as uow:
        for index, account in enumerate(rich):
            if index % 3 == 2:
                uow.ledger.reserve(program_id, account, 2500, ttl=timedelta(days=7),
                                   memo="Conference seat — awaiting manager approval")
            else:
                uow.ledger.spend(program_id, account, 3000, memo="Catalog: team training day")


def load_demo(app: Allegiance, *, seed: int = 42, organizations: int = 300, months: int = 24) -> DemoSummary:
    """Idempotent: a second call finds the demo program and loads nothing."""
    with app.read() as uow:
        existing = uow.program_store.program_by_slug(DEMO_SLUG)
    if existing is not None:
        with app.read() as uow:
            loaded = uow.conn.execute(select(t.outbox.c.id).where(t.outbox.c.program_id == existing["id"],
                                                                  t.outbox.c.topic == LOADED)).first()
            if loaded is None:
                raise DemoIncomplete("an earlier demo load was interrupted: delete the database file "
                                     "(see ALLEGIANCE_DATABASE_URL) and run the demo again")
            count = {name: int(uow.conn.execute(select(func.count()).select_from(table)
                                                .where(table.c.program_id == existing["id"])).scalar_one())
                     for name, table in (("o", t.organizations), ("p", t.participants), ("e", t.events))}
        return DemoSummary(existing["id"], count["o"], count["p"], count["e"], 0, created=False)
    today = app.clock.now().date()
    start_month = today.year * 12 + today.month - 1 - months
    data = generate(SynthConfig(seed=seed, organizations=organizations, months=months,
                                start=datetime(start_month // 12, start_month % 12 + 1, 1).date()))
    settings = demo_settings()
    with app.write() as uow:
        program_id = uow.programs.create_program(DEMO_SLUG, "Dealer & customer club (demo)", settings)["id"]
        for name, schema in event_type_catalog().items():
            uow.events.declare_type(program_id, name, schema, f"{name} (synthetic demo data)")
    orgs = _create_organizations(app, program_id, data)
    people = _create_participants(app, program_id, data, orgs)
    summary = import_rows(app, program_id, ((i + 2, row) for i, row in enumerate(iter_event_rows(data))))
    awards = _seed_ledger(app, program_id, settings)
    _seed_redemptions(app, program_id)
    with app.write() as uow:
        uow.program_store.emit(program_id, LOADED, {"organizations": len(orgs), "events": summary.accepted}, None)
    return DemoSummary(program_id, len(orgs), len(people), summary.accepted, awards, created=True)


def demo_credentials(app: Allegiance, program_id: int) -> tuple[str, str, str]:
    """Ensure the demo operator exists; issue a fresh operator API key (keys are stored hashed,
    so an old one can never be shown again)."""
    with app.write() as uow:
        known = uow.access.authenticate(DEMO_EMAIL, DEMO_PASSWORD) is not None
        if not known and not uow.access.set_password(DEMO_EMAIL, DEMO_PASSWORD):
            uow.access.create_user(DEMO_EMAIL, "Demo operator", DEMO_PASSWORD)
        _, key = uow.access.create_key(program_id, f"demo {app.clock.now():%Y-%m-%d %H:%M}", KeyRole.OPERATOR)
    return DEMO_EMAIL, DEMO_PASSWORD, key
