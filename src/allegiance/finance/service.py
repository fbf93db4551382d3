"""Finance use cases: liability, breakage, expiring-soon notices and the reconciling export.

Raises: ``ValidationFailed`` (bad period or days, naming the field), ``NotFound`` (program).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from allegiance.finance.breakage import cohorts, estimate
from allegiance.finance.expiring import TOPIC, ExpiringNotice, notices
from allegiance.finance.model import Balances, money
from allegiance.finance.ports import FinancePort
from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import ValidationFailed
from allegiance.kernel.rates import round_half_up
from allegiance.programs.model import ProgramSettings
from allegiance.programs.service import ProgramsService

MAX_DAYS = 3660


def _period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValidationFailed("the period must end after it starts", field="to")


class FinanceService:
    def __init__(self, port: FinancePort, programs: ProgramsService, clock: Clock) -> None:
        self.port = port
        self.programs = programs
        self.clock = clock

    def _line(self, settings: ProgramSettings, balances: Balances) -> dict[str, Any]:
        config = settings.unit(balances.unit)
        cost = config.cost_per_point if config else None
        return {"unit": balances.unit, "available": balances.available, "held": balances.held,
                "outstanding": balances.outstanding, "accounts": balances.accounts,
                "value": money(balances.outstanding, cost), "held_value": money(balances.held, cost)}

    # -- liability ---------------------------------------------------------------------------------
    def liability(self, program_id: int) -> dict[str, Any]:
        """What the program owes now: per unit (available + held separately) valued at the unit's
        cost per point, and each partner's net settlement position in points."""
        settings = self.programs.settings(program_id)
        units = {b.unit: b for b in self.port.unit_balances(program_id)}
        lines = [self._line(settings, units.get(u.code, Balances(u.code, 0, 0, 0))) for u in settings.units]
        partners = [{"partner_id": row["id"], "code": row["code"], "name": row["name"], "unit": row["unit"],
                     "account_id": row["account_id"], "balance": row["balance"],
                     "position": "operator_owes" if row["balance"] > 0 else
                     "partner_owes" if row["balance"] < 0 else "even"}
                    for row in self.port.partner_positions(program_id)]
        return {"as_of": self.clock.now(), "units": lines, "partners": partners}

    def organizations_liability(self, program_id: int, *, after: int = 0, limit: int = 50,
                                organization_id: int | None = None) -> list[dict[str, Any]]:
        settings = self.programs.settings(program_id)
        return [{"id": org_id, "organization_id": org_id, "units": [self._line(settings, b) for b in balances]}
                for org_id, balances in self.port.organization_balances(
                    program_id, after=after, limit=limit, organization_id=organization_id)]

    # -- breakage -------------------------------------------------------------------------------
    def breakage(self, program_id: int, as_of: datetime | None = None) -> dict[str, Any]:
        """Breakage rate per unit from closed expiry cohorts, and what it predicts for today's
        expirable outstanding points (see ``finance.breakage`` for the estimator)."""
        settings = self.programs.settings(program_id)
        when = as_of or self.clock.now()
        found = cohorts(self.port.cohort_flows(program_id, when), self.port.cohort_remaining(program_id, when),
                        when.date())
        estimates = estimate(found)
        expirable = self.port.expirable_outstanding(program_id)
        units = []
        for config in settings.units:
            est = estimates.get(config.code)
            rate = est.rate if est else 0
            expected = round_half_up(rate * expirable.get(config.code, 0)) if est else 0
            units.append({
                "unit": config.code, "closed_cohorts": est.closed_cohorts if est else 0,
                "issued": est.issued if est else 0, "expired": est.expired if est else 0,
                "breakage_rate": est.rate_text() if est else None,
                "expirable_outstanding": expirable.get(config.code, 0), "expected_breakage": expected,
                "expected_breakage_value": money(expected, config.cost_per_point),
            })
        closed = [{"unit": c.unit, "expires_on": c.expires_on.isoformat(), "issued": c.issued, "expired": c.expired}
                  for c in found if c.closed]
        return {"as_of": when, "units": units, "cohorts": closed}

    # -- expiring soon --------------------------------------------------------------------------
    def expiring(self, program_id: int, days: int) -> list[ExpiringNotice]:
        if not 1 <= days <= MAX_DAYS:
            raise ValidationFailed(f"must be 1 to {MAX_DAYS}", field="days")
        now = self.clock.now()
        return notices(self.port.expiring_lots(program_id, now, now + timedelta(days=days)))

    def notify_expiring(self, program_id: int, days: int) -> dict[str, Any]:
        """Write one ``points.expiring_soon`` event per (organization, unit, expiry day) not announced
        before. Idempotent: a re-run announces nothing new for the same days."""
        found = self.expiring(program_id, days)
        announced = 0
        for notice in found:
            if self.port.claim_notice(program_id, notice.organization_id, notice.unit, notice.expires_on,
                                      notice.amount):
                self.port.emit(program_id, TOPIC, notice.payload(days), notice.organization_id)
                announced += 1
        return {"days": days, "found": len(found), "announced": announced}

    # -- export ---------------------------------------------------------------------------------
    def export_postings(self, program_id: int, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        _period(start, end)
        return self.port.export_postings(program_id, start, end)

    def export_totals(self, program_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per account: opening (before ``start``), movement (in the period), closing — closing equals
        the account's ledger balance at ``end``, so finance can tie the export out."""
        _period(start, end)
        return self.port.export_totals(program_id, start, end)
