"""Administration commands through the real CLI entry point."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from allegiance.bootstrap import Allegiance
from allegiance.cli.main import app
from tests import factories as f
from tests.conftest import TEST_SECRET, ProgramFixture

runner = CliRunner()


@pytest.fixture
def env(db_url: str) -> dict[str, str]:
    return {"ALLEGIANCE_DATABASE_URL": db_url, "ALLEGIANCE_ENVIRONMENT": "test", "ALLEGIANCE_SECRET_KEY": TEST_SECRET}


def test_ledger_verify_passes_then_names_a_tampered_row(allegiance: Allegiance, program: ProgramFixture,
                                                        env: dict[str, str]) -> None:
    org = f.organization(allegiance, program.id)
    f.fund(allegiance, program.id, f.pool_account(allegiance, program.id, org["id"]), 500)
    ok = runner.invoke(app, ["ledger", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "every invariant holds" in ok.output
    with allegiance.write() as uow:
        uow.conn.execute(text("UPDATE transactions SET memo = 'edited'"))
    broken = runner.invoke(app, ["ledger", "verify"], env=env)
    assert broken.exit_code == 1
    assert "was altered" in broken.output


def test_keys_and_users_are_created_from_the_cli(allegiance: Allegiance, program: ProgramFixture,
                                                 env: dict[str, str]) -> None:
    created = runner.invoke(app, ["keys", "create", "--program", program.slug, "--role", "integration"], env=env)
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    with allegiance.read() as uow:
        principal = uow.access.principal_for_key(key)
    assert principal is not None and principal.role.value == "integration"
    user = runner.invoke(app, ["users", "create", "ops@example.com", "--password", "long-enough-pw"], env=env)
    assert user.exit_code == 0, user.output
    with allegiance.read() as uow:
        assert uow.access.authenticate("ops@example.com", "long-enough-pw") is not None
    duplicate = runner.invoke(app, ["users", "create", "ops@example.com", "--password", "long-enough-pw"], env=env)
    assert duplicate.exit_code == 2


@pytest.mark.parametrize(("args", "message"), [
    (["keys", "create", "--program", "nope"], "no program"),
    (["keys", "create", "--program", "{slug}", "--role", "org_admin"], "--organization-id"),
    (["keys", "create", "--program", "{slug}", "--role", "org_admin", "--organization-id", "999999"], "not found"),
    (["users", "create", "a@b.c", "--password", "short"], "8 characters"),
])
def test_bad_input_exits_2_with_a_reason(program: ProgramFixture, env: dict[str, str], args: list[str],
                                         message: str) -> None:
    result = runner.invoke(app, [a.format(slug=program.slug) for a in args], env=env)
    assert result.exit_code == 2
    assert message in result.output


def test_a_placeholder_secret_outside_development_is_refused(db_url: str) -> None:
    result = runner.invoke(app, ["ledger", "verify"], env={"ALLEGIANCE_DATABASE_URL": db_url,
                                                            "ALLEGIANCE_ENVIRONMENT": "production",
                                                            "ALLEGIANCE_SECRET_KEY": "change-me"})
    assert result.exit_code == 2
    assert "ALLEGIANCE_SECRET_KEY" in result.output


def test_an_org_admin_sign_in_is_linked_to_an_admin_participant(allegiance: Allegiance, program: ProgramFixture,
                                                                env: dict[str, str]) -> None:
    org = f.organization(allegiance, program.id)
    admin = f.participant(allegiance, program.id, org["id"], is_org_admin=True)
    staff = f.participant(allegiance, program.id, org["id"])
    args = ["users", "create", "boss@dealer.example", "--password", "long-enough-pw", "--program", program.slug]
    created = runner.invoke(app, [*args, "--participant-id", str(admin["id"])], env=env)
    assert created.exit_code == 0, created.output
    with allegiance.read() as uow:
        user = uow.access.authenticate("boss@dealer.example", "long-enough-pw")
    assert user is not None and user["participant_id"] == admin["id"]
    refused = runner.invoke(app, ["users", "create", "staff@dealer.example", "--password", "long-enough-pw",
                                  "--program", program.slug, "--participant-id", str(staff["id"])], env=env)
    assert refused.exit_code == 2 and "not an active organization admin" in refused.output
    no_program = runner.invoke(app, ["users", "create", "x@dealer.example", "--password", "long-enough-pw",
                                     "--participant-id", str(admin["id"])], env=env)
    assert no_program.exit_code == 2 and "--program" in no_program.output
    with allegiance.read() as uow:
        assert uow.access.authenticate("staff@dealer.example", "long-enough-pw") is None
