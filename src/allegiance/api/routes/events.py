from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from allegiance.access.model import Action, Principal
from allegiance.api.deps import AppDep, Page, PathId, QueryId, Scope, authorized, page, paged
from allegiance.api.problems import location
from allegiance.api.schemas import EventBatch, EventIn, EventTypeIn
from allegiance.events.model import IncomingEvent, Outcome
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.storage import queries

router = APIRouter(tags=["events"])


def _incoming(event: EventIn) -> IncomingEvent:
    """Field by field: ``model_dump`` would deep-copy the payload, which nothing here modifies."""
    return IncomingEvent(source_id=event.source_id, type=event.type, occurred_at=event.occurred_at,
                         payload=event.payload, organization_id=event.organization_id,
                         organization_external_id=event.organization_external_id,
                         participant_id=event.participant_id, participant_external_id=event.participant_external_id)


def _parse(raw: Any) -> tuple[list[EventIn], bool]:
    """One event object, or ``{"events": [...]}`` for a batch (all-or-nothing)."""
    if not isinstance(raw, dict):
        raise ValidationFailed("must be one event object, or {\"events\": [...]} for a batch", field="body")
    try:
        if "events" in raw:
            return EventBatch.model_validate(raw).events, True
        return [EventIn.model_validate(raw)], False
    except ValidationError as exc:
        errors = [{"field": location(e["loc"]), "reason": e["msg"]} for e in exc.errors()[:20]]
        raise ValidationFailed(errors[0]["reason"], field=errors[0]["field"], errors=errors) from exc


@router.post("/events", status_code=201, openapi_extra={"requestBody": {"content": {"application/json": {
    "schema": {"oneOf": [{"$ref": "#/components/schemas/EventIn"}, {"$ref": "#/components/schemas/EventBatch"}]}}},
    "required": True}})
def record_events(request: Request, app: AppDep,
                  principal: Annotated[Principal, Depends(authorized(Action.WRITE_EVENTS))],
                  raw: Annotated[Any, Body()] = None) -> JSONResponse:
    """Record one business event or a batch. Events are deduplicated by ``source_id``: sending the
    same event again answers 200 with ``duplicate``; the same id with other content answers 409.
    An invalid event refuses the whole batch (422 naming ``events[i].field``); nothing is written."""
    events, is_batch = _parse(raw)
    if len(events) > app.settings.max_batch_events:
        raise ValidationFailed(f"at most {app.settings.max_batch_events} events per request", field="events")
    with app.write() as uow:
        results = uow.events.record(principal.program_id, [_incoming(e) for e in events],
                                    prefix="events" if is_batch else "")
    body = [{"event_id": r.event_id, "source_id": r.source_id, "outcome": r.outcome.value,
             "transactions": list(r.transactions)} for r in results]
    created = any(r.outcome is Outcome.ACCEPTED for r in results)
    return JSONResponse({"results": body} if is_batch else body[0], status_code=201 if created else 200)


@router.get("/events")
def list_events(app: AppDep, principal: Annotated[Principal, Depends(authorized(Action.READ_EVENTS))],
                pg: Annotated[Page, Depends(page)],
                type: Annotated[str | None, Query(max_length=100)] = None,
                organization_id: QueryId = None) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = queries.events(uow.conn, principal.program_id, visible=scope.organizations, after=pg.after,
                               limit=pg.limit, type_=type, organization_id=organization_id)
    return paged(items, pg)


@router.get("/events/{event_id}")
def get_event(app: AppDep, event_id: PathId,
              principal: Annotated[Principal, Depends(authorized(Action.READ_EVENTS))]) -> dict[str, Any]:
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        items = queries.events(uow.conn, principal.program_id, visible=scope.organizations, after=event_id - 1,
                               limit=1)
        if not items or items[0]["id"] != event_id:
            raise NotFound(f"event {event_id} not found")
        items[0]["transactions"] = uow.event_store.transactions_of_event(event_id)
        return items[0]


@router.get("/event-types")
def list_event_types(app: AppDep,
                     principal: Annotated[Principal, Depends(authorized(Action.READ_PROGRAM))]) -> dict[str, Any]:
    with app.read() as uow:
        return {"items": queries.event_types(uow.conn, principal.program_id)}


@router.put("/event-types/{name}")
def declare_event_type(app: AppDep, name: str, body: EventTypeIn,
                       principal: Annotated[Principal, Depends(authorized(Action.MANAGE_EVENT_TYPES))]
                       ) -> dict[str, Any]:
    """Declare an event type and the JSON Schema its payload must match."""
    if body.name != name:
        raise ValidationFailed("must equal the name in the path", field="name")
    with app.write() as uow:
        uow.events.declare_type(principal.program_id, name, body.payload_schema, body.description)
    return body.model_dump()
