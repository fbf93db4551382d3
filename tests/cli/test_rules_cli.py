"""``allegiance rules`` through the real CLI entry point: apply a YAML file, activate, show, and
a bad file that exits 2 naming the field and its line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from allegiance.bootstrap import Allegiance
from allegiance.cli.main import app
from allegiance.cli.rules import line_of
from allegiance.events.model import IncomingEvent
from allegiance.kernel.clock import FixedClock
from tests import factories as f
from tests.conftest import TEST_SECRET, ProgramFixture

runner = CliRunner()
RULES = """\
rules:
  - code: course-module
    name: 100 points per course module
    trigger: course.module_completed
    action:
      kind: fixed
      amount: 100
    recipient: participant
    goal:
      behavior: finish distance learning
      metric: modules completed per participant
      expected_uplift: +20 %
"""


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return {"ALLEGIANCE_DATABASE_URL": db_url, "ALLEGIANCE_ENVIRONMENT": "test", "ALLEGIANCE_SECRET_KEY": TEST_SECRET}


def declare(app_: Allegiance, program_id: int, name: str) -> None:
    with app_.write() as uow:
        uow.events.declare_type(program_id, name, {"type": "object"})


def test_apply_activate_and_earn(allegiance: Allegiance, program: ProgramFixture, env: dict[str, str],
                                 tmp_path: Path) -> None:
    """Cordiant: a 5-module course at 100 points a module credits 500 points."""
    declare(allegiance, program.id, "course.module_completed")
    file = tmp_path / "rules.yaml"
    file.write_text(RULES)
    applied = runner.invoke(app, ["rules", "apply", program.slug, str(file), "--activate"], env=env)
    assert applied.exit_code == 0, applied.output
    assert "version 1 saved (active)" in applied.output
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    with allegiance.write() as uow:
        for module in range(5):
            uow.events.record_one(program.id, IncomingEvent(
                source_id=f"m{module}-{person['id']}", type="course.module_completed",
                occurred_at=datetime.now(UTC), organization_id=org["id"], participant_id=person["id"],
                payload={"course": "tyres-101", "module": module}))
    account = f.personal_account(allegiance, program.id, org["id"], person["id"])
    with allegiance.read() as uow:
        assert uow.ledger.port.get_account(program.id, account).balance == 500  # type: ignore[union-attr]
    shown = runner.invoke(app, ["rules", "show", program.slug], env=env)
    assert shown.exit_code == 0
    assert yaml.safe_load(shown.output)["rules"][0]["code"] == "course-module"
    listed = runner.invoke(app, ["rules", "list", program.slug], env=env)
    assert "active" in listed.output


def test_a_bad_file_exits_2_with_field_and_line(allegiance: Allegiance, program: ProgramFixture,
                                               env: dict[str, str], tmp_path: Path) -> None:
    declare(allegiance, program.id, "course.module_completed")
    file = tmp_path / "rules.yaml"
    file.write_text(RULES.replace("amount: 100", "amount: -5"))
    result = runner.invoke(app, ["rules", "apply", program.slug, str(file)], env=env)
    assert result.exit_code == 2
    assert "rules.yaml:7" in result.output  # the line of `amount: -5`
    assert "rules[0].action.amount" in result.output
    with allegiance.read() as uow:
        assert uow.rule_store.versions(program.id) == []  # nothing half-written
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - code: [unclosed\n")
    result = runner.invoke(app, ["rules", "apply", program.slug, str(broken)], env=env)
    assert result.exit_code == 2 and "line" in result.output


def test_line_of_points_at_the_deepest_existing_node() -> None:
    assert line_of(RULES, "rules[0].action.amount") == 7
    assert line_of(RULES, "rules[0].goal") == 9
    assert line_of(RULES, "rules[0].action.percent") == 5  # absent: its parent `action`
    assert line_of(RULES, "rules[3]") == 1  # no 4th rule: the `rules:` key


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, tzinfo=UTC))


def test_release_due_pays_date_pending_awards_once(allegiance: Allegiance, program: ProgramFixture,
                                                   env: dict[str, str], clock: FixedClock) -> None:
    declare(allegiance, program.id, "order.placed")
    with allegiance.write() as uow:
        saved = uow.rules.save(program.id, {"rules": [{
            "code": "after-return-window", "name": "Points once the return window closes", "trigger": "order.placed",
            "action": {"kind": "fixed", "amount": 40}, "recipient": "organization", "timing": {"after_days": 30},
            "goal": {"behavior": "keep orders", "metric": "return rate", "expected_uplift": "-2 %"}}]}, by="t")
        uow.rules.activate(program.id, saved["version"], by="t")
    org = f.organization(allegiance, program.id)
    with allegiance.write() as uow:
        uow.events.record_one(program.id, IncomingEvent(source_id="o1", type="order.placed",
                                                        occurred_at=clock.now(), organization_id=org["id"],
                                                        payload={}))
    pool = f.pool_account(allegiance, program.id, org["id"])

    def pool_balance() -> int:
        with allegiance.read() as uow:
            return uow.ledger.port.get_account(program.id, pool).balance or 0  # type: ignore[union-attr]

    with allegiance.write() as uow:
        assert uow.rules.release_due() == 0
    assert pool_balance() == 0
    clock.advance(timedelta(days=31))
    with allegiance.write() as uow:
        assert uow.rules.release_due() == 1
    with allegiance.write() as uow:
        assert uow.rules.release_due() == 0
    assert pool_balance() == 40


def test_simulate_a_file_over_a_period_writes_nothing(allegiance: Allegiance, program: ProgramFixture,
                                                      env: dict[str, str], tmp_path: Path) -> None:
    """A backtest from the command line: table and JSON, a file or a saved version, nothing written."""
    declare(allegiance, program.id, "course.module_completed")
    org = f.organization(allegiance, program.id)
    person = f.participant(allegiance, program.id, org["id"])
    with allegiance.write() as uow:
        for module in range(4):
            uow.events.record_one(program.id, IncomingEvent(
                source_id=f"sim{module}", type="course.module_completed",
                occurred_at=datetime(2026, 3, 2 + module, 9, tzinfo=UTC), organization_id=org["id"],
                participant_id=person["id"], payload={"module": module}))
    file = tmp_path / "rules.yaml"
    file.write_text(RULES)
    table = runner.invoke(app, ["rules", "simulate", program.slug, str(file), "--from", "2026-03-01",
                                "--to", "2026-03-04"], env=env)
    assert table.exit_code == 0, table.output
    assert "3 events replayed" in table.output and "300" in table.output  # 2..4 March: the --to day included
    as_json = runner.invoke(app, ["rules", "simulate", program.slug, str(file), "--from", "2026-03-01",
                                  "--to", "2026-03-31", "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["issued"] == {"PTS": 400} and report["participants_affected"] == 1
    with allegiance.read() as uow:
        assert uow.rule_store.versions(program.id) == []  # the file was not saved
        assert uow.ledger.port.get_account(  # type: ignore[union-attr]
            program.id, f.personal_account(allegiance, program.id, org["id"], person["id"])).balance == 0
    applied = runner.invoke(app, ["rules", "apply", program.slug, str(file)], env=env)
    assert applied.exit_code == 0
    saved = runner.invoke(app, ["rules", "simulate", program.slug, "--version", "1", "--from", "2026-03-01",
                                "--to", "2026-03-31", "--format", "json"], env=env)
    assert json.loads(saved.output)["rule_set_version"] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("amount: 100", "amount: -5"))
    refused = runner.invoke(app, ["rules", "simulate", program.slug, str(bad), "--from", "2026-03-01",
                                  "--to", "2026-03-31"], env=env)
    assert refused.exit_code == 2 and "bad.yaml:7" in refused.output and "rules[0].action.amount" in refused.output
    neither = runner.invoke(app, ["rules", "simulate", program.slug, "--from", "2026-03-01", "--to", "2026-03-31"],
                            env=env)
    assert neither.exit_code == 2
