"""What the partners domain needs from storage. Every method runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from allegiance.partners.settlement import SettlementPosting


class PartnersPort(Protocol):
    def partner(self, program_id: int, partner_id: int) -> dict[str, Any] | None: ...

    def partner_by_code(self, program_id: int, code: str) -> dict[str, Any] | None: ...

    def partners(self, program_id: int, *, after: int, limit: int) -> list[dict[str, Any]]: ...

    def insert_partner(self, values: dict[str, Any]) -> int: ...

    def update_partner(self, partner_id: int, changes: dict[str, Any]) -> None: ...

    def settlement_account(self, program_id: int, partner_id: int, unit: str) -> int:
        """Get or create (race-safe) the partner's settlement account; returns its id."""

    def bind_key(self, program_id: int, partner_id: int, api_key_id: int) -> None: ...

    def partner_of_key(self, program_id: int, api_key_id: int) -> int | None: ...

    def claim_operation(self, values: dict[str, Any]) -> dict[str, Any]:
        """Insert the operation unless its (partner, operation, reference) exists; return the row.
        A row without a ``transaction_id`` is the caller's own fresh claim."""

    def complete_operation(self, operation_id: int, transaction_id: int) -> None: ...

    def operation(self, program_id: int, partner_id: int, operation_id: int) -> dict[str, Any] | None: ...

    def operations(self, program_id: int, partner_id: int, *, after: int, limit: int) -> list[dict[str, Any]]: ...

    def mark_reversed(self, operation_id: int, transaction_id: int, now: datetime) -> bool:
        """False if it was already reversed (lost race)."""

    def settlement_postings(self, account_id: int, start: datetime, end: datetime) -> Iterator[SettlementPosting]:
        """Postings on the account of transactions created in [start, end), in id order."""

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None: ...
