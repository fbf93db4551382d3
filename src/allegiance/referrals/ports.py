"""What the referral use cases need from storage. Every method runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, Protocol


class ReferralsPort(Protocol):
    def settings(self, program_id: int) -> dict[str, Any] | None: ...
    def save_settings(self, program_id: int, document: dict[str, Any], by: str) -> None: ...
    def code_of(self, program_id: int, participant_id: int) -> dict[str, Any] | None: ...
    def code(self, program_id: int, code: str) -> dict[str, Any] | None: ...

    def insert_code(self, values: dict[str, Any]) -> bool:
        """Insert if neither the participant nor the code exists yet; False when something did."""

    def retire_codes(self, program_id: int, participant_id: int) -> None: ...

    def insert_referral(self, values: dict[str, Any]) -> int | None:
        """None (nothing written) when the organization was already referred."""

    def referral(self, program_id: int, referral_id: int) -> dict[str, Any] | None: ...
    def referral_of(self, program_id: int, organization_id: int) -> dict[str, Any] | None: ...

    def waiting_among(self, program_id: int, organization_ids: Collection[int]) -> set[int]:
        """Those of the organizations that were referred and have not yet placed a qualifying order."""
    def count_since(self, program_id: int, since: datetime, *, code_id: int | None = None,
                    source: str | None = None) -> int: ...

    def move(self, referral_id: int, version: int, status_from: str, values: dict[str, Any]) -> bool:
        """Compare-and-set on version and status; False when someone else moved it first."""

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None: ...
