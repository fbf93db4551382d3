"""``allegiance rewards expire``: a redemption left waiting past its deadline gives back its points
once, and a second run finds nothing more to do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from allegiance.bootstrap import Allegiance
from allegiance.cli.main import app
from allegiance.kernel.clock import Clock, FixedClock
from allegiance.rewards.model import ApprovalPolicy, CatalogItemCreate, RedemptionRequest
from allegiance.rewards.policy import Actor, Requester
from tests import factories as f
from tests.conftest import TEST_SECRET, ProgramFixture

runner = CliRunner()
LONG_AGO = datetime.now(UTC) - timedelta(days=90)


@pytest.fixture
def clock() -> Clock:
    return FixedClock(LONG_AGO)  # the redemption is made 90 days ago; the CLI runs on the real clock


def test_expire_releases_a_stale_redemption_once(allegiance: Allegiance, program: ProgramFixture, db_url: str) -> None:
    org = f.organization(allegiance, program.id)
    who = f.participant(allegiance, program.id, org["id"])
    account = f.personal_account(allegiance, program.id, org["id"], who["id"])
    f.fund(allegiance, program.id, account, 1_000)
    with allegiance.write() as uow:
        uow.rewards.set_program_policy(program.id, ApprovalPolicy(approval_categories=["travel"], hold_days=30), "t")
        trip = uow.rewards.create_item(program.id, CatalogItemCreate.model_validate(
            {"code": f"t-{uuid.uuid4().hex[:6]}", "names": {"en": "Trip"}, "category": "travel", "cost": 600}))
        waiting = uow.rewards.redeem(program.id, Actor(Requester.PARTICIPANT, "test", org["id"], who["id"]),
                                     RedemptionRequest(item_id=trip["id"]))
    assert waiting["status"] == "pending_approval"
    env = {"ALLEGIANCE_DATABASE_URL": db_url, "ALLEGIANCE_ENVIRONMENT": "test", "ALLEGIANCE_SECRET_KEY": TEST_SECRET}

    first = runner.invoke(app, ["rewards", "expire"], env=env)
    assert first.exit_code == 0, first.output
    assert "expired 1 redemptions" in first.output
    again = runner.invoke(app, ["rewards", "expire"], env=env)
    assert "expired 0 redemptions" in again.output
    with allegiance.read() as uow:
        assert uow.rewards.redemption(program.id, waiting["id"])["status"] == "expired"
        found = uow.ledger_store.get_account(program.id, account)
    assert found is not None and found.balance == 1_000
