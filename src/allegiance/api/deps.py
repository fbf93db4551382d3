"""Request dependencies: the composition root, the authenticated principal, pagination.

Authorization happens here and only here: every route declares the ``Action`` it performs, and
object scoping (own organization, self) goes through :class:`Scope`, which reports objects outside
the caller's reach as missing.

The dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in the
threadpool, a thread hand-off each, which cost more than the check itself. A key's principal
comes from a short-lived cache (``storage.cache``, bound in docs/api.md "Authentication"); only
a miss reads the database, in the threadpool.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.bootstrap import Allegiance, UnitOfWork
from allegiance.kernel.cursors import decode_cursor, encode_cursor
from allegiance.kernel.errors import NotFound, Unauthenticated, ValidationFailed
from allegiance.storage import tables as t


async def get_allegiance(request: Request) -> Allegiance:
    return _allegiance(request)


def _allegiance(request: Request) -> Allegiance:
    app: Allegiance = request.app.state.allegiance
    return app


AppDep = Annotated[Allegiance, Depends(get_allegiance)]
MAX_ID = 2**63 - 1  # BIGINT: a larger id can name nothing, so it is refused as input, not looked up
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _lookup(allegiance: Allegiance, token: str, digest: str) -> Principal | None:
    cache = allegiance.db.caches.principals
    epoch = cache.epoch()
    with allegiance.read() as uow:
        principal = uow.access.principal_for_key(token)
    if principal is not None:
        cache.put(digest, principal, epoch)
    return principal


async def authenticate(request: Request) -> Principal:
    allegiance = _allegiance(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    token = token.strip()
    digest = hashlib.sha256(token.encode()).hexdigest()  # the cache keeps no secret
    principal = allegiance.db.caches.principals.get(digest)
    if principal is None:
        principal = await run_in_threadpool(_lookup, allegiance, token, digest)
    if principal is None:
        raise Unauthenticated("unknown or revoked API key")
    request.app.state.rate_limiter.take(principal.key_id)
    return principal


def authorized(action: Action) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        principal.require(action)
        return principal

    dependency.__name__ = f"authorized_{action.name.lower()}"
    return dependency


def subtree(uow: UnitOfWork, program_id: int, root: int) -> set[int]:
    """An organization and everything below it (sites, subsidiaries, a distributor's dealers)."""
    o = t.organizations
    seen = {root}
    frontier = [root]
    while frontier:
        children = uow.conn.execute(select(o.c.id).where(o.c.program_id == program_id,
                                                         o.c.parent_id.in_(frontier))).scalars().all()
        frontier = [c for c in children if c not in seen]
        seen.update(frontier)
    return seen


@dataclass
class Scope:
    """What a principal can see, resolved once per request inside its unit of work."""

    principal: Principal
    organizations: set[int] | None  # None = all in the program
    accounts: set[int] | None = None  # participants: only their own accounts (personal and escrow)

    @classmethod
    def of(cls, principal: Principal, uow: UnitOfWork) -> Scope:
        if principal.role is KeyRole.OPERATOR:
            return cls(principal, None)
        if principal.role is KeyRole.ORG_ADMIN and principal.organization_id is not None:
            return cls(principal, subtree(uow, principal.program_id, principal.organization_id))
        if principal.role is KeyRole.PARTICIPANT and principal.organization_id is not None:
            own = uow.conn.execute(select(t.accounts.c.id).where(
                t.accounts.c.program_id == principal.program_id,
                t.accounts.c.participant_id == principal.participant_id)).scalars().all()
            return cls(principal, {principal.organization_id}, set(own))
        return cls(principal, set())

    def sees_account_id(self, account_id: int) -> bool:
        return self.accounts is None or account_id in self.accounts

    def sees_organization(self, organization_id: int | None) -> bool:
        return self.organizations is None or organization_id in self.organizations

    def check_organization(self, organization_id: int | None, what: str = "organization", ident: Any = None) -> None:
        if not self.sees_organization(organization_id):
            raise NotFound(f"{what} {ident if ident is not None else organization_id} not found")

    def sees_participant(self, participant: dict[str, Any]) -> bool:
        if self.principal.role is KeyRole.PARTICIPANT:
            return participant["id"] == self.principal.participant_id
        return self.sees_organization(participant["organization_id"])

    def sees_account(self, account: Any) -> bool:
        """``account``: a ledger ``Account`` or an account row as ``storage.queries`` returns it."""
        if isinstance(account, dict):
            organization_id, participant_id = account.get("organization_id"), account.get("participant_id")
        else:
            organization_id = getattr(account, "organization_id", None)
            participant_id = getattr(account, "participant_id", None)
        if self.principal.role is KeyRole.PARTICIPANT:
            return participant_id == self.principal.participant_id
        if self.organizations is None:
            return True
        return organization_id in self.organizations


@dataclass(frozen=True)
class Page:
    after: int
    limit: int


async def page(request: Request, cursor: Annotated[str | None, Query(max_length=200)] = None,
               limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> Page:
    maximum = _allegiance(request).settings.max_page_size
    if limit > maximum:
        raise ValidationFailed(f"must be at most {maximum}", field="limit")
    return Page(decode_cursor(cursor) or 0, limit)


def paged(items: list[dict[str, Any]], pg: Page) -> dict[str, Any]:
    more = len(items) > pg.limit
    items = items[: pg.limit]
    return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more and items else None}
