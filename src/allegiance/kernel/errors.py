"""The error tree every edge (API, CLI, web) maps to a response.

    AllegianceError            code, message, field (JSON pointer-ish path), data
    ├── ValidationFailed       bad input: a field and the reason            → 422 / exit 2
    ├── NotFound               missing *or not yours* (never reveals which) → 404
    ├── Conflict               state does not allow it (duplicate, resolved) → 409
    │   ├── IdempotencyInFlight    the same key is still being processed    → 409
    │   └── IdempotencyKeyReused   same key, other payload                   → 422
    ├── InsufficientFunds      an account would go below zero               → 409
    ├── Forbidden              authenticated but not allowed                 → 403
    └── Unauthenticated        no or bad credentials                         → 401

Domain packages subclass these with their own stable ``code`` so clients can branch on it.
"""

from __future__ import annotations

from typing import Any


class AllegianceError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.data = data

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationFailed(AllegianceError):
    code = "validation_failed"
    status = 422


class NotFound(AllegianceError):
    code = "not_found"
    status = 404


class Conflict(AllegianceError):
    code = "conflict"
    status = 409


class IdempotencyInFlight(Conflict):
    code = "idempotency_in_flight"


class IdempotencyKeyReused(AllegianceError):
    code = "idempotency_key_reused"
    status = 422


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class Forbidden(AllegianceError):
    code = "forbidden"
    status = 403


class Unauthenticated(AllegianceError):
    code = "unauthenticated"
    status = 401
