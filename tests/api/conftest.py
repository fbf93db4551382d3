"""API fixtures: a TestClient over the real app and a small multi-tenant *world*.

The world has two organizations in one program — "own" (where the scoped keys live) and
"foreign" — and an "other" organization in a second program, so every authorization test can aim
the same request at an object the caller owns, at a neighbour's, and at another tenant's.
Each side has a participant with a funded personal account, so ledger writes can succeed when
they are allowed: a refusal then proves the policy, not an empty balance.
"""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.exceptions import StarletteDeprecationWarning

from allegiance.access.model import KeyRole
from allegiance.api.app import create_api
from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent
from allegiance.storage import tables as t
from tests import factories as f
from tests.conftest import ProgramFixture

with warnings.catch_warnings():  # starlette warns once, at import, that it would rather drive httpx2
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

FUNDS = 1_000_000
EVENT_TYPE = "order.placed"
EVENT_SCHEMA = {"type": "object", "required": ["amount_minor"],
                "properties": {"amount_minor": {"type": "integer", "minimum": 0}}}

# The principals every matrix row is tried with: the four roles, then three kinds of bad credentials.
OPERATOR, ORG_ADMIN, INTEGRATION, PARTICIPANT = "operator", "org_admin", "integration", "participant"
NO_KEY, REVOKED, MALFORMED = "no key", "revoked key", "malformed key"
CALLERS = (OPERATOR, ORG_ADMIN, INTEGRATION, PARTICIPANT, NO_KEY, REVOKED, MALFORMED)
OWN, FOREIGN, OTHER = "own", "foreign", "other program"
OWNERS = (OWN, FOREIGN, OTHER)
# For test modules: starlette's TestClient warns that it prefers httpx2 (a UserWarning subclass).
QUIET = pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning")


@dataclass
class Side:
    """One organization with one participant, both holder accounts, and points on the person."""

    program_id: int
    organization_id: int
    participant_id: int
    pool_account_id: int
    personal_account_id: int


@dataclass
class World:
    allegiance: Allegiance
    client: TestClient
    program_id: int
    other_program_id: int
    sides: dict[str, Side]
    keys: dict[str, str]  # caller -> bearer secret (program A, scoped to the "own" side)
    key_ids: dict[str, int]
    other_operator_key: str

    # -- requests -----------------------------------------------------------------------------
    def headers(self, caller: str, *, idempotency: bool = True) -> dict[str, str]:
        headers = {"Idempotency-Key": new_key()} if idempotency else {}
        if caller == NO_KEY:
            return headers
        return {**headers, "Authorization": f"Bearer {self.keys[caller]}"}

    def lenient(self) -> TestClient:
        """A client that answers a crash as the 500 a real client would see, instead of raising it."""
        return TestClient(self.client.app, raise_server_exceptions=False)

    # -- fresh objects, made through the services (not the API under test) ---------------------------
    def ref(self, prefix: str) -> str:
        return f.ref(prefix)

    def award(self, owner: str, amount: int = 100) -> int:
        side = self.sides[owner]
        with self.allegiance.write() as uow:
            settings = uow.programs.settings(side.program_id)
            posted = uow.ledger.award(side.program_id, settings.default_unit, amount,
                                      organization_id=side.organization_id, participant_id=side.participant_id,
                                      split=settings.award_split, expiry=settings.expiry, memo="matrix")
        return posted.transaction_id

    def hold(self, owner: str, amount: int = 10) -> int:
        side = self.sides[owner]
        with self.allegiance.write() as uow:
            hold = uow.ledger.reserve(side.program_id, side.personal_account_id, amount, ttl=timedelta(hours=1),
                                      memo="matrix")
        return hold.id

    def event(self, owner: str) -> int:
        side = self.sides[owner]
        with self.allegiance.write() as uow:
            [recorded] = uow.events.record(side.program_id, [IncomingEvent(
                source_id=self.ref("src"), type=EVENT_TYPE, occurred_at=datetime.now(UTC),
                organization_id=side.organization_id, payload={"amount_minor": 5})])
        return recorded.event_id

    def participant(self, owner: str) -> int:
        side = self.sides[owner]
        return int(f.participant(self.allegiance, side.program_id, side.organization_id)["id"])

    def key(self, owner: str) -> int:
        side = self.sides[owner]
        with self.allegiance.write() as uow:
            key_id, _ = uow.access.create_key(side.program_id, self.ref("k"), KeyRole.ORG_ADMIN,
                                              organization_id=side.organization_id)
        return key_id

    # -- observation --------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A digest of every row of every table: equal before and after = nothing was written."""
        return fingerprint(self.allegiance)

    def balance(self, account_id: int) -> int:
        with self.allegiance.read() as uow:
            value = uow.conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == account_id)).scalar()
        return int(value or 0)

    def count(self, table: Any) -> int:
        with self.allegiance.read() as uow:
            return int(uow.conn.execute(select(func.count()).select_from(table)).scalar_one())


def new_key() -> str:
    return f"idem-{uuid.uuid4().hex}"


def fingerprint(allegiance: Allegiance) -> str:
    digest = hashlib.sha256()
    with allegiance.read() as uow:
        for table in t.metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            for row in uow.conn.execute(select(table).order_by(*order)):
                digest.update(repr((table.name, tuple(row))).encode())
    return digest.hexdigest()


def _side(app: Allegiance, program_id: int) -> Side:
    organization = f.organization(app, program_id)
    person = f.participant(app, program_id, organization["id"])
    personal = f.personal_account(app, program_id, organization["id"], person["id"])
    f.fund(app, program_id, personal, FUNDS)
    return Side(program_id, organization["id"], person["id"], f.pool_account(app, program_id, organization["id"]),
                personal)


@pytest.fixture
def api(allegiance: Allegiance) -> Iterator[TestClient]:
    with TestClient(create_api(allegiance)) as client:
        yield client


@pytest.fixture
def world(allegiance: Allegiance, program: ProgramFixture, api: TestClient) -> World:
    with allegiance.write() as uow:
        other = uow.programs.create_program(f"o-{uuid.uuid4().hex[:8]}", "Other program")
        _, other_key = uow.access.create_key(other["id"], "operator", KeyRole.OPERATOR)
        for program_id in (program.id, other["id"]):
            uow.events.declare_type(program_id, EVENT_TYPE, EVENT_SCHEMA, "test orders")
    sides = {OWN: _side(allegiance, program.id), FOREIGN: _side(allegiance, program.id),
             OTHER: _side(allegiance, other["id"])}
    own = sides[OWN]
    keys = {OPERATOR: program.operator_key, MALFORMED: "alg_nothing"}
    key_ids = {OPERATOR: program.operator_key_id}
    with allegiance.write() as uow:
        for caller, role, org, person in (
            (ORG_ADMIN, KeyRole.ORG_ADMIN, own.organization_id, None),
            (INTEGRATION, KeyRole.INTEGRATION, None, None),
            (PARTICIPANT, KeyRole.PARTICIPANT, own.organization_id, own.participant_id),
            (REVOKED, KeyRole.OPERATOR, None, None),
        ):
            key_ids[caller], keys[caller] = uow.access.create_key(program.id, caller, role, organization_id=org,
                                                                  participant_id=person)
        assert uow.access.revoke_key(program.id, key_ids[REVOKED])
    return World(allegiance, api, program.id, other["id"], sides, keys, key_ids, other_key)
