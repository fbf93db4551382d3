"""What the rules domain needs from storage (and from the tiers domain)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from allegiance.rules.evaluate import CompiledRuleSet
from allegiance.rules.settle import CounterKey, Counters
from allegiance.rules.simulate import StoredEvent


class RulesPort(Protocol):
    def save_version(self, program_id: int, document: dict[str, Any], *, by: str, note: str) -> int: ...

    def version(self, program_id: int, version: int) -> dict[str, Any] | None: ...
    def compiled(self, program_id: int, version: int) -> CompiledRuleSet | None: ...

    def versions(self, program_id: int, limit: int = 100) -> list[dict[str, Any]]: ...

    def latest_version(self, program_id: int) -> dict[str, Any] | None: ...

    def activate(self, program_id: int, version: int, *, by: str) -> bool: ...

    def active(self, program_id: int) -> CompiledRuleSet | None: ...

    def counters(self, program_id: int) -> Counters: ...

    def peek_counters(self, program_id: int) -> Counters:
        """Counters read as they stand, additions kept in memory: nothing is locked or written."""

    def read_counters(self, program_id: int, keys: Sequence[CounterKey]) -> dict[CounterKey, tuple[int, int]]: ...

    def insert_award(self, values: dict[str, Any]) -> int: ...

    def update_award(self, award_id: int, values: dict[str, Any], *, expected_status: str | None = None) -> bool: ...

    def awards_by_key(self, program_id: int, rules: Sequence[str], key: str) -> list[dict[str, Any]]: ...

    def pending_released_by(self, program_id: int, event_type: str, key: str) -> list[dict[str, Any]]: ...

    def pending_due(self, now: datetime, limit: int) -> list[dict[str, Any]]: ...

    def contest_scores(self, program_id: int, name: str, period: str) -> list[tuple[int, int]]: ...

    def benefit(self, program_id: int, award_id: int, *, lock: bool = False) -> dict[str, Any] | None: ...

    def benefits_of(self, program_id: int, organization_ids: Sequence[int]) -> list[dict[str, Any]]: ...

    def insert_assignment(self, values: dict[str, Any]) -> int: ...

    def assignments(self, program_id: int, *, award_id: int | None = None,
                    assignee_ref: str | None = None) -> list[dict[str, Any]]: ...

    def emit(self, program_id: int, topic: str, payload: dict[str, Any], organization_id: int | None) -> None: ...

    def stream_events(self, program_id: int, event_type: str, start: datetime, end: datetime,
                      chunk: int = 5_000) -> Iterator[StoredEvent]:
        """Stored events of a type in [start, end), in (occurred_at, id) order, read a chunk at a time."""

    def count_events(self, program_id: int, event_types: Sequence[str], start: datetime, end: datetime) -> int:
        """How many stored events of those types are in [start, end)."""

    def subjects(self, program_id: int, organization_ids: Collection[int],
                 participant_ids: Collection[int]) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        """Organizations and participants by id."""


class TierView(Protocol):
    """The slice of the tiers domain the rules need: an organization's tier and earn multiplier,
    and where tier-qualifying credits go."""

    def tier_of(self, program_id: int, organization_id: int, *,
                organization: Mapping[str, Any] | None = None) -> tuple[str | None, Decimal]:
        """``organization``: its row, when the caller has just read it (a program without a ladder
        takes the tier from the row's attributes, which then is not read again)."""

    def add_qualifying_credit(self, program_id: int, organization_id: int, participant_id: int | None, amount: int,
                              occurred_at: datetime, event_id: int | None, rule: str) -> None: ...


class NoTiers:
    """Until a program defines tier ladders: no tier, multiplier 1, credits recorded nowhere else."""

    def tier_of(self, program_id: int, organization_id: int, *,
                organization: Mapping[str, Any] | None = None) -> tuple[str | None, Decimal]:
        return None, Decimal(1)

    def add_qualifying_credit(self, program_id: int, organization_id: int, participant_id: int | None, amount: int,
                              occurred_at: datetime, event_id: int | None, rule: str) -> None:
        return None
