"""``allegiance partners``: the settlement of a coalition partner over a period, as JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from allegiance.cli.common import application, console, fail, guarded, program_id_for
from allegiance.kernel.periods import day_range
from allegiance.storage.tables_partners import partners as partners_table

partners_app = typer.Typer(help="Coalition partners: settlement reports.", no_args_is_help=True)
COLUMNS = ("partner_id", "partner_code", "start", "end", "unit", "currency", "currency_scale", "points_issued",
           "points_redeemed", "net_points", "partner_owes_minor", "operator_owes_minor", "net_minor", "transactions",
           "reversals")


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


def _resolve(app: Any, partner: str, program: str | None) -> tuple[int, int]:
    """(program id, partner id) from a partner code or id, within ``--program`` when given."""
    from sqlalchemy import select

    query = select(partners_table.c.program_id, partners_table.c.id)
    query = query.where(partners_table.c.id == int(partner)) if partner.isdigit() else \
        query.where(partners_table.c.code == partner)
    if program is not None:
        query = query.where(partners_table.c.program_id == program_id_for(app, program))
    with app.read() as uow:
        found = uow.conn.execute(query).all()
    if not found:
        fail(f"no partner {partner!r}" + (f" in program {program!r}" if program else ""))
    if len(found) > 1:
        fail(f"partner code {partner!r} exists in several programs: name one with --program")
    return int(found[0][0]), int(found[0][1])


@partners_app.command("settlement")
def settlement(
    partner: Annotated[str, typer.Argument(help="The partner's code (or id)")],
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day (UTC), included")],
    end: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (UTC), included")],
    output: Annotated[Format, typer.Option("--format", help="json or csv")] = Format.JSON,
    program: Annotated[str | None, typer.Option(help="The program's slug (needed if the code is ambiguous)")] = None,
) -> None:
    """Points issued and redeemed with the partner, and the money owed each way, from the ledger."""
    with application() as app:
        program_id, partner_id = _resolve(app, partner, program)
        first, last = guarded(lambda: day_range(start.date(), end.date()))

        def run() -> dict[str, Any]:
            with app.read() as uow:
                return uow.partners.settlement(program_id, partner_id, first, last).as_dict()

        report = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in guarded(run).items()}
    if output is Format.JSON:
        console.print_json(json.dumps(report))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow(report)
