"""Liability and finance (issue 4), operators only: outstanding liability, breakage, expiring-soon
amounts (and the job that announces them), and the CSV export that reconciles with the ledger."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from allegiance.access.model import Action, Principal
from allegiance.api.deps import AppDep, Page, QueryId, authorized, page, paged
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import Allegiance, UnitOfWork
from allegiance.finance.service import MAX_DAYS
from allegiance.kernel.periods import day_range

router = APIRouter(prefix="/finance", tags=["finance"])
Reader = Annotated[Principal, Depends(authorized(Action.READ_FINANCE))]
Runner = Annotated[Principal, Depends(authorized(Action.RUN_FINANCE_JOBS))]
Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="lots expiring within this many days from now")]

POSTING_COLUMNS = ("transaction_id", "chain_seq", "created_at", "kind", "memo", "rule", "rule_set_version",
                   "partner_code", "reverses_id", "event_id", "hash", "posting_id", "account_id", "address",
                   "account_kind", "organization_id", "participant_id", "unit", "amount")
TOTAL_COLUMNS = ("account_id", "address", "account_kind", "organization_id", "participant_id", "unit", "opening",
                 "movement", "closing")


class ExpiringRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(default=30, ge=1, le=MAX_DAYS)


@router.get("/liability")
def liability(app: AppDep, principal: Reader) -> dict[str, Any]:
    """Outstanding points per unit (available and held separately, valued at the unit's
    ``cost_per_point`` when set) and each partner's settlement position."""
    with app.read() as uow:
        return uow.finance.liability(principal.program_id)


@router.get("/liability/organizations")
def liability_by_organization(app: AppDep, principal: Reader, pg: Annotated[Page, Depends(page)],
                              organization_id: QueryId = None) -> dict[str, Any]:
    with app.read() as uow:
        items = uow.finance.organizations_liability(principal.program_id, after=pg.after, limit=pg.limit,
                                                    organization_id=organization_id)
    return paged(items, pg)


@router.get("/breakage")
def breakage(app: AppDep, principal: Reader) -> dict[str, Any]:
    """The share of issued points that expired, over closed expiry cohorts, and the breakage it
    predicts for the expirable points outstanding now (docs/finance.md explains the estimator)."""
    with app.read() as uow:
        return uow.finance.breakage(principal.program_id)


@router.get("/expiring")
def expiring(app: AppDep, principal: Reader, days: Days = 30) -> dict[str, Any]:
    """What expires within ``days``, per organization, unit and expiry day (nothing is written)."""
    with app.read() as uow:
        found = uow.finance.expiring(principal.program_id, days)
    return {"days": days, "items": [n.payload(days) for n in found]}


@router.post("/expiring/notify")
def notify_expiring(request: Request, app: AppDep, body: ExpiringRun, key: IdempotencyKey,
                    principal: Runner) -> JSONResponse:
    """Announce ``points.expiring_soon`` once per organization, unit and expiry day (a re-run
    announces only what is new)."""
    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        return 200, uow.finance.notify_expiring(principal.program_id, body.days)

    return _run(request, app, principal, key, body, effect)


def _csv(rows: Iterable[dict[str, Any]], columns: tuple[str, ...]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for count, row in enumerate(rows, 1):
        writer.writerow({k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()})
        if count % 500 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _stream(app: Allegiance, program_id: int, part: str, start: Any, end: Any) -> Iterator[str]:
    with app.read() as uow:
        if part == "totals":
            yield from _csv(uow.finance.export_totals(program_id, start, end), TOTAL_COLUMNS)
        else:
            yield from _csv(uow.finance.export_postings(program_id, start, end), POSTING_COLUMNS)


@router.get("/export", response_model=None)
def export(app: AppDep, principal: Reader,
           start: Annotated[date, Query(alias="from", description="first day (UTC), included")],
           end: Annotated[date, Query(alias="to", description="last day (UTC), included")],
           part: Annotated[Literal["postings", "totals"], Query()] = "postings") -> StreamingResponse:
    """CSV: every posting of the period with its transaction (kind, memo, rule version, hash) and
    account, or (``part=totals``) per account opening + movement = closing, where closing is the
    ledger balance at the end of the period."""
    first, last = day_range(start, end)  # refused (422, field "to") before the response starts streaming
    filename = f"allegiance-{part}-{start.isoformat()}-{end.isoformat()}.csv"
    return StreamingResponse(_stream(app, principal.program_id, part, first, last), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
