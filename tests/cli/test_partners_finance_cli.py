"""``allegiance partners settlement`` and ``allegiance finance expiring|export`` through the real CLI."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from allegiance.bootstrap import Allegiance
from allegiance.cli.main import app
from allegiance.ledger.policy import AwardSplit, ExpiryMode, ExpiryPolicy
from allegiance.partners.model import PartnerCreate, PartnerOperation
from allegiance.storage import queries
from allegiance.storage import tables as t
from tests import factories as f
from tests.conftest import TEST_SECRET, ProgramFixture

runner = CliRunner()
TODAY = datetime.now(UTC).date()
PERIOD = ["--from", (TODAY - timedelta(days=1)).isoformat(), "--to", (TODAY + timedelta(days=1)).isoformat()]


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return {"ALLEGIANCE_DATABASE_URL": db_url, "ALLEGIANCE_ENVIRONMENT": "test", "ALLEGIANCE_SECRET_KEY": TEST_SECRET}


def activity(app_: Allegiance, program_id: int) -> int:
    org = f.organization(app_, program_id)
    with app_.write() as uow:
        partner = uow.partners.create(program_id, PartnerCreate.model_validate(
            {"code": "bank", "name": "Bank", "issue_rate": {"minor": 1}, "redeem_rate": {"minor": 1, "per_points": 2}}))
        uow.partners.earn(program_id, int(partner["id"]), PartnerOperation(
            reference="a", organization_id=org["id"], points=3000))
        uow.partners.redeem(program_id, int(partner["id"]), PartnerOperation(
            reference="b", organization_id=org["id"], points=1001))
        uow.ledger.award(program_id, "PTS", 500, organization_id=org["id"], participant_id=None, split=AwardSplit(),
                         expiry=ExpiryPolicy(mode=ExpiryMode.DAYS, days=7))
    return int(org["id"])


def test_partner_settlement_as_json_and_csv(allegiance: Allegiance, program: ProgramFixture,
                                            env: dict[str, str]) -> None:
    activity(allegiance, program.id)
    result = runner.invoke(app, ["partners", "settlement", "bank", *PERIOD, "--program", program.slug], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["points_issued"], report["points_redeemed"]) == (3000, 1001)
    assert (report["partner_owes_minor"], report["operator_owes_minor"], report["net_minor"]) == (3000, 501, -2499)
    result = runner.invoke(app, ["partners", "settlement", "bank", *PERIOD, "--format", "csv"], env=env)
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(result.output.splitlines()))
    assert row["net_points"] == "-1999"
    missing = runner.invoke(app, ["partners", "settlement", "nobody", *PERIOD], env=env)
    assert missing.exit_code == 2
    backwards = runner.invoke(app, ["partners", "settlement", "bank", "--from", "2026-02-01", "--to", "2026-01-01"],
                              env=env)
    assert backwards.exit_code == 2 and "to:" in backwards.output


def test_expiring_job_is_idempotent(allegiance: Allegiance, program: ProgramFixture, env: dict[str, str]) -> None:
    activity(allegiance, program.id)
    for _ in range(2):
        result = runner.invoke(app, ["finance", "expiring", "--days", "30"], env=env)
        assert result.exit_code == 0, result.output
    with allegiance.read() as uow:
        count = uow.conn.execute(select(func.count()).select_from(t.outbox)
                                 .where(t.outbox.c.topic == "points.expiring_soon")).scalar_one()
    assert count == 1


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_files_reconcile_with_the_ledger(allegiance: Allegiance, program: ProgramFixture,
                                                env: dict[str, str], tmp_path: Path, fmt: str) -> None:
    activity(allegiance, program.id)
    result = runner.invoke(app, ["finance", "export", *PERIOD, "--format", fmt, "--out", str(tmp_path),
                                 "--program", program.slug], env=env)
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        with (tmp_path / "postings.csv").open() as handle:
            postings = [{k: v for k, v in r.items()} for r in csv.DictReader(handle)]
        with (tmp_path / "account_totals.csv").open() as handle:
            totals = list(csv.DictReader(handle))
    else:
        postings = pq.read_table(tmp_path / "postings.parquet").to_pylist()
        totals = pq.read_table(tmp_path / "account_totals.parquet").to_pylist()
    sums: dict[int, int] = defaultdict(int)
    for row in postings:
        sums[int(row["account_id"])] += int(row["amount"])
    with allegiance.read() as uow:
        balances = {a: queries.account(uow.conn, program.id, a)["balance"] for a in sums}  # type: ignore[index]
    assert dict(sums) == balances
    assert {int(r["account_id"]): int(r["closing"]) for r in totals} == balances
    assert any(row["partner_code"] == "bank" for row in postings)
