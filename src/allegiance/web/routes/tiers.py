"""Tiers: each ladder with its tiers (what qualifies, what they give) and how many hold each, and the
organizations or people holding one tier. An organization's own tier and history are on its page.

Counts and members come from the stored tier status (``tier_status``): the tier each subject has
qualified for itself. A site that shares its group's better tier (``subsidiaries_share_status``) is
counted under its own; its page shows the tier it enjoys.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from starlette.responses import Response

from allegiance.kernel.cursors import decode_cursor
from allegiance.kernel.errors import NotFound
from allegiance.storage import web_queries
from allegiance.tiers.measure import StoredLadder
from allegiance.tiers.model import Criterion, Window
from allegiance.web.auth import OperatorDep, get_allegiance
from allegiance.web.pagination import window
from allegiance.web.rendering import render, with_query
from allegiance.web.routing import web_router

router = web_router()

PAGE = 50


def window_text(w: Window) -> str:
    if w.days:
        return f"the last {w.days} days"
    return "all time" if w.kind.value == "lifetime" else f"per {w.kind.value}"


def criterion_text(c: Criterion) -> str:
    what = {"value": f"Σ {c.field}", "volume": f"Σ {c.field}", "count": "events", "credits": "qualifying credits",
            "participants": "active people"}[c.measure.value]
    of = f" of {', '.join(c.event_types)}" if c.event_types else ""
    roles = f" in roles {', '.join(c.roles)}" if c.roles else ""
    within = f" over {window_text(c.window)}" if c.window else ""
    return f"{what}{of}{roles} ≥ {c.at_least:,}{within}"


def ladder_view(stored: StoredLadder, counts: dict[tuple[int, str | None], int]) -> dict[str, Any]:
    ladder = stored.ladder
    return {
        "id": stored.id, "code": stored.code, "name": ladder.name, "level": ladder.level.value,
        "window": window_text(ladder.window), "review": ladder.review_period.value, "grace_days": ladder.grace_days,
        "inherit_benefits": ladder.inherit_benefits, "below_first": counts.get((stored.id, None), 0),
        "tiers": [{"code": t.code, "name": t.name, "requires": [criterion_text(c) for c in t.requires],
                   "earn_multiplier": t.earn_multiplier, "discount_percent": t.discount_percent,
                   "benefits": [b.name for b in t.benefits], "holders": counts.get((stored.id, t.code), 0)}
                  for t in reversed(ladder.tiers)],  # highest first
    }


@router.get("/tiers")
def tiers_home(request: Request, operator: OperatorDep) -> Response:
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        ladders = uow.tiers.ladders(program_id)
        counts = web_queries.tier_counts(uow.conn, program_id)
    return render(request, "tiers/index.html", {"operator": operator,
                                                "ladders": [ladder_view(s, counts) for s in ladders]})


@router.get("/tiers/{ladder_code}/{tier_code}")
def tier_members(request: Request, operator: OperatorDep, ladder_code: str, tier_code: str,
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    program_id = operator.program_id
    with get_allegiance(request).read() as uow:
        stored = next((s for s in uow.tiers.ladders(program_id) if s.code == ladder_code), None)
        tier = next((t for t in stored.ladder.tiers if t.code == tier_code), None) if stored else None
        if stored is None or tier is None:
            raise NotFound(f"tier {tier_code} of ladder {ladder_code} not found")
        page = window(web_queries.tier_members(uow.conn, program_id, stored.id, tier_code,
                                               after=decode_cursor(cursor) or 0, limit=PAGE), PAGE)
    base = f"/tiers/{ladder_code}/{tier_code}"
    return render(request, "tiers/members.html", {
        "operator": operator, "ladder": stored, "tier": tier, "members": page.items,
        "next_url": with_query(base, cursor=page.next_cursor) if page.next_cursor else None,
        "first_url": base if cursor else None})
