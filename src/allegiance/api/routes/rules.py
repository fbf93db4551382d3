"""Earning rules over HTTP: versions (save, read, activate), the JSON Schema of a rule set, a
side-effect-free quote, each organization's explained statement and each person's standing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, KeyRole, Principal
from allegiance.api.deps import AppDep, Page, PathId, Scope, authorized, page
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.cursors import encode_cursor
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.rules.model import RuleSet
from allegiance.storage import queries

router = APIRouter(tags=["rules"])
MAX_ID = 2**63 - 1


class RuleSetSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] = Field(description="A rule set: see GET /rules/schema")
    note: str = Field(default="", max_length=500)


class RuleSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] = Field(description="One rule: see GET /rules/schema, $defs.Rule")


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organization_id: int = Field(ge=1, le=MAX_ID)
    participant_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    type: str = Field(min_length=1, max_length=100, description="the event type, e.g. order.placed")
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = Field(default=None, description="default: now")


class SimulateRequest(BaseModel):
    """A backtest: a draft document or a saved version, over [from, to)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    document: dict[str, Any] | None = Field(default=None, description="A draft rule set (see GET /rules/schema)")
    version: int | None = Field(default=None, ge=1, le=MAX_ID, description="Or a saved version number")
    start: datetime = Field(alias="from", description="First instant replayed (with a time zone offset)")
    end: datetime = Field(alias="to", description="Replayed up to, not including, this instant")


def _by(principal: Principal) -> str:
    return principal.idempotency_scope


def _version(row: dict[str, Any], with_document: bool = True) -> dict[str, Any]:
    keys = ["version", "status", "note", "created_by", "created_at", "activated_by", "activated_at"]
    out = {k: row.get(k) for k in keys}
    if with_document:
        out["document"] = row["document"]
    return out


@router.get("/rules/schema")
def rule_set_schema(principal: Annotated[Principal, Depends(authorized(Action.READ_RULES))]) -> dict[str, Any]:
    """The JSON Schema of a rule-set document (for editors and for validating YAML files)."""
    return RuleSet.model_json_schema()


@router.get("/rules/versions")
def list_versions(app: AppDep,
                  principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))]) -> dict[str, Any]:
    with app.read() as uow:
        rows = uow.rule_store.versions(principal.program_id)
    return {"items": [_version(r, with_document=False) for r in rows], "next_cursor": None}


@router.post("/rules/versions", status_code=201)
def save_version(request: Request, app: AppDep, body: RuleSetSave, key: IdempotencyKey,
                 principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))]) -> JSONResponse:
    """Save a whole rule set as a new draft version (validated; nothing goes live until activated)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 201, _version(uow.rules.save(principal.program_id, body.document, by=_by(principal), note=body.note))

    return _run(request, app, principal, key, body, effect)


@router.put("/rules/draft/rules/{code}")
def save_rule(request: Request, app: AppDep, body: RuleSave,
              code: Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")],
              key: IdempotencyKey,
              principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))]) -> JSONResponse:
    """Add or replace one rule: saves a new draft version = the latest version with this rule."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        if body.rule.get("code", code) != code:
            raise ValidationFailed("the rule's code must match the path", field="rule.code")
        saved = uow.rules.save_rule(principal.program_id, {**body.rule, "code": code}, by=_by(principal))
        return 200, _version(saved)

    return _run(request, app, principal, key, body, effect)


@router.get("/rules/versions/{version}")
def get_version(app: AppDep, version: PathId,
                principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))]) -> dict[str, Any]:
    with app.read() as uow:
        row = uow.rule_store.version(principal.program_id, version)
    if row is None:
        raise NotFound(f"rule set version {version} not found")
    return _version(row)


@router.post("/rules/versions/{version}/activate")
def activate_version(request: Request, app: AppDep, version: PathId, key: IdempotencyKey,
                     principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))]) -> JSONResponse:
    """Put a version live (audited: who and when). Past postings keep the version that made them."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, _version(uow.rules.activate(principal.program_id, version, by=_by(principal)))

    return _run(request, app, principal, key, None, effect)


@router.get("/rules/active")
def active_rules(app: AppDep,
                 principal: Annotated[Principal, Depends(authorized(Action.READ_RULES))]) -> dict[str, Any]:
    """The rules in force (everyone in the program may read how they earn)."""
    with app.read() as uow:
        compiled = uow.rule_store.active(principal.program_id)
        if compiled is None:
            return {"version": None, "document": {"rules": [], "caps": []}}
        row = uow.rule_store.version(principal.program_id, compiled.version)
    assert row is not None
    return _version(row)


@router.post("/quote")
def quote(app: AppDep, body: QuoteRequest,
          principal: Annotated[Principal, Depends(authorized(Action.QUOTE))]) -> dict[str, Any]:
    """What an order (any event) would earn now — points, credit, pending awards, benefits and
    which rules fired, caps applied — without writing anything."""
    with app.read() as uow:
        org, person = _subject(uow, principal, body.organization_id, body.participant_id)
        at = body.occurred_at or uow.rules.clock.now()
        if at.tzinfo is None:
            raise ValidationFailed("must include a time zone offset", field="occurred_at")
        result = uow.rules.quote(principal.program_id, org, person, body.type, body.payload, at)
        discount = getattr(uow, "tiers", None)
        if discount is not None and hasattr(discount, "discount_for"):
            found = discount.discount_for(principal.program_id, org["id"], at)
            result["discount"] = _plain(found)
        else:
            result["discount"] = None
    return result


@router.post("/rules/simulate")
def simulate(app: AppDep, body: SimulateRequest,
             principal: Annotated[Principal, Depends(authorized(Action.SIMULATE_RULES))]) -> dict[str, Any]:
    """Backtest before activating: replay the stored events of [from, to) through a draft rule set
    (or a saved version) and report points and money issued, liability, organizations and people
    affected, top earners, caps hit, pending awards and rules that never fired. Writes nothing."""
    if (body.document is None) == (body.version is None):
        raise ValidationFailed("give exactly one of document or version", field="document")
    target: dict[str, Any] | int = body.document if body.document is not None else int(body.version or 0)
    with app.read() as uow:
        report = uow.rules.simulate(principal.program_id, target, body.start, body.end,
                                    tiers=getattr(uow, "tiers", None))
    return report.as_dict()


def _plain(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return {k: (str(v) if not isinstance(v, int | str | bool | type(None) | list | dict) else v)
                for k, v in asdict(value).items()}
    return value


def _subject(uow: UnitOfWork, principal: Principal, organization_id: int,
             participant_id: int | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    scope = Scope.of(principal, uow)
    # an integration (a web shop asking what a basket earns) quotes for any organization of its program
    program_wide = principal.role is KeyRole.INTEGRATION
    org = uow.program_store.organization(principal.program_id, organization_id)
    if org is None or not (program_wide or scope.sees_organization(org["id"])):
        raise NotFound(f"organization {organization_id} not found", field="organization_id")
    person = None
    if participant_id is not None:
        person = uow.program_store.participant(principal.program_id, participant_id)
        if person is None or not (program_wide or scope.sees_participant(person)):
            raise NotFound(f"participant {participant_id} not found", field="participant_id")
        if person["organization_id"] != org["id"]:
            raise ValidationFailed("the participant is not in that organization", field="participant_id")
    elif principal.role is KeyRole.PARTICIPANT:
        person = uow.program_store.participant(principal.program_id, principal.participant_id or 0)
    return org, person


@router.get("/organizations/{organization_id}/statement")
def statement(app: AppDep, organization_id: PathId, pg: Annotated[Page, Depends(page)],
              principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))]) -> dict[str, Any]:
    """The organization's transactions, newest first, each with why it happened: the rule, its
    version, the inputs that fired it and what caps cut; plus awards still pending."""
    with app.read() as uow:
        org, _ = _subject(uow, principal, organization_id, None)
        scope = Scope.of(principal, uow)
        awards = uow.rule_store.awards_of_organization(principal.program_id, [org["id"]],
                                                       after=pg.after or None, limit=pg.limit + 1)
        if scope.principal.role is KeyRole.PARTICIPANT:
            awards = [a for a in awards if a["participant_id"] == principal.participant_id]
        ids = [a["transaction_id"] for a in awards if a["transaction_id"]]
        transactions = {t["id"]: t for t in queries.transactions(uow.conn, principal.program_id, visible=None,
                                                                 ids=ids, limit=len(ids) + 1)} if ids else {}
    items = []
    for award in awards:
        items.append({
            "id": award["id"], "at": award["occurred_at"], "rule": award["rule_code"],
            "rule_set_version": award["rule_set_version"], "kind": award["kind"], "status": award["status"],
            "unit": award["unit"], "amount": award["amount"], "capped": award["capped"],
            "caps_hit": award["caps_hit"], "clawed_back": award["clawed"], "why": award["reason"],
            "inputs": award["inputs"], "event_id": award["event_id"], "participant_id": award["participant_id"],
            "transaction": transactions.get(award["transaction_id"]),
        })
    more = len(items) > pg.limit
    items = items[: pg.limit]
    return {"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more and items else None}


@router.get("/participants/{participant_id}/standing")
def participant_standing(app: AppDep, participant_id: PathId,
                         principal: Annotated[Principal, Depends(authorized(Action.READ_RULES))]) -> dict[str, Any]:
    """What would qualify: the rules this person can earn from, what an event must contain, what is
    left of each cap and how far the next step of a volume ladder is."""
    with app.read() as uow:
        scope = Scope.of(principal, uow)
        person = uow.program_store.participant(principal.program_id, participant_id)
        if person is None or not scope.sees_participant(person):
            raise NotFound(f"participant {participant_id} not found")
        org = uow.program_store.organization(principal.program_id, person["organization_id"])
        assert org is not None
        items = uow.rules.standing(principal.program_id, org, person, uow.rules.clock.now())
    return {"items": items, "next_cursor": None}



class ContestClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: str = Field(min_length=4, max_length=10, description="e.g. 2026-Q1, 2026-05, 2026-W07, 2026")


class BenefitAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(ge=1, le=10**9)
    assignee_ref: str = Field(min_length=1, max_length=200, description="your end client's id")
    assignee_name: str = Field(min_length=1, max_length=300)
    note: str = Field(default="", max_length=500)


ContestCode = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9][a-z0-9_.-]{0,79}$")]


@router.get("/rules/contests/{code}/standings")
def contest_standings(app: AppDep, code: ContestCode,
                      principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))],
                      period: Annotated[str | None, Query(max_length=10)] = None) -> dict[str, Any]:
    """The ranking of a contest for a period (default: the current one)."""
    with app.read() as uow:
        return uow.contests.standings(principal.program_id, code, period)


@router.post("/rules/contests/{code}/close")
def close_contest(request: Request, app: AppDep, code: ContestCode, body: ContestClose, key: IdempotencyKey,
                  principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))]) -> JSONResponse:
    """Grant a finished period's prizes to its top N — exactly once per contest and period."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, uow.contests.close(principal.program_id, code, body.period, by=_by(principal))

    return _run(request, app, principal, key, body, effect)


@router.get("/organizations/{organization_id}/benefits")
def organization_benefits(app: AppDep, organization_id: PathId,
                          principal: Annotated[Principal, Depends(authorized(Action.READ_LEDGER))]) -> dict[str, Any]:
    """Non-monetary benefits and entitlements granted to the organization, with what is left and
    to whom parts were passed on."""
    with app.read() as uow:
        org, _ = _subject(uow, principal, organization_id, None)
        items = uow.rule_store.benefits_of(principal.program_id, [org["id"]])
        if principal.role is KeyRole.PARTICIPANT:
            items = [i for i in items if i["participant_id"] == principal.participant_id]
        for item in items:
            item["assignments"] = uow.rule_store.assignments(principal.program_id, award_id=item["id"])
    return {"items": [_benefit(i) for i in items], "next_cursor": None}


def _benefit(item: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "rule_code", "organization_id", "participant_id", "amount", "assigned", "remaining", "reason",
            "inputs", "occurred_at", "assignments")
    out = {k: item.get(k) for k in keep}
    out["quantity"] = out.pop("amount")
    out["benefit"] = (item.get("inputs") or {}).get("benefit")
    return out


@router.post("/benefits/{award_id}/assignments", status_code=201)
def assign_benefit(request: Request, app: AppDep, award_id: PathId, body: BenefitAssign, key: IdempotencyKey,
                   principal: Annotated[Principal, Depends(authorized(Action.TRANSFER))]) -> JSONResponse:
    """Pass part of an entitlement on to one of your own end clients (logged; never more than is left)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        scope = Scope.of(principal, uow)
        benefit = uow.contests.assign(principal.program_id, award_id, body.quantity, body.assignee_ref,
                                      body.assignee_name, by=_by(principal), note=body.note,
                                      visible=scope.sees_organization)
        benefit["assignments"] = uow.rule_store.assignments(principal.program_id, award_id=award_id)
        return 201, _benefit(benefit)

    return _run(request, app, principal, key, body, effect)


@router.get("/benefits/assignments")
def benefit_assignments(app: AppDep, principal: Annotated[Principal, Depends(authorized(Action.MANAGE_RULES))],
                        assignee_ref: Annotated[str, Query(min_length=1, max_length=200)]) -> dict[str, Any]:
    """Everything passed on to one end client (what their listing shows)."""
    with app.read() as uow:
        return {"items": uow.rule_store.assignments(principal.program_id, assignee_ref=assignee_ref),
                "next_cursor": None}
