"""Idempotency-Key handling for API writes (Stripe / IETF draft semantics).

* same key, same request → the stored response again, with ``Idempotency-Hit: true``;
* same key, other request → 422 ``idempotency_key_reused`` naming the key;
* same key while the first request is still running → 409 ``idempotency_in_flight``.

The key row is inserted in the same database transaction as the effect: both commit or neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from allegiance.access.model import Principal
from allegiance.bootstrap import Allegiance, UnitOfWork
from allegiance.kernel.errors import IdempotencyInFlight, IdempotencyKeyReused, ValidationFailed
from allegiance.kernel.hashing import digest
from allegiance.storage.idempotency_repo import SqlIdempotency


class InFlight:
    """Keys being processed by this process right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[tuple[int, str, str]] = set()

    def claim(self, entry: tuple[int, str, str]) -> bool:
        with self._lock:
            if entry in self._keys:
                return False
            self._keys.add(entry)
            return True

    def release(self, entry: tuple[int, str, str]) -> None:
        with self._lock:
            self._keys.discard(entry)


def run(
    allegiance: Allegiance,
    registry: InFlight,
    principal: Principal,
    key: str | None,
    fingerprint: dict[str, Any],
    effect: Callable[[UnitOfWork], tuple[int, Any]],
) -> JSONResponse:
    if key is None:
        raise ValidationFailed("this write needs an Idempotency-Key header (a client-generated unique string)",
                               field="Idempotency-Key")
    if not 1 <= len(key) <= 200:
        raise ValidationFailed("must be 1 to 200 characters", field="Idempotency-Key")
    scope = principal.idempotency_scope
    entry = (principal.program_id, scope, key)
    if not registry.claim(entry):
        raise IdempotencyInFlight(f"a request with Idempotency-Key {key!r} is still being processed",
                                  field="Idempotency-Key")
    request_hash = digest(fingerprint)
    try:
        with allegiance.write() as uow:
            store = SqlIdempotency(uow.conn, allegiance.clock)
            if not store.try_lock(principal.program_id, scope, key):
                raise IdempotencyInFlight(f"a request with Idempotency-Key {key!r} is still being processed",
                                          field="Idempotency-Key")
            stored = store.find(principal.program_id, scope, key)
            if stored is not None:
                if stored["request_hash"] != request_hash:
                    raise IdempotencyKeyReused(
                        f"Idempotency-Key {key!r} was used for a different request", field="Idempotency-Key")
                return JSONResponse(stored["response_body"], status_code=stored["response_status"],
                                    headers={"Idempotency-Hit": "true"})
            status, body = effect(uow)
            encoded = jsonable_encoder(body)
            store.store(principal.program_id, scope, key, request_hash, status, encoded)
        return JSONResponse(encoded, status_code=status)
    finally:
        registry.release(entry)
