"""Earning rules: the active version and every saved one (who saved and activated it, when, why), a
version's rules as tables, activation behind a confirmation page, and the backtest.

The backtest is a GET (it writes nothing, so its address can be shared and reloaded): a saved version
and a period of whole UTC days, replayed by ``RulesService.simulate`` over the stored events.
Activation is the audited act (``RulesService.activate``); a refused one (no goal, already active)
comes back on the confirmation page with the reason.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import RedirectResponse, Response

from allegiance.kernel.errors import AllegianceError, NotFound, ValidationFailed
from allegiance.storage import web_queries
from allegiance.web.auth import CsrfChecked, Operator, OperatorDep, get_allegiance
from allegiance.web.rendering import render
from allegiance.web.routing import web_router
from allegiance.web.rule_views import describe, report_units

router = web_router()

DateText = Annotated[str | None, Query(max_length=10)]


def _default_unit(operator: Operator) -> str:
    return operator.settings.default_unit if operator.settings else "PTS"


@router.get("/rules")
def rules_home(request: Request, operator: OperatorDep) -> Response:
    with get_allegiance(request).read() as uow:
        versions = uow.rule_store.versions(operator.program_id)
    active = next((v for v in versions if v["status"] == "active"), None)
    return render(request, "rules/index.html", {"operator": operator, "versions": versions, "active": active})


def _version(request: Request, operator: Operator, version: int) -> dict[str, Any]:
    with get_allegiance(request).read() as uow:
        row = uow.rule_store.version(operator.program_id, version)
    if row is None:
        raise NotFound(f"rule set version {version} not found")
    return row


@router.get("/rules/versions/{version}")
def rules_version(request: Request, operator: OperatorDep, version: int,
                  done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    row = _version(request, operator, version)
    return render(request, "rules/version.html", {
        "operator": operator, "version": row, "described": describe(row["document"], _default_unit(operator)),
        "activated": done == "activated"})


def _confirm(request: Request, operator: Operator, row: dict[str, Any],
             error: AllegianceError | None = None) -> Response:
    with get_allegiance(request).read() as uow:
        active = next((v for v in uow.rule_store.versions(operator.program_id) if v["status"] == "active"), None)
    return render(request, "rules/activate.html", {
        "operator": operator, "version": row, "active": active,
        "error": f"{error.field}: {error.message}" if error and error.field else (error.message if error else None),
    }, status=error.status if error else 200)


@router.get("/rules/versions/{version}/activate")
def rules_activate_confirm(request: Request, operator: OperatorDep, version: int) -> Response:
    return _confirm(request, operator, _version(request, operator, version))


@router.post("/rules/versions/{version}/activate", dependencies=[CsrfChecked])
def rules_activate(request: Request, operator: OperatorDep, version: int) -> Response:
    row = _version(request, operator, version)
    try:
        with get_allegiance(request).write() as uow:
            uow.rules.activate(operator.program_id, version, by=f"user:{operator.user['id']}")
    except NotFound:
        raise
    except AllegianceError as exc:
        return _confirm(request, operator, row, exc)
    return RedirectResponse(f"/rules/versions/{version}?done=activated", status_code=303)


def _day(text: str | None, field: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("enter a date as YYYY-MM-DD", field=field) from None


@router.get("/rules/backtest")
def rules_backtest(request: Request, operator: OperatorDep,
                   version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                   start: Annotated[str | None, Query(alias="from", max_length=10)] = None,
                   end: Annotated[str | None, Query(alias="to", max_length=10)] = None) -> Response:
    """``from`` and ``to`` are whole days in UTC, both included: [from 00:00, to + 1 day 00:00)."""
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        versions = uow.rule_store.versions(program_id)
    today = datetime.now(UTC).date()
    first = _day(start, "from") if start else None
    last = _day(end, "to") if end else None
    context: dict[str, Any] = {
        "operator": operator, "versions": versions, "report": None, "error": None,
        "chosen": version or next((v["version"] for v in versions if v["status"] == "draft"), None),
        "start": (first or today - timedelta(days=90)).isoformat(), "end": (last or today).isoformat()}
    if version is not None and first is not None and last is not None:
        begin = datetime.combine(first, time(), UTC)
        until = datetime.combine(last + timedelta(days=1), time(), UTC)
        try:
            with get_allegiance(request).read() as uow:
                report = uow.rules.simulate(program_id, version, begin, until, tiers=uow.tiers).as_dict()
                orgs, people = web_queries.names(
                    uow.conn, program_id,
                    [row["organization_id"] for rows in report["top_organizations"].values() for row in rows],
                    [row["participant_id"] for rows in report["top_participants"].values() for row in rows])
        except NotFound:
            raise
        except AllegianceError as exc:
            context["error"] = f"{exc.field}: {exc.message}" if exc.field else exc.message
            return render(request, "rules/backtest.html", context, status=exc.status)
        context.update(report=report, units=report_units(report), org_names=orgs, person_names=people)
    return render(request, "rules/backtest.html", context)
