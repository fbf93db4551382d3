"""Finance through the API: liability, breakage, expiring-soon (read and announce), and the CSV
export whose per-account sums equal the ledger balances."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from allegiance.bootstrap import Allegiance
from allegiance.ledger.policy import AwardSplit, ExpiryMode, ExpiryPolicy
from allegiance.storage import queries
from allegiance.storage import tables as t
from tests import factories as f
from tests.api.conftest import QUIET
from tests.conftest import ProgramFixture

pytestmark = [QUIET]
V1 = "/api/v1"


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": uuid.uuid4().hex}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def seed(app: Allegiance, program_id: int) -> dict[str, Any]:
    org = f.organization(app, program_id)
    person = f.participant(app, program_id, org["id"])
    with app.write() as uow:
        uow.ledger.award(program_id, "PTS", 1000, organization_id=org["id"], participant_id=person["id"],
                         split=AwardSplit(), expiry=ExpiryPolicy(mode=ExpiryMode.DAYS, days=5))
        uow.ledger.award(program_id, "PTS", 90, organization_id=org["id"], participant_id=None,
                         split=AwardSplit(), expiry=ExpiryPolicy())
        personal = f.personal_account(app, program_id, org["id"], person["id"])
        uow.ledger.reserve(program_id, personal, 100, ttl=timedelta(hours=1))
        uow.ledger.spend(program_id, personal, 50)
    return org


def test_liability_breakage_and_expiring_through_the_api(allegiance: Allegiance, program: ProgramFixture,
                                                         api: TestClient) -> None:
    org = seed(allegiance, program.id)
    op = program.operator_key
    liability = ok(api.get(f"{V1}/finance/liability", headers=headers(op)))
    [pts] = liability["units"]
    assert (pts["available"], pts["held"], pts["outstanding"]) == (940, 100, 1040)
    orgs = ok(api.get(f"{V1}/finance/liability/organizations", params={"organization_id": org["id"]},
                      headers=headers(op)))["items"]
    assert [o["units"][0]["outstanding"] for o in orgs] == [1040]
    breakage = ok(api.get(f"{V1}/finance/breakage", headers=headers(op)))
    assert breakage["units"][0]["breakage_rate"] is None  # no closed cohort yet: no evidence
    soon = ok(api.get(f"{V1}/finance/expiring", params={"days": 30}, headers=headers(op)))["items"]
    assert [(i["organization_id"], i["amount"]) for i in soon] == [(org["id"], 850)]  # 100 are held in escrow
    first = ok(api.post(f"{V1}/finance/expiring/notify", json={"days": 30}, headers=headers(op)))
    second = ok(api.post(f"{V1}/finance/expiring/notify", json={"days": 30}, headers=headers(op)))
    assert (first["announced"], second["announced"]) == (1, 0)
    bad = api.get(f"{V1}/finance/expiring", params={"days": 0}, headers=headers(op))
    assert (bad.status_code, bad.json()["field"]) == (422, "days")


def test_the_csv_export_reconciles_with_the_ledger(allegiance: Allegiance, program: ProgramFixture,
                                                   api: TestClient) -> None:
    seed(allegiance, program.id)
    op = program.operator_key
    today = datetime.now(UTC).date()
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    postings = api.get(f"{V1}/finance/export", params=period, headers=headers(op))
    assert postings.status_code == 200 and postings.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(postings.text)))
    sums: dict[int, int] = defaultdict(int)
    for row in rows:
        sums[int(row["account_id"])] += int(row["amount"])
    totals = list(csv.DictReader(io.StringIO(api.get(f"{V1}/finance/export", params={**period, "part": "totals"},
                                                     headers=headers(op)).text)))
    with allegiance.read() as uow:
        ids = uow.conn.execute(select(t.accounts.c.id).where(t.accounts.c.program_id == program.id)).scalars()
        balances = {i: queries.account(uow.conn, program.id, i)["balance"] for i in ids}  # type: ignore[index]
    assert dict(sums) == {a: b for a, b in balances.items() if b or a in sums}
    assert {int(r["account_id"]): int(r["closing"]) for r in totals} == dict(sums)
    assert {r["kind"] for r in rows} >= {"award", "hold", "spend"}
    reversed_period = api.get(f"{V1}/finance/export", params={"from": period["to"], "to": period["from"]},
                              headers=headers(op))
    assert (reversed_period.status_code, reversed_period.json()["field"]) == (422, "to")
