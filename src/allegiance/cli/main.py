"""The ``allegiance`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from allegiance.cli.admin import db_app, keys_app, ledger_app, programs_app, users_app
from allegiance.cli.analytics import analytics_app
from allegiance.cli.demo import register as register_demo
from allegiance.cli.events import events_app
from allegiance.cli.finance import finance_app
from allegiance.cli.partners import partners_app
from allegiance.cli.rewards import rewards_app
from allegiance.cli.rules import rules_app
from allegiance.cli.tiers import tiers_app

app = typer.Typer(
    name="allegiance",
    help="Allegiance: B2B loyalty, retention and expansion programs. Configure with ALLEGIANCE_* variables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(programs_app, name="programs")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(ledger_app, name="ledger")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only; SQLite uses 1)")] = 1,
) -> None:
    """Serve the REST API (/api/v1, /docs) and the operator pages (/)."""
    import uvicorn

    from allegiance.cli.common import settings

    configured = settings()
    if configured.database_url.startswith("sqlite"):
        workers = 1  # one writer process: the in-process lock keeps SQLite's tail latency low
    uvicorn.run("allegiance.asgi:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=configured.log_level.lower(), access_log=False)


app.add_typer(events_app, name="events")
app.add_typer(rules_app, name="rules")
app.add_typer(rewards_app, name="rewards")
app.add_typer(partners_app, name="partners")
app.add_typer(finance_app, name="finance")
app.add_typer(tiers_app, name="tiers")
app.add_typer(analytics_app, name="analytics")
register_demo(app)
