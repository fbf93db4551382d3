"""The rewards catalog: operators edit it; org admins and participants see what they may redeem."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, authorized, page, paged
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound
from allegiance.rewards.model import CatalogItemCreate, CatalogItemUpdate, Category, localized

router = APIRouter(prefix="/catalog", tags=["rewards"])
Locale = Annotated[str | None, Query(max_length=20, description="name in this locale (fallback: the first)")]
BATCH = 500


def _view(item: dict[str, Any], locale: str | None) -> dict[str, Any]:
    return {**item, "name": localized(item["names"], locale)}


def _person(uow: UnitOfWork, principal: Principal) -> dict[str, Any] | None:
    if principal.participant_id is None:
        return None
    return uow.program_store.participant(principal.program_id, principal.participant_id)


def _available(uow: UnitOfWork, principal: Principal, *, after: int, limit: int,
               category: str | None) -> list[dict[str, Any]]:
    """Active items this caller's organization (and person) may redeem, a page at a time; the
    filters are applied in Python (a catalog is hundreds of items, not millions)."""
    assert principal.organization_id is not None
    person = _person(uow, principal) if principal.role is KeyRole.PARTICIPANT else None
    found: list[dict[str, Any]] = []
    while len(found) <= limit:
        batch = uow.reward_store.items(principal.program_id, after=after, limit=BATCH, active=True,
                                       category=category)
        found.extend(uow.rewards.available_items(principal.program_id, principal.organization_id, person,
                                                 items=batch[:BATCH]))
        if len(batch) <= BATCH:
            break
        after = batch[BATCH - 1]["id"]
    return found[: limit + 1]


@router.get("")
def list_items(app: AppDep, principal: Annotated[Principal, Depends(authorized(Action.READ_REWARDS))],
               pg: Annotated[Page, Depends(page)], category: Category | None = None,
               active: bool | None = None, locale: Locale = None) -> dict[str, Any]:
    """Operators see the whole catalog (filter with ``active``); org admins and participants see only
    the active items available to their organization (tier, kind, country) and, for a participant,
    their role."""
    with app.read() as uow:
        if principal.role is KeyRole.OPERATOR:
            items = uow.reward_store.items(principal.program_id, after=pg.after, limit=pg.limit, active=active,
                                           category=category.value if category else None)
        else:
            items = _available(uow, principal, after=pg.after, limit=pg.limit,
                               category=category.value if category else None)
    return paged([_view(i, locale) for i in items], pg)


@router.post("", status_code=201)
def create_item(request: Request, app: AppDep, body: CatalogItemCreate, key: IdempotencyKey,
                principal: Annotated[Principal, Depends(authorized(Action.MANAGE_CATALOG))]) -> JSONResponse:
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, _view(uow.rewards.create_item(principal.program_id, body), None)

    return _run(request, app, principal, key, body, effect)


@router.get("/{item_id}")
def get_item(app: AppDep, item_id: PathId, principal: Annotated[Principal, Depends(authorized(Action.READ_REWARDS))],
             locale: Locale = None) -> dict[str, Any]:
    with app.read() as uow:
        item = uow.rewards.item(principal.program_id, item_id)
        if principal.role is not KeyRole.OPERATOR:
            assert principal.organization_id is not None
            person = _person(uow, principal) if principal.role is KeyRole.PARTICIPANT else None
            if not uow.rewards.available_items(principal.program_id, principal.organization_id, person,
                                               items=[item]):
                raise NotFound(f"catalog item {item_id} not found", field="item_id")
    return _view(item, locale)


@router.patch("/{item_id}")
def update_item(app: AppDep, item_id: PathId, body: CatalogItemUpdate,
                principal: Annotated[Principal, Depends(authorized(Action.MANAGE_CATALOG))]) -> dict[str, Any]:
    """Only the fields sent change; ``stock`` sets what is left now (a restock), ``null`` = unlimited."""
    with app.write() as uow:
        return _view(uow.rewards.update_item(principal.program_id, item_id, body), None)
