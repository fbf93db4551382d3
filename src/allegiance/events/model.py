"""An incoming business event and the outcome of recording it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from allegiance.kernel.hashing import canonical_json_bytes


def event_fingerprint(type_: str, occurred_at: str, organization: int | str | None, participant: int | str | None,
                      payload_json: bytes) -> str:
    """What makes a retry "the same event": SHA-256 of the canonical JSON (``canonical_json_bytes``)
    of ``{"occurred_at", "organization", "participant", "payload", "type"}``.

    Spelled out key by key so the bulk importer can pass the payload bytes it stores anyway
    (``payload_json`` must be ``canonical_json_bytes(payload)``) instead of serialising the
    payload twice; the API (``IncomingEvent.fingerprint``) calls this same function, so both
    always agree that an event is a duplicate. A property test checks it equals hashing the dict.
    ``occurred_at`` is ``datetime.isoformat()`` of the event's aware time."""
    return hashlib.sha256(b"".join((
        b'{"occurred_at":', orjson.dumps(occurred_at), b',"organization":', orjson.dumps(organization),
        b',"participant":', orjson.dumps(participant), b',"payload":', payload_json,
        b',"type":', orjson.dumps(type_), b"}",
    ))).hexdigest()


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
        """What makes a retry "the same event": type, subject, time and payload (``event_fingerprint``)."""
        return event_fingerprint(self.type, self.occurred_at.isoformat(),
                                 self.organization_id or self.organization_external_id,
                                 self.participant_id or self.participant_external_id,
                                 canonical_json_bytes(self.payload))


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Recorded:
    event_id: int
    source_id: str
    outcome: Outcome
    transactions: tuple[int, ...] = ()
