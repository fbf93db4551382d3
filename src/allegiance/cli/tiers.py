"""``allegiance tiers``: keep a program's tier ladder in a YAML/JSON file, and run the review job."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from allegiance.cli.common import application, console, guarded, program_id_for
from allegiance.cli.rules import _fail_on, load_document
from allegiance.kernel.errors import AllegianceError

tiers_app = typer.Typer(help="Tier ladders as data, and the review job (downgrades at period end).",
                        no_args_is_help=True)


@tiers_app.command("apply")
def apply_ladder(
    program: Annotated[str, typer.Argument(help="The program's slug")],
    file: Annotated[Path, typer.Argument(help="A ladder as YAML or JSON (see GET /api/v1/tiers/schema)",
                                         exists=True, dir_okay=False, readable=True)],
) -> None:
    """Create the ladder, or replace the one with the same code; totals are rebuilt from stored events."""
    document, text = load_document(file)
    with application() as app:
        program_id = program_id_for(app, program)
        code = document.get("code") if isinstance(document, dict) else None
        try:
            with app.write() as uow:
                exists = isinstance(code, str) and uow.tier_store.ladder(program_id, code) is not None
                saved = uow.tiers.save_ladder(program_id, document, by="cli", code=code if exists else None)
        except AllegianceError as exc:
            _fail_on(file, text, exc)
            raise
    console.print(f"ladder [bold]{saved['code']}[/bold] saved (version {saved['version']}, "
                  f"{len(saved['document']['tiers'])} tiers)")


@tiers_app.command("review")
def review(program: Annotated[str, typer.Argument(help="The program's slug")]) -> None:
    """Re-qualify every organization and person: upgrade at once, warn, and downgrade those whose
    grace period after a failed period-end review is over. Idempotent: run it daily from cron."""
    with application() as app:
        program_id = program_id_for(app, program)

        def run() -> dict[str, int]:
            with app.write() as uow:
                return uow.tiers.review(program_id)

        counts = guarded(run)
    table = Table("reviewed", "upgraded", "warned", "downgraded")
    table.add_row(*(f"{counts[k]:,}" for k in ("reviewed", "upgraded", "warned", "downgraded")))
    console.print(table)
