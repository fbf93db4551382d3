"""The contract between recorded events and the ledger.

An engine looks at one event (with its organization and participant context) and returns
``AwardIntent`` values — it never writes. The event pipeline turns intents into ledger postings
and outbox rows inside the transaction that stores the event, so an event and its points commit
together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class EventContext:
    program_id: int
    event_id: int
    type: str
    occurred_at: datetime
    payload: dict[str, Any]
    organization: dict[str, Any] | None
    participant: dict[str, Any] | None


@dataclass(frozen=True)
class AwardIntent:
    unit: str
    amount: int
    organization_id: int
    participant_id: int | None
    rule: str
    reason: str
    inputs: dict[str, Any] = field(default_factory=dict)


class RuleEngine(Protocol):
    def evaluate(self, event: EventContext) -> list[AwardIntent]: ...

    def is_idle(self, program_id: int) -> bool:
        """True when no rule can fire in this program, so bulk paths may skip evaluation."""


class NoRules:
    """The default until programs define rules: events are stored, nothing is awarded."""

    def evaluate(self, event: EventContext) -> list[AwardIntent]:
        return []

    def is_idle(self, program_id: int) -> bool:
        return True
