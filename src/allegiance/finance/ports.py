"""What finance reads from storage (and the one thing it writes: expiry notice claims + outbox)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any, Protocol

from allegiance.finance.breakage import CohortFlow
from allegiance.finance.model import Balances, ExpiringLot


class FinancePort(Protocol):
    def unit_balances(self, program_id: int) -> list[Balances]: ...

    def organization_balances(self, program_id: int, *, after: int, limit: int,
                              organization_id: int | None = None) -> list[tuple[int, list[Balances]]]:
        """Organizations with id > after (at most limit + 1), each with its balances per unit."""

    def partner_positions(self, program_id: int) -> list[dict[str, Any]]:
        """Each partner with the balance of its settlement account (Σ postings, via shards)."""

    def cohort_flows(self, program_id: int, as_of: datetime) -> Iterator[CohortFlow]:
        """Lot credits and debits of lots expiring on or before ``as_of``, by transaction kind."""

    def cohort_remaining(self, program_id: int, as_of: datetime) -> dict[tuple[str, date], int]: ...

    def expirable_outstanding(self, program_id: int) -> dict[str, int]:
        """Σ remaining of holder lots that have an expiry, per unit."""

    def expiring_lots(self, program_id: int, after: datetime, until: datetime) -> Iterator[ExpiringLot]: ...

    def claim_notice(self, program_id: int, organization_id: int, unit: str, expires_on: date, amount: int) -> bool:
        """True if this (organization, unit, day) had not been announced yet (and now is)."""

    def export_postings(self, program_id: int, start: datetime, end: datetime) -> Iterator[dict[str, Any]]: ...

    def export_totals(self, program_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]: ...

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None: ...
