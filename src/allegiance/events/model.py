"""An incoming business event and the outcome of recording it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from allegiance.kernel.hashing import digest


@dataclass(frozen=True)
class IncomingEvent:
    source_id: str
    type: str
    occurred_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    organization_id: int | None = None
    organization_external_id: str | None = None
    participant_id: int | None = None
    participant_external_id: str | None = None

    def fingerprint(self) -> str:
        """What makes a retry "the same event": type, subject, time and payload."""
        return digest({
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "payload": self.payload,
            "organization": self.organization_id or self.organization_external_id,
            "participant": self.participant_id or self.participant_external_id,
        })


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Recorded:
    event_id: int
    source_id: str
    outcome: Outcome
    transactions: tuple[int, ...] = ()
