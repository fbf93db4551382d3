"""A backtest evaluated in a second process (``storage.backtest_feed``) reports exactly what the
one-process backtest reports, on SQLite and PostgreSQL; a second process that fails is an error,
never a partial report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from allegiance.bootstrap import Allegiance
from allegiance.cli.main import app as cli
from allegiance.storage.backtest_feed import FeedFailed, evaluated_in_child
from tests.conftest import ProgramFixture, make_settings
from tests.rules.test_simulate import END, START, draft, program_with_history, record_all


@pytest.mark.parametrize(("count", "seed"), [(160, 11), (120, 5)])
def test_two_processes_report_what_one_process_reports(allegiance: Allegiance, program: ProgramFixture, count: int,
                                                       seed: int) -> None:
    events = program_with_history(allegiance, program, count, seed=seed)
    record_all(allegiance, program.id, events, "history")
    with allegiance.write() as uow:
        version = int(uow.rules.save(program.id, draft(), by="test")["version"])
    with allegiance.read() as uow:
        alone = uow.rules.simulate(program.id, version, START, END)
        paired = uow.rules.simulate(program.id, version, START, END, feed=evaluated_in_child(allegiance.settings))
        document = uow.rules.simulate(program.id, draft(), START, END, feed=evaluated_in_child(allegiance.settings))
    assert alone.events_read == count and alone.awards > 0 and alone.clawed_back and alone.caps_hit
    assert paired.as_dict() == alone.as_dict()
    assert {**document.as_dict(), "rule_set_version": version} == alone.as_dict()


def test_a_failed_second_process_is_an_error_not_a_short_report(allegiance: Allegiance, program: ProgramFixture,
                                                                tmp_path: Path) -> None:
    events = program_with_history(allegiance, program, 30)
    record_all(allegiance, program.id, events, "h")
    elsewhere = make_settings(f"sqlite:///{tmp_path / 'missing' / 'none.db'}")  # the child cannot open it
    with allegiance.read() as uow, pytest.raises(FeedFailed, match="exit code"):
        uow.rules.simulate(program.id, draft(), START, END, feed=evaluated_in_child(elsewhere))


def test_the_command_runs_in_two_processes_when_asked(allegiance: Allegiance, program: ProgramFixture,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = program_with_history(allegiance, program, 80)
    record_all(allegiance, program.id, events, "h")
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump(draft()))
    monkeypatch.setenv("ALLEGIANCE_DATABASE_URL", allegiance.settings.database_url)
    reports = []
    for flag in ("--parallel", "--no-parallel"):
        result = CliRunner().invoke(cli, ["rules", "simulate", program.slug, str(path), "--from", START.isoformat(),
                                          "--to", END.isoformat(), "--format", "json", flag])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.output))
    assert reports[0] == reports[1] and reports[0]["events_read"] == 80
