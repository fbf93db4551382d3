"""Rewards jobs: redemptions and concierge quotes nobody resolved in time give back what they held.

Meant for cron (or a systemd timer) next to ``allegiance ledger expire``; each run is safe to
repeat: a redemption already expired is skipped, never expired twice.
"""

from __future__ import annotations

import typer

from allegiance.cli.common import application, console

rewards_app = typer.Typer(help="Rewards catalog and redemptions: the expiry job.", no_args_is_help=True)

BATCH = 200


@rewards_app.command("expire")
def rewards_expire() -> None:
    """Expire redemptions past their hold deadline (releasing points, stock and gift allowance) and
    concierge quotes past their validity."""
    with application() as app:
        redemptions = quotes = 0
        while True:
            with app.write() as uow:
                done = uow.rewards.expire_due(limit=BATCH)
            redemptions += done
            if done < BATCH:
                break
        while True:
            with app.write() as uow:
                done = uow.concierge.expire_due(limit=BATCH)
            quotes += done
            if done < BATCH:
                break
    console.print(f"expired {redemptions} redemptions and {quotes} concierge quotes")
