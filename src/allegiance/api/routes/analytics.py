"""Analytics (issue 5), operators only: the results the nightly job stored (latest and history),
one organization's view, running the job now, the versioned settings and segments, and the
churn and recommendation evaluations computed live before trusting a model.

Everything here is a thin shell over ``AnalyticsService`` (``uow.analytics``): the numbers are the
service's documents, unchanged, so the CLI, this API and the pages always agree. Results name
organizations by their external ids across the whole program, hence operators only.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from allegiance.access.model import Action, Principal
from allegiance.analytics.headline import headline
from allegiance.analytics.results import KINDS
from allegiance.analytics.segments import SegmentSet
from allegiance.analytics.settings import AnalyticsSettings
from allegiance.api.deps import AppDep, authorized
from allegiance.api.routes.transactions import IdempotencyKey, _run
from allegiance.bootstrap import Allegiance, UnitOfWork
from allegiance.kernel.errors import Conflict, NotFound, ValidationFailed

router = APIRouter(prefix="/analytics", tags=["analytics"])
Reader = Annotated[Principal, Depends(authorized(Action.READ_ANALYTICS))]
Manager = Annotated[Principal, Depends(authorized(Action.MANAGE_ANALYTICS))]

EARLIEST = date(1970, 1, 1)  # results look two years back from as_of; nothing older is a real question
RUN_HINT = "POST /api/v1/analytics/runs (or `allegiance analytics run`) computes it"
RunKind = Literal["overview", "cohorts", "rfm", "clv", "churn", "health", "recommendations", "facts"]
ROW_LISTS = ("rows", "upsell")  # the per-organization lists a history leaves out (the latest result pages them)

Kind = Annotated[str, Path(max_length=60, description=f"one of {', '.join(KINDS)}")]
Limit = Annotated[int, Query(ge=1, le=10_000, description="rows per page (at most the server's page size, 200)")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="rows to skip")]
History = Annotated[int, Query(ge=1, le=730, description="the newest runs to return, oldest first")]
ExternalId = Annotated[str, Path(min_length=1, max_length=200, description="the organization's external id")]
SegmentCode = Annotated[str, Path(min_length=1, max_length=60)]


class NotEnoughData(Conflict):
    """The data cannot support the evaluation yet (history too short, no order lines...)."""

    code = "not_enough_data"


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(default=None, ge=EARLIEST,
                               description="the UTC day to compute for; default yesterday (today is not over)")
    kinds: list[RunKind] | None = Field(default=None, min_length=1, max_length=len(KINDS),
                                        description="the results to compute; default all of them")


def _optional(field: FieldInfo) -> tuple[Any, FieldInfo]:
    """A settings field as an optional override: same type, constraints and description, default None."""
    info = copy.copy(field)
    info.default = None
    info.default_factory = None
    annotation: Any = field.annotation
    return annotation | None, info


_EVALUATE_FIELDS: dict[str, Any] = {
    "as_of": (date | None, Field(default=None, ge=EARLIEST, description="the UTC day to evaluate on; default "
                                                                         "yesterday")),
    **{name: _optional(field) for name, field in AnalyticsSettings.model_fields.items()}}
_EvaluateBase: Any = create_model("AnalyticsEvaluateBase", __config__=ConfigDict(extra="forbid"), **_EVALUATE_FIELDS)


class EvaluateRequest(_EvaluateBase):
    """``as_of`` and any analytics settings to try instead of the stored ones (nothing is saved)."""


def _check_limit(app: Allegiance, limit: int) -> None:
    if limit > app.settings.max_page_size:
        raise ValidationFailed(f"must be at most {app.settings.max_page_size}", field="limit")


def _known(kind: str) -> None:
    if kind not in KINDS:
        raise NotFound(f"no analytics result {kind!r}; one of {', '.join(KINDS)}", field="kind")


def _page(items: list[Any], offset: int, limit: int) -> tuple[list[Any], dict[str, Any]]:
    shown = items[offset:offset + limit]
    following = offset + limit if offset + limit < len(items) else None
    return shown, {"total": len(items), "offset": offset, "limit": limit, "next_offset": following}


def _latest(uow: UnitOfWork, program_id: int, kind: str) -> dict[str, Any]:
    _known(kind)
    try:
        return uow.analytics.latest(program_id, kind)
    except NotFound as exc:
        raise NotFound(exc.message, field="kind", hint=RUN_HINT) from None


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    """A stored document without its per-organization lists, with their lengths instead."""
    out = {k: v for k, v in document.items() if k not in ROW_LISTS}
    out.update({f"{k}_total": len(document[k]) for k in ROW_LISTS if isinstance(document.get(k), list)})
    return out


def _evaluate(compute: Any) -> dict[str, Any]:
    try:
        found: dict[str, Any] = compute()
    except ValidationFailed:
        raise
    except ValueError as exc:  # report.NotEnoughData and the models' own "cannot fit this" refusals
        raise NotEnoughData(str(exc)) from None
    return found


# -- settings and segments (declared before /{kind} so their paths win) --------------------------------
@router.get("/settings")
def get_settings(app: AppDep, principal: Reader) -> dict[str, Any]:
    """The settings in force (``version`` 0: never saved, the defaults)."""
    with app.read() as uow:
        return uow.analytics.settings_document(principal.program_id)


@router.put("/settings")
def put_settings(app: AppDep, body: AnalyticsSettings, principal: Manager) -> dict[str, Any]:
    """Save a new version of the whole settings document (missing fields take their defaults). The
    next run uses it; each stored result names the settings version that produced it."""
    with app.write() as uow:
        return uow.analytics.save_settings(principal.program_id, body.model_dump(mode="json"),
                                           by=principal.idempotency_scope)


@router.get("/segments")
def get_segments(app: AppDep, principal: Reader) -> dict[str, Any]:
    with app.read() as uow:
        version, segments = uow.analytics.segments(principal.program_id)
    return {"version": version, "segments": segments.model_dump(mode="json")["segments"]}


@router.put("/segments")
def put_segments(app: AppDep, body: SegmentSet, principal: Manager) -> dict[str, Any]:
    """Save a new version of the program's segments. When a run exists, membership is recomputed at
    once and written to the organizations' ``attributes.segments`` (``members``: count per segment)."""
    with app.write() as uow:
        return uow.analytics.save_segments(principal.program_id, body.model_dump(mode="json"),
                                           by=principal.idempotency_scope)


@router.get("/segments/{code}/members")
def segment_members(app: AppDep, code: SegmentCode, principal: Reader, limit: Limit = 50,
                    offset: Offset = 0) -> dict[str, Any]:
    """The organizations the segment matches on the latest run's facts, with those facts."""
    _check_limit(app, limit)
    with app.read() as uow:
        found = uow.analytics.segment_members(principal.program_id, code)
    found["organizations"], found["page"] = _page(found["organizations"], offset, limit)
    return found


@router.get("/organizations/{external_id}")
def organization(app: AppDep, external_id: ExternalId, principal: Reader) -> dict[str, Any]:
    """What the latest results say about one organization: its facts, churn risk with reasons and
    intervention, health score with each component's contribution, CLV, RFM cell, recommendations
    and up-sell signals (a result not computed yet is absent)."""
    with app.read() as uow:
        org = uow.program_store.organization_by_external_id(principal.program_id, external_id)
        if org is None:
            raise NotFound("no organization with this external id", field="external_id")
        found = uow.analytics.organization(principal.program_id, external_id)
    return {"organization_id": org["id"], "name": org["name"], "as_of": None, **found}


# -- the job and the evaluations -----------------------------------------------------------------------
@router.post("/runs", status_code=201)
def run(request: Request, app: AppDep, key: IdempotencyKey, principal: Manager,
        body: RunRequest | None = None) -> JSONResponse:
    """Run the analytics job now (as the nightly ``allegiance analytics run`` does): compute and store
    one snapshot per result for ``as_of`` (a re-run the same day replaces it) and refresh segment
    membership. A result the data cannot support yet is ``skipped`` with the reason. Always on the
    embedded engine: a Spark run is a batch job for the CLI (``--engine spark``), not a request."""
    wanted = body or RunRequest()

    def effect(uow: UnitOfWork) -> tuple[int, Any]:
        kinds = tuple(wanted.kinds) if wanted.kinds else KINDS
        result = uow.analytics.run(principal.program_id, wanted.as_of, kinds=kinds)
        members = result.documents.get("segments", {}).get("members")
        return 201, {"as_of": result.as_of.isoformat(), "engine": "duckdb",
                     "stored": [k for k in KINDS if k in result.documents], "skipped": result.skipped,
                     "seconds": {k: round(v, 3) for k, v in result.seconds.items()}, "segments": members}

    return _run(request, app, principal, key, body, effect)


@router.post("/churn/evaluate")
def evaluate_churn(app: AppDep, body: EvaluateRequest, principal: Manager) -> dict[str, Any]:
    """Time-split evaluation of the churn model against logistic regression (AUC, precision at the
    top 10 %, Brier score, reliability), with the stored settings or the overrides given. Computed
    live, nothing is written; 409 ``not_enough_data`` when the history is too short."""
    overrides = body.model_dump(mode="json", exclude_none=True, exclude={"as_of"})
    with app.read() as uow:
        return _evaluate(lambda: uow.analytics.evaluate_churn(principal.program_id, body.as_of, overrides))


@router.post("/recommendations/evaluate")
def evaluate_recommendations(app: AppDep, body: EvaluateRequest, principal: Manager) -> dict[str, Any]:
    """Holdout evaluation of the recommendations (hit rate, precision, recall at k against global and
    segment popularity), with the stored settings or the overrides given (``recommend_level``,
    ``recommend_k``, ``recommend_holdout_days``). Computed live, nothing is written."""
    overrides = body.model_dump(mode="json", exclude_none=True, exclude={"as_of"})
    with app.read() as uow:
        return _evaluate(lambda: uow.analytics.evaluate_recommendations(principal.program_id, body.as_of, overrides))


# -- stored results ------------------------------------------------------------------------------------
@router.get("/{kind}")
def latest(app: AppDep, kind: Kind, principal: Reader, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """The latest stored result of one kind: ``overview`` (the program's vital signs), ``cohorts``,
    ``rfm``, ``clv``, ``churn``, ``health``, ``recommendations`` or ``facts``. Its ``rows`` (one per
    organization or cohort cell) are paged with ``limit`` / ``offset`` (``page`` says where you are);
    every other key comes whole. 404 with a ``hint`` before the first run."""
    _check_limit(app, limit)
    with app.read() as uow:
        found = _latest(uow, principal.program_id, kind)
    document = dict(found["document"])
    page = None
    if isinstance(document.get("rows"), list):
        document["rows"], page = _page(document["rows"], offset, limit)
    return {"kind": kind, "as_of": found["as_of"], "created_at": found["created_at"], "document": document,
            "page": page}


@router.get("/{kind}/history")
def history(app: AppDep, kind: Kind, principal: Reader, limit: History = 365) -> dict[str, Any]:
    """One entry per stored day, oldest first, for trend charts: for ``overview`` the headline
    numbers only (repeat rate, NRR, GRR, churn rate, NPS with its interval, participation,
    retention-gain value, ROI); for the others the document without its per-organization lists."""
    _known(kind)
    with app.read() as uow:
        found = uow.analytics.history(principal.program_id, kind, limit=limit)
    if kind == "overview":
        items = [{"as_of": s["as_of"], "created_at": s["created_at"], **headline(s["document"])} for s in found]
    else:
        items = [{"as_of": s["as_of"], "created_at": s["created_at"], "document": _summary(s["document"])}
                 for s in found]
    return {"kind": kind, "items": items}
