"""Administration commands: database, programs, keys, users, ledger verification and jobs."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.table import Table

from allegiance.access.model import KeyRole
from allegiance.cli.common import application, console, err, fail, guarded, program_id_for, settings
from allegiance.programs.model import ProgramSettings

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
programs_app = typer.Typer(help="Create and list loyalty programs.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create, list and revoke.", no_args_is_help=True)
users_app = typer.Typer(help="Operator users who sign in to the web pages.", no_args_is_help=True)
ledger_app = typer.Typer(help="Prove and maintain the ledger.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Create or migrate the schema of ALLEGIANCE_DATABASE_URL to the latest revision."""
    from allegiance.storage.migrate import upgrade

    url = settings().database_url
    upgrade(url, revision)
    console.print(f"[green]database at {revision}[/green]: {url.split('@')[-1]}")


@programs_app.command("create")
def programs_create(
    slug: Annotated[str, typer.Argument(help="Short unique name, e.g. dealer-club")],
    name: Annotated[str, typer.Option(help="Display name")] = "",
    config: Annotated[typer.FileText | None, typer.Option(help="JSON file with program settings")] = None,
) -> None:
    """Create a program with its units, roles, split, leaver and expiry policies."""
    try:
        program_settings = ProgramSettings.model_validate(json.load(config)) if config else ProgramSettings()
    except (ValueError, json.JSONDecodeError) as exc:
        fail(f"{config.name if config else 'settings'}: {exc}")
        raise
    with application() as app:
        def create() -> dict[str, object]:
            with app.write() as uow:
                return uow.programs.create_program(slug, name or slug, program_settings)

        program = guarded(create)
    console.print(f"program [bold]{program['slug']}[/bold] created (id {program['id']})")


@programs_app.command("configure")
def programs_configure(
    slug: Annotated[str, typer.Argument(help="The program's slug")],
    config: Annotated[typer.FileText, typer.Option(help="JSON file with the full program settings")],
) -> None:
    """Replace a program's settings (units and roles can be added, never removed)."""
    try:
        program_settings = ProgramSettings.model_validate(json.load(config))
    except (ValueError, json.JSONDecodeError) as exc:
        fail(f"{config.name}: {exc}")
        raise
    with application() as app:
        program_id = program_id_for(app, slug)

        def configure() -> dict[str, object]:
            with app.write() as uow:
                return uow.programs.configure(program_id, program_settings)

        guarded(configure)
    console.print(f"program [bold]{slug}[/bold] configured")


@programs_app.command("list")
def programs_list() -> None:
    from sqlalchemy import select

    from allegiance.storage import tables as t

    with application() as app, app.read() as uow:
        rows = uow.conn.execute(select(t.programs.c.id, t.programs.c.slug, t.programs.c.name)).all()
    table = Table("id", "slug", "name")
    for row in rows:
        table.add_row(str(row.id), row.slug, row.name)
    console.print(table)


@keys_app.command("create")
def keys_create(
    program: Annotated[str, typer.Option(help="Program slug")],
    role: Annotated[KeyRole, typer.Option(help="operator, org_admin, integration or participant")] = KeyRole.OPERATOR,
    name: Annotated[str, typer.Option(help="What the key is for")] = "cli",
    organization_id: Annotated[int | None, typer.Option(help="For org_admin keys")] = None,
    participant_id: Annotated[int | None, typer.Option(help="For participant keys")] = None,
) -> None:
    """Create an API key. The secret is printed once; only its hash is stored."""
    with application() as app:
        program_id = program_id_for(app, program)
        if role is KeyRole.ORG_ADMIN and organization_id is None:
            fail("--organization-id is required for an org_admin key")
        if role is KeyRole.PARTICIPANT and participant_id is None:
            fail("--participant-id is required for a participant key")

        def create() -> tuple[int, str]:
            with app.write() as uow:
                org = organization_id
                if participant_id is not None:
                    org = uow.programs.participant(program_id, participant_id)["organization_id"]
                elif org is not None:
                    uow.programs.organization(program_id, org)
                return uow.access.create_key(program_id, name, role, organization_id=org,
                                             participant_id=participant_id)

        key_id, key = guarded(create)
    console.print(f"key {key_id} ({role.value}) for {program}:")
    print(key)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="Sign-in e-mail")],
    name: Annotated[str, typer.Option(help="Display name")] = "",
    password: Annotated[str | None, typer.Option(help="Omit to be prompted", envvar="ALLEGIANCE_USER_PASSWORD")] = None,
    participant_id: Annotated[int | None, typer.Option(
        help="Make it an organization admin's sign-in: this participant (flagged org admin) sees and approves "
             "only their organization's redemptions")] = None,
    program: Annotated[str | None, typer.Option(help="Program slug (with --participant-id)")] = None,
) -> None:
    """Create a user for the web pages (password stored with scrypt): operator staff, or with
    --participant-id an organization admin."""
    if participant_id is not None and program is None:
        fail("--program is required with --participant-id")
    if password is None:
        password = getpass.getpass("Password: ")
    if len(password) < 8:
        fail("the password must have at least 8 characters")
    with application() as app:
        program_id = program_id_for(app, program) if program is not None else None

        def create() -> int:
            with app.write() as uow:
                if participant_id is not None and program_id is not None:
                    person = uow.programs.participant(program_id, participant_id)
                    if not person["is_org_admin"] or person["status"] == "left":
                        fail(f"participant {participant_id} is not an active organization admin")
                return uow.access.create_user(email, name or email, password, participant_id=participant_id)

        try:
            user_id = guarded(create)
        except Exception as exc:  # unique e-mail
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                fail(f"a user with e-mail {email} exists")
            raise
    console.print(f"user {user_id} created: {email}")


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every ledger invariant (balance, conservation, lots, holds, hash chain).
    Exits 1 and names each problem when one fails."""
    from allegiance.storage.verify import verify

    with application() as app, app.read() as uow:
        report = verify(uow.conn)
    table = Table("check", "result")
    for name, value in report.checked.items():
        table.add_row(name, str(value))
    console.print(table)
    if not report.ok:
        for problem in report.problems:
            err.print(f"[red]✗[/red] {problem}")
        raise typer.Exit(1)
    console.print("[green]ledger verified: every invariant holds[/green]")


@ledger_app.command("expire")
def ledger_expire() -> None:
    """Run the expiry jobs: expire past-due lots and pending holds. Safe to run any number of times."""
    with application() as app:
        holds = 0
        while True:
            with app.write() as uow:
                done = uow.ledger.expire_due_holds(limit=200)
            holds += done
            if done < 200:
                break
        lots = 0
        with app.read() as uow:
            accounts = uow.ledger_store.expired_lot_accounts(app.clock.now(), limit=1_000_000)
        for account_id in accounts:
            with app.write() as uow:
                if uow.ledger.expire_lots_of(account_id) is not None:
                    lots += 1
    console.print(f"expired {holds} holds and lots in {lots} accounts")
