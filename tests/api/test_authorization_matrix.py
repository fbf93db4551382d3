"""Every API route × every kind of caller × whose object it is → the status the policy promises.

The routes come from the app's own route table, so a new route that is not in ``EXPECTED`` fails
here until someone writes down who may call it (deny by default). For each cell the test also
proves that a refused request wrote nothing (a digest of every row of every table is unchanged),
that an allowed write did write, and that an object out of reach answers exactly like one that
does not exist (same status, same body apart from the ids), so ids of other tenants can't be probed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from allegiance.access.model import KeyRole
from allegiance.api.app import create_api
from allegiance.bootstrap import build
from allegiance.config import Settings
from tests import factories as f
from tests.api import matrix_analytics as analytics
from tests.api import matrix_coop as coop
from tests.api import matrix_partners as partners
from tests.api import matrix_referrals as referrals
from tests.api.conftest import (
    CALLERS,
    EVENT_TYPE,
    FOREIGN,
    INTEGRATION,
    MALFORMED,
    NO_KEY,
    OPERATOR,
    ORG_ADMIN,
    OTHER,
    OWN,
    OWNERS,
    PARTICIPANT,
    QUIET,
    REVOKED,
    Side,
    World,
)

pytestmark = [QUIET]

PUBLIC = {("GET", "/healthz")}  # the only routes outside /api/v1, and the only ones without a key
NOWHERE = "nonexistent"
MISSING = 987_654_321
UNAUTHENTICATED = (NO_KEY, REVOKED, MALFORMED)

# How far a role reaches: the whole program, its organization (and subtree), or only itself.
PROGRAM, ORG, SELF = "program", "org", "self"


def route_table() -> list[tuple[str, str]]:
    """(method, path template) of every API route, read from a freshly built app. FastAPI 0.16x keeps
    included routers nested in ``app.routes``; ``iter_route_contexts`` walks them as mounted."""
    app = create_api(build(Settings(database_url="sqlite:///:memory:")))
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path:
            found.extend((method, context.path) for method in context.methods or ())
    return sorted(found)


@dataclass
class Req:
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[World, str], Req]


@dataclass(frozen=True)
class Rule:
    """What one route promises. Callers not in ``reach`` get 403; bad credentials always 401."""

    ok: int
    reach: dict[str, str]
    build: Builder
    owner: str = "path"  # what the owner dimension varies: an id in the "path", in the "body", or "none"
    refused: int = 404  # an object out of reach, which must equal what a nonexistent one answers
    write: bool = False
    items: Callable[[dict[str, Any]], Any] | None = None  # list routes: an item's organization id

    def expect(self, caller: str, owner: str) -> int:
        if caller in UNAUTHENTICATED:
            return 401
        reach = self.reach.get(caller)
        if reach is None:
            return 403
        if owner == OWN or (owner == FOREIGN and reach == PROGRAM):
            return self.ok
        return self.refused


def side(world: World, owner: str) -> Side:
    if owner == NOWHERE:
        return Side(MISSING, MISSING, MISSING, MISSING, MISSING)
    return world.sides[owner]


def fresh(make: Callable[[World, str], int]) -> Callable[[World, str], int]:
    """An object made for this one request (it is consumed by it), or a missing id."""
    return lambda world, owner: MISSING if owner == NOWHERE else make(world, owner)


new_hold = fresh(World.hold)
new_award = fresh(World.award)
new_participant = fresh(World.participant)
new_key = fresh(World.key)
new_event = fresh(World.event)


def seeded(world: World, path: str) -> Req:
    """A list route, with a hold and an event on every side so that each list has something to leak."""
    for owner in OWNERS:
        world.hold(owner)
        world.event(owner)
    return Req(path)


def org_of(item: dict[str, Any]) -> Any:
    return item["organization_id"]


READERS = {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: SELF}
MATRIX_RULES: dict[str, Any] = {"rules": [{
    "code": "one", "name": "One point per order", "trigger": EVENT_TYPE, "action": {"kind": "fixed", "amount": 1},
    "goal": {"behavior": "order more", "metric": "orders", "expected_uplift": "+1 %"}}]}


def contest(world: World, owner: str) -> str:
    """A contest active in the owner's program (a fresh code each time, so it can be closed once)."""
    if owner == NOWHERE:
        return "nonexistent"
    code = f"c{uuid.uuid4().hex[:8]}"
    document = {**MATRIX_RULES, "contests": [{
        "code": code, "name": "Top", "period": "quarter", "measure": {"event_types": [EVENT_TYPE]}, "top": 1,
        "prizes": [{"kind": "fixed", "amount": 5}], "goal": MATRIX_RULES["rules"][0]["goal"]}]}
    program_id = side(world, owner).program_id
    with world.allegiance.write() as uow:
        uow.rules.activate(program_id, uow.rules.save(program_id, document, by="matrix")["version"], by="matrix")
    return code


def benefit(world: World, owner: str) -> int:
    """A benefit granted to the owner's organization (an entitlement with 5 to pass on)."""
    if owner == NOWHERE:
        return MISSING
    target = side(world, owner)
    with world.allegiance.write() as uow:
        return uow.rule_store.insert_award({
            "program_id": target.program_id, "rule_set_version": 1, "rule_code": "matrix", "kind": "benefit",
            "event_id": None, "occurred_at": datetime.now(UTC), "organization_id": target.organization_id,
            "participant_id": None, "unit": None, "amount": 5, "status": "granted", "reason": "matrix",
            "inputs": {"benefit": "ads"}})


def rule_version(world: World, owner: str) -> int:
    """A fresh draft version in the owner's program (versions of another program must be 404)."""
    if owner == NOWHERE:
        return MISSING
    with world.allegiance.write() as uow:
        return int(uow.rules.save(side(world, owner).program_id, MATRIX_RULES, by="matrix")["version"])


# -- tiers (issue 4): a ladder and store credit in the owner's program --------------------------------------
MATRIX_LADDER = {"code": "status", "name": "Status", "tiers": [
    {"code": "member", "name": "Member"},
    {"code": "gold", "name": "Gold", "requires": [{"measure": "count", "event_types": [EVENT_TYPE], "at_least": 9}],
     "benefits": [{"code": "desk", "kind": "priority_support", "name": "Priority desk", "roles": ["engineer"]}]}]}


def ladder(world: World, owner: str) -> str:
    """The program's organization ladder (made once per program); a missing code for NOWHERE."""
    if owner == NOWHERE:
        return "nonexistent"
    program_id = side(world, owner).program_id
    with world.allegiance.write() as uow:
        if uow.tier_store.ladder(program_id, "status") is None:
            uow.tiers.save_ladder(program_id, MATRIX_LADDER, by="matrix")
    return "status"


def credit_ready(world: World, owner: str) -> Side:
    """The owner's program has a store-credit unit and the owner's pool holds some of it."""
    from allegiance.programs.model import UnitConfig

    target = side(world, owner)
    if owner == NOWHERE:
        return target
    with world.allegiance.write() as uow:
        settings = uow.programs.settings(target.program_id)
        if settings.unit("EUR") is None:
            settings.units.append(UnitConfig(code="EUR", name="Store credit", scale=2, kind="store_credit"))
            uow.programs.configure(target.program_id, settings)
    f.fund(world.allegiance, target.program_id,
           f.pool_account(world.allegiance, target.program_id, target.organization_id, unit="EUR"), 100)
    return target


# -- rewards (issue 4): objects made through the services, in the owner's program ------------------------
REWARDS_POLICY = {"pool_spenders": ["org_admin", "purchasing_manager"], "approval_categories": ["travel"]}


def reward_item(world: World, program_id: int, category: str = "goods") -> int:
    from allegiance.rewards.model import ApprovalPolicy, CatalogItemCreate

    extra = {"face_value": {"currency": "EUR", "amount": 5}} if category == "charity" else {}
    with world.allegiance.write() as uow:
        uow.rewards.set_program_policy(program_id, ApprovalPolicy.model_validate(REWARDS_POLICY), "matrix")
        return int(uow.rewards.create_item(program_id, CatalogItemCreate.model_validate(
            {"code": f"m{uuid.uuid4().hex[:8]}", "names": {"en": "Matrix"}, "category": category, "cost": 10,
             **extra}))["id"])


def pool_funded(world: World, owner: str) -> Side:
    """The owner's pool holds enough for one more redemption, and the policy lets its people spend it."""
    target = side(world, owner)
    if owner != NOWHERE:
        reward_item(world, target.program_id)
        f.fund(world.allegiance, target.program_id, target.pool_account_id, 10)
    return target


def redemption(world: World, owner: str, category: str = "goods") -> int:
    """A redemption the owner's participant asked for: ``travel`` waits for approval, others are approved."""
    from allegiance.rewards.model import RedemptionRequest
    from allegiance.rewards.policy import Actor, Requester

    if owner == NOWHERE:
        return MISSING
    target = side(world, owner)
    item = reward_item(world, target.program_id, category)
    actor = Actor(Requester.PARTICIPANT, "matrix", target.organization_id, target.participant_id)
    with world.allegiance.write() as uow:
        return int(uow.rewards.redeem(target.program_id, actor, RedemptionRequest(item_id=item))["id"])


def concierge_request(world: World, owner: str, *, quoted: bool = False) -> int:
    from allegiance.rewards.model import ConciergeAsk, ConciergeQuote
    from allegiance.rewards.policy import Actor, Requester

    if owner == NOWHERE:
        return MISSING
    target = pool_funded(world, owner)
    actor = Actor(Requester.PARTICIPANT, "matrix", target.organization_id, target.participant_id)
    with world.allegiance.write() as uow:
        made = uow.concierge.ask(target.program_id, actor, ConciergeAsk(description="off-catalog", source="pool"))
        if quoted:
            uow.concierge.quote(target.program_id, made["id"], Actor(Requester.OPERATOR, "matrix"),
                                ConciergeQuote(cost=10))
    return int(made["id"])


def rewards_seeded(world: World, path: str) -> Req:
    """A redemption, a concierge request and a donation on every side, so each list has something to leak."""
    from allegiance.rewards.model import DonationRequest
    from allegiance.rewards.policy import Actor, Requester

    for owner in OWNERS:
        target = side(world, owner)
        redemption(world, owner)
        concierge_request(world, owner)
        cause = reward_item(world, target.program_id, "charity")
        actor = Actor(Requester.PARTICIPANT, "matrix", target.organization_id, target.participant_id)
        with world.allegiance.write() as uow:
            uow.rewards.donate(target.program_id, actor, DonationRequest(cause_id=cause, points=10))
    return Req(path)


V1 = "/api/v1"

EXPECTED: dict[tuple[str, str], Rule] = {
    ("GET", f"{V1}/programs"): Rule(200, READERS, lambda w, o: Req(f"{V1}/programs"), owner="none"),
    ("GET", f"{V1}/programs/current"): Rule(200, READERS, lambda w, o: Req(f"{V1}/programs/current"), owner="none"),
    ("PUT", f"{V1}/programs/current/settings"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/programs/current/settings", {
            "roles": [{"code": code, "label": code} for code in (
                "owner", "purchasing_manager", "sales_rep", "engineer", "accountant", "other",
                f"r{uuid.uuid4().hex[:8]}")]})),
    # -- organizations
    ("GET", f"{V1}/organizations"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/organizations"),
                                         owner="none", items=lambda i: i["id"]),
    ("POST", f"{V1}/organizations"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", refused=422, write=True,
        build=lambda w, o: Req(f"{V1}/organizations", {"external_id": w.ref("org"), "name": "New Co",
                                                        "parent_id": side(w, o).organization_id})),
    ("GET", f"{V1}/organizations/{{organization_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}")),
    ("PATCH", f"{V1}/organizations/{{organization_id}}"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}", {"segment": w.ref("seg")})),
    # -- participants
    ("GET", f"{V1}/participants"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/participants"),
                                        owner="none", items=org_of),
    ("POST", f"{V1}/participants"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, owner="body", refused=422, write=True,
        build=lambda w, o: Req(f"{V1}/participants", {"organization_id": side(w, o).organization_id,
                                                       "external_id": w.ref("p"), "name": "New Person",
                                                       "role": "engineer"})),
    ("GET", f"{V1}/participants/{{participant_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/participants/{side(w, o).participant_id}")),
    ("PATCH", f"{V1}/participants/{{participant_id}}"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/participants/{side(w, o).participant_id}", {"name": w.ref("name")})),
    ("POST", f"{V1}/participants/{{participant_id}}/leave"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/participants/{new_participant(w, o)}/leave", {"reason": "moved on"})),
    # -- accounts
    ("GET", f"{V1}/accounts"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/accounts"), owner="none",
                                    items=org_of),
    ("GET", f"{V1}/accounts/{{account_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/accounts/{side(w, o).personal_account_id}")),
    ("GET", f"{V1}/accounts/{{account_id}}/postings"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/accounts/{side(w, o).personal_account_id}/postings")),
    # -- transactions
    ("GET", f"{V1}/transactions"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/transactions"),
                                        owner="none", items=org_of),
    ("GET", f"{V1}/transactions/{{transaction_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/transactions/{new_award(w, o)}")),
    ("POST", f"{V1}/transactions/awards"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/awards", {"organization_id": side(w, o).organization_id,
                                                              "participant_id": side(w, o).participant_id,
                                                              "amount": 10})),
    ("POST", f"{V1}/transactions/spends"): Rule(
        201, READERS, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/spends", {"account_id": side(w, o).personal_account_id,
                                                              "amount": 10})),
    ("POST", f"{V1}/transactions/adjustments"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/adjustments", {"account_id": side(w, o).personal_account_id,
                                                                   "amount": 5, "memo": "correction"})),
    ("POST", f"{V1}/transactions/transfers"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/transactions/transfers", {
            "from_account_id": side(w, o).personal_account_id, "to_account_id": side(w, o).pool_account_id,
            "amount": 10})),
    ("POST", f"{V1}/transactions/{{transaction_id}}/reverse"): Rule(
        201, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/transactions/{new_award(w, o)}/reverse", {"memo": "undo"})),
    # -- holds
    ("GET", f"{V1}/holds"): Rule(200, READERS, lambda w, o: seeded(w, f"{V1}/holds"), owner="none",
                                 items=org_of),
    ("POST", f"{V1}/holds"): Rule(
        201, READERS, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/holds", {"account_id": side(w, o).personal_account_id, "amount": 10})),
    ("GET", f"{V1}/holds/{{hold_id}}"): Rule(200, READERS, lambda w, o: Req(f"{V1}/holds/{new_hold(w, o)}")),
    ("POST", f"{V1}/holds/{{hold_id}}/post"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/holds/{new_hold(w, o)}/post", {})),
    ("POST", f"{V1}/holds/{{hold_id}}/void"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/holds/{new_hold(w, o)}/void")),
    # -- events
    ("POST", f"{V1}/events"): Rule(
        201, {OPERATOR: PROGRAM, INTEGRATION: PROGRAM}, owner="body", refused=422, write=True,
        build=lambda w, o: Req(f"{V1}/events", {"source_id": w.ref("src"), "type": EVENT_TYPE,
                                                "occurred_at": datetime.now(UTC).isoformat(),
                                                "organization_id": side(w, o).organization_id,
                                                "payload": {"amount_minor": 3}})),
    ("GET", f"{V1}/events"): Rule(200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, lambda w, o: seeded(w, f"{V1}/events"),
                                  owner="none", items=org_of),
    ("GET", f"{V1}/events/{{event_id}}"): Rule(200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG},
                                               lambda w, o: Req(f"{V1}/events/{new_event(w, o)}")),
    ("GET", f"{V1}/event-types"): Rule(200, READERS, lambda w, o: Req(f"{V1}/event-types"), owner="none"),
    ("PUT", f"{V1}/event-types/{{name}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: (lambda name: Req(f"{V1}/event-types/{name}", {"name": name}))(
            f"matrix.t{uuid.uuid4().hex[:8]}")),
    # -- api keys
    ("GET", f"{V1}/api-keys"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/api-keys"), owner="none"),
    ("POST", f"{V1}/api-keys"): Rule(
        201, {OPERATOR: PROGRAM}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/api-keys", {"name": "new", "role": "org_admin",
                                                  "organization_id": side(w, o).organization_id})),
    ("DELETE", f"{V1}/api-keys/{{key_id}}"): Rule(
        204, {OPERATOR: PROGRAM}, write=True, build=lambda w, o: Req(f"{V1}/api-keys/{new_key(w, o)}")),
    # -- rules (issue 4)
    ("GET", f"{V1}/rules/schema"): Rule(200, READERS, lambda w, o: Req(f"{V1}/rules/schema"), owner="none"),
    ("GET", f"{V1}/rules/active"): Rule(200, READERS, lambda w, o: Req(f"{V1}/rules/active"), owner="none"),
    ("GET", f"{V1}/rules/versions"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/rules/versions"),
                                          owner="none"),
    ("POST", f"{V1}/rules/versions"): Rule(
        201, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/rules/versions", {"document": MATRIX_RULES, "note": w.ref("n")})),
    ("PUT", f"{V1}/rules/draft/rules/{{code}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/rules/draft/rules/one", {"rule": {**MATRIX_RULES["rules"][0],
                                                                       "name": w.ref("n")}})),
    ("GET", f"{V1}/rules/versions/{{version}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none",
        build=lambda w, o: Req(f"{V1}/rules/versions/{rule_version(w, o)}")),
    ("POST", f"{V1}/rules/versions/{{version}}/activate"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/rules/versions/{rule_version(w, o)}/activate")),
    ("POST", f"{V1}/rules/simulate"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none",
        build=lambda w, o: Req(f"{V1}/rules/simulate", {"document": MATRIX_RULES, "from": "2020-01-01T00:00:00Z",
                                                        "to": "2030-01-01T00:00:00Z"})),
    ("POST", f"{V1}/quote"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: ORG, INTEGRATION: PROGRAM}, owner="body",
        build=lambda w, o: Req(f"{V1}/quote", {"organization_id": side(w, o).organization_id,
                                               "type": EVENT_TYPE, "payload": {"amount_minor": 500}})),
    ("GET", f"{V1}/organizations/{{organization_id}}/statement"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}/statement")),
    ("GET", f"{V1}/participants/{{participant_id}}/standing"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/participants/{side(w, o).participant_id}/standing")),
    ("GET", f"{V1}/rules/contests/{{code}}/standings"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", refused=404,
        build=lambda w, o: Req(f"{V1}/rules/contests/{contest(w, o)}/standings")),
    ("POST", f"{V1}/rules/contests/{{code}}/close"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/rules/contests/{contest(w, o)}/close", {"period": "2020-Q1"})),
    ("GET", f"{V1}/organizations/{{organization_id}}/benefits"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}/benefits")),
    ("POST", f"{V1}/benefits/{{award_id}}/assignments"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/benefits/{benefit(w, o)}/assignments",
                               {"quantity": 1, "assignee_ref": w.ref("c"), "assignee_name": "End client"})),
    ("GET", f"{V1}/benefits/assignments"): Rule(
        200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/benefits/assignments", params={"assignee_ref": "x"}),
        owner="none"),
    # -- tiers and discount cards (issue 4)
    ("GET", f"{V1}/tiers/schema"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/tiers/schema"),
                                        owner="none"),
    ("GET", f"{V1}/tiers/ladders"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/tiers/ladders"),
                                         owner="none"),
    ("POST", f"{V1}/tiers/ladders"): Rule(
        201, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/tiers/ladders", {"document": {**MATRIX_LADDER, "code": w.ref("l")}})),
    ("GET", f"{V1}/tiers/ladders/{{code}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", build=lambda w, o: Req(f"{V1}/tiers/ladders/{ladder(w, o)}")),
    ("PUT", f"{V1}/tiers/ladders/{{code}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/tiers/ladders/{ladder(w, o)}",
                               {"document": {**MATRIX_LADDER, "name": w.ref("n")}})),
    ("DELETE", f"{V1}/tiers/ladders/{{code}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/tiers/ladders/{ladder(w, o)}")),
    ("POST", f"{V1}/tiers/review"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: (ladder(w, o), Req(f"{V1}/tiers/review"))[1]),
    ("GET", f"{V1}/organizations/{{organization_id}}/tier"): Rule(
        200, {**READERS, PARTICIPANT: ORG},
        build=lambda w, o: (ladder(w, o), Req(f"{V1}/organizations/{side(w, o).organization_id}/tier"))[1]),
    ("GET", f"{V1}/participants/{{participant_id}}/tier"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/participants/{side(w, o).participant_id}/tier")),
    ("GET", f"{V1}/organizations/{{organization_id}}/tier/benefits"): Rule(
        200, {**READERS, PARTICIPANT: ORG},
        build=lambda w, o: (ladder(w, o), Req(f"{V1}/organizations/{side(w, o).organization_id}/tier/benefits"))[1]),
    ("GET", f"{V1}/organizations/{{organization_id}}/discount-card"): Rule(
        200, {**READERS, PARTICIPANT: ORG},
        build=lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}/discount-card")),
    ("PUT", f"{V1}/organizations/{{organization_id}}/discount-card"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/organizations/{side(w, o).organization_id}/discount-card",
                               {"card": {"kind": "fixed", "percent": "5"}})),
    ("POST", f"{V1}/organizations/{{organization_id}}/store-credit/apply"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/organizations/{credit_ready(w, o).organization_id}/store-credit/apply",
                               {"reference": w.ref("inv"), "amount": 10, "unit": "EUR"})),
    # -- rewards catalog and redemptions (issue 4)
    ("GET", f"{V1}/catalog"): Rule(200, READERS, lambda w, o: Req(f"{V1}/catalog"), owner="none"),
    ("POST", f"{V1}/catalog"): Rule(
        201, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/catalog", {"code": f"n{uuid.uuid4().hex[:8]}", "names": {"en": "New"},
                                                 "category": "goods", "cost": 5})),
    ("GET", f"{V1}/catalog/{{item_id}}"): Rule(
        200, READERS, owner="none", build=lambda w, o: Req(f"{V1}/catalog/{reward_item(w, w.program_id)}")),
    ("PATCH", f"{V1}/catalog/{{item_id}}"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/catalog/{reward_item(w, w.program_id)}", {"description": w.ref("d")})),
    ("GET", f"{V1}/redemptions"): Rule(200, READERS, lambda w, o: rewards_seeded(w, f"{V1}/redemptions"),
                                       owner="none", items=org_of),
    ("POST", f"{V1}/redemptions"): Rule(
        201, READERS, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/redemptions", {"item_id": reward_item(w, w.program_id), "source": "pool",
                                                     "organization_id": pool_funded(w, o).organization_id})),
    ("GET", f"{V1}/redemptions/{{redemption_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/redemptions/{redemption(w, o)}")),
    ("POST", f"{V1}/redemptions/{{redemption_id}}/approve"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/redemptions/{redemption(w, o, 'travel')}/approve")),
    ("POST", f"{V1}/redemptions/{{redemption_id}}/reject"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/redemptions/{redemption(w, o, 'travel')}/reject", {"reason": "no"})),
    ("POST", f"{V1}/redemptions/{{redemption_id}}/cancel"): Rule(
        200, READERS, write=True, build=lambda w, o: Req(f"{V1}/redemptions/{redemption(w, o)}/cancel", {})),
    ("POST", f"{V1}/redemptions/{{redemption_id}}/fulfil"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/redemptions/{redemption(w, o)}/fulfil", {"note": "sent"})),
    ("GET", f"{V1}/gift-register"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, owner="none",
        build=lambda w, o: Req(f"{V1}/gift-register", params={"year": 2026})),
    ("GET", f"{V1}/approval-policy"): Rule(200, READERS, lambda w, o: Req(f"{V1}/approval-policy"), owner="none"),
    ("PUT", f"{V1}/approval-policy"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/approval-policy", {**REWARDS_POLICY, "hold_days": 7})),
    ("GET", f"{V1}/approval-policy/organizations/{{organization_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/approval-policy/organizations/{side(w, o).organization_id}")),
    ("PUT", f"{V1}/approval-policy/organizations/{{organization_id}}"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/approval-policy/organizations/{side(w, o).organization_id}",
                               {"operator_approval": False})),
    ("POST", f"{V1}/concierge-requests"): Rule(
        201, READERS, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/concierge-requests", {"description": "a yacht", "source": "pool",
                                                            "organization_id": side(w, o).organization_id})),
    ("GET", f"{V1}/concierge-requests"): Rule(200, READERS, lambda w, o: rewards_seeded(w, f"{V1}/concierge-requests"),
                                              owner="none", items=org_of),
    ("GET", f"{V1}/concierge-requests/{{request_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/concierge-requests/{concierge_request(w, o)}")),
    ("POST", f"{V1}/concierge-requests/{{request_id}}/quote"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/concierge-requests/{concierge_request(w, o)}/quote", {"cost": 10})),
    ("POST", f"{V1}/concierge-requests/{{request_id}}/accept"): Rule(
        200, READERS, write=True,
        build=lambda w, o: Req(f"{V1}/concierge-requests/{concierge_request(w, o, quoted=True)}/accept")),
    ("POST", f"{V1}/concierge-requests/{{request_id}}/decline"): Rule(
        200, READERS, write=True,
        build=lambda w, o: Req(f"{V1}/concierge-requests/{concierge_request(w, o)}/decline", {"reason": "no"})),
    ("POST", f"{V1}/donations"): Rule(
        201, READERS, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/donations", {"cause_id": reward_item(w, w.program_id, "charity"), "points": 10,
                                                   "source": "pool",
                                                   "organization_id": pool_funded(w, o).organization_id})),
    ("GET", f"{V1}/donations"): Rule(200, READERS, lambda w, o: rewards_seeded(w, f"{V1}/donations"), owner="none",
                                     items=org_of),
    ("GET", f"{V1}/donations/statement"): Rule(
        200, READERS, lambda w, o: rewards_seeded(w, f"{V1}/donations/statement"), owner="none", items=org_of),
    # -- co-op funds (issue 4)
    ("GET", f"{V1}/coop/settings"): Rule(
        200, READERS, owner="none", build=lambda w, o: (coop.ready(w, w.program_id), Req(f"{V1}/coop/settings"))[1]),
    ("PUT", f"{V1}/coop/settings"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: (coop.ready(w, w.program_id), Req(f"{V1}/coop/settings", {
            **coop.TERMS, "yearly_budget": int(uuid.uuid4().int % 10**9) + 1}))[1]),
    ("GET", f"{V1}/coop/organizations/{{organization_id}}/fund"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/coop/organizations/{coop.funded(w, o)}/fund")),
    ("POST", f"{V1}/coop/organizations/{{organization_id}}/allocations"): Rule(
        201, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/coop/organizations/{coop.funded(w, o)}/allocations", {"amount": 100})),
    ("GET", f"{V1}/coop/plans"): Rule(200, READERS, lambda w, o: (coop.seeded(w), Req(f"{V1}/coop/plans"))[1],
                                      owner="none", items=org_of),
    ("POST", f"{V1}/coop/plans"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: ORG}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/coop/plans", coop.plan_body(coop.funded(w, o)))),
    ("POST", f"{V1}/coop/plans/{{plan_id}}/approve"): Rule(
        200, {OPERATOR: PROGRAM}, write=True, build=lambda w, o: Req(f"{V1}/coop/plans/{coop.plan(w, o)}/approve")),
    ("POST", f"{V1}/coop/plans/{{plan_id}}/reject"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/coop/plans/{coop.plan(w, o)}/reject", {"reason": "no budget"})),
    ("GET", f"{V1}/coop/claims"): Rule(200, READERS, lambda w, o: (coop.seeded(w), Req(f"{V1}/coop/claims"))[1],
                                       owner="none", items=org_of),
    ("POST", f"{V1}/coop/claims"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: ORG}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/coop/claims", coop.claim_body(w, o))),
    ("GET", f"{V1}/coop/claims/{{claim_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/coop/claims/{coop.claim(w, o)}")),
    ("POST", f"{V1}/coop/claims/{{claim_id}}/submit"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/coop/claims/{coop.claim(w, o, 'draft')}/submit")),
    ("POST", f"{V1}/coop/claims/{{claim_id}}/proofs"): Rule(
        201, {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/coop/claims/{coop.claim(w, o)}/proofs", coop.proof_body())),
    ("GET", f"{V1}/coop/claims/{{claim_id}}/proofs/{{proof_id}}"): Rule(
        200, READERS, lambda w, o: (lambda ids: Req(f"{V1}/coop/claims/{ids[0]}/proofs/{ids[1]}"))(coop.proof(w, o))),
    ("POST", f"{V1}/coop/claims/{{claim_id}}/approve"): Rule(
        200, {OPERATOR: PROGRAM}, write=True, build=lambda w, o: Req(f"{V1}/coop/claims/{coop.claim(w, o)}/approve")),
    ("POST", f"{V1}/coop/claims/{{claim_id}}/reject"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/coop/claims/{coop.claim(w, o)}/reject", {"reason": "not our brand"})),
    ("POST", f"{V1}/coop/claims/{{claim_id}}/settle"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/coop/claims/{coop.claim(w, o, 'approved')}/settle", {"reference": "CN"})),
    # -- referrals (issue 4)
    ("GET", f"{V1}/referrals/settings"): Rule(
        200, READERS, owner="none",
        build=lambda w, o: (referrals.ready(w, w.program_id), Req(f"{V1}/referrals/settings"))[1]),
    ("PUT", f"{V1}/referrals/settings"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/referrals/settings", {"qualifying_event": EVENT_TYPE,
                                                            "min_amount": int(uuid.uuid4().int % 10**6)})),
    ("GET", f"{V1}/referrals/codes"): Rule(
        200, READERS, owner="none", items=org_of,
        build=lambda w, o: ([referrals.code(w, side) for side in OWNERS], Req(f"{V1}/referrals/codes"))[1]),
    ("POST", f"{V1}/referrals/codes"): Rule(
        200, {OPERATOR: PROGRAM, ORG_ADMIN: ORG, PARTICIPANT: SELF}, owner="body", write=True,
        build=lambda w, o: (referrals.ready(w, w.program_id), Req(f"{V1}/referrals/codes", {
            "participant_id": side(w, o).participant_id, "rotate": True}))[1]),
    ("POST", f"{V1}/referrals"): Rule(
        201, {OPERATOR: PROGRAM, INTEGRATION: PROGRAM}, owner="body", write=True,
        build=lambda w, o: Req(f"{V1}/referrals", referrals.register_body(w, o))),
    ("GET", f"{V1}/referrals"): Rule(200, READERS, lambda w, o: (referrals.seeded(w), Req(f"{V1}/referrals"))[1],
                                     owner="none", items=org_of),
    ("GET", f"{V1}/referrals/{{referral_id}}"): Rule(
        200, READERS, lambda w, o: Req(f"{V1}/referrals/{referrals.held(w, o)}")),
    ("POST", f"{V1}/referrals/{{referral_id}}/approve"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/referrals/{referrals.held(w, o)}/approve", {"note": "checked"})),
    ("POST", f"{V1}/referrals/{{referral_id}}/reject"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/referrals/{referrals.held(w, o)}/reject", {"reason": "own company"})),
    # -- coalition partners and finance (issue 4)
    ("GET", f"{V1}/partners"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/partners"), owner="none"),
    ("POST", f"{V1}/partners"): Rule(
        201, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/partners", {"code": f"n{uuid.uuid4().hex[:8]}", "name": "New partner"})),
    ("GET", f"{V1}/partners/{{partner_id}}"): Rule(
        200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/partners/{partners.partner(w, o)}")),
    ("PATCH", f"{V1}/partners/{{partner_id}}"): Rule(
        200, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/partners/{partners.partner(w, o)}", {"name": w.ref("n")})),
    ("POST", f"{V1}/partners/{{partner_id}}/keys"): Rule(
        201, {OPERATOR: PROGRAM}, write=True,
        build=lambda w, o: Req(f"{V1}/partners/{partners.partner(w, o)}/keys", {"name": "pos"})),
    ("POST", f"{V1}/partners/{{partner_id}}/earnings"): Rule(
        201, {OPERATOR: PROGRAM, INTEGRATION: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/partners/{partners.partner(w, o)}/earnings", partners.purchase(w, o))),
    ("POST", f"{V1}/partners/{{partner_id}}/redemptions"): Rule(
        201, {OPERATOR: PROGRAM, INTEGRATION: ORG}, write=True,
        build=lambda w, o: Req(f"{V1}/partners/{partners.partner(w, o)}/redemptions", partners.purchase(w, o))),
    ("GET", f"{V1}/partners/{{partner_id}}/operations"): Rule(
        200, {OPERATOR: PROGRAM, INTEGRATION: ORG},
        lambda w, o: Req(f"{V1}/partners/{partners.partner(w, o)}/operations")),
    ("POST", f"{V1}/partners/{{partner_id}}/operations/{{operation_id}}/reverse"): Rule(
        201, {OPERATOR: PROGRAM, INTEGRATION: ORG}, write=True,
        build=lambda w, o: Req(partners.reverse_path(w, o, V1), {"memo": "returned"})),
    ("GET", f"{V1}/partners/{{partner_id}}/settlement"): Rule(
        200, {OPERATOR: PROGRAM, INTEGRATION: ORG},
        lambda w, o: Req(f"{V1}/partners/{partners.partner(w, o)}/settlement", params=partners.PERIOD)),
    ("GET", f"{V1}/finance/liability"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/finance/liability"),
                                             owner="none"),
    ("GET", f"{V1}/finance/liability/organizations"): Rule(
        200, {OPERATOR: PROGRAM}, lambda w, o: seeded(w, f"{V1}/finance/liability/organizations"), owner="none",
        items=org_of),
    ("GET", f"{V1}/finance/breakage"): Rule(200, {OPERATOR: PROGRAM}, lambda w, o: Req(f"{V1}/finance/breakage"),
                                            owner="none"),
    ("GET", f"{V1}/finance/expiring"): Rule(200, {OPERATOR: PROGRAM}, owner="none",
                                            build=lambda w, o: Req(f"{V1}/finance/expiring", params={"days": 30})),
    ("POST", f"{V1}/finance/expiring/notify"): Rule(
        200, {OPERATOR: PROGRAM}, owner="none", write=True,
        build=lambda w, o: Req(f"{V1}/finance/expiring/notify", {"days": 30})),
    ("GET", f"{V1}/finance/export"): Rule(200, {OPERATOR: PROGRAM}, owner="none",
                                          build=lambda w, o: Req(f"{V1}/finance/export", params=partners.PERIOD)),
}

EXPECTED.update(analytics.expected(Rule, Req, V1, PROGRAM))

ROUTES = [r for r in route_table() if r not in PUBLIC]


def test_every_route_is_in_the_table_and_public_routes_are_known() -> None:
    found = set(route_table())
    assert found - PUBLIC - set(EXPECTED) == set(), "routes nobody wrote an expectation for (deny by default)"
    assert set(EXPECTED) - found == set(), "expectations for routes that no longer exist"
    assert all(path.startswith(f"{V1}/") for _, path in found - PUBLIC)


def test_public_health_needs_no_key(world: World) -> None:
    response = world.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def normalized(body: dict[str, Any]) -> dict[str, Any]:
    """A problem body with the ids taken out of its text, so two 404s can be compared."""
    return {k: re.sub(r"\d+", "N", v) if isinstance(v, str) else v for k, v in body.items()}


def send(world: World, method: str, req: Req, caller: str) -> Any:
    return world.client.request(method, req.path, json=req.json, params=req.params, headers=world.headers(caller))


def check_items(world: World, rule: Rule, caller: str, body: dict[str, Any]) -> list[str]:
    """A list answers only what the caller may see: never another program's, never a neighbour's."""
    assert rule.items is not None
    seen = {rule.items(item) for item in body["items"]}
    own, foreign, other = (world.sides[o].organization_id for o in OWNERS)
    problems = []
    if other in seen:
        problems.append("lists another program's objects")
    if caller == OPERATOR and foreign not in seen:
        problems.append("operator does not see the foreign organization's objects")
    if caller in (ORG_ADMIN, PARTICIPANT) and seen != {own}:
        problems.append(f"scoped list shows organizations {seen}, expected only {{{own}}}")
    return problems


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p.removeprefix(V1)}" for m, p in ROUTES])
def test_authorization_matrix(world: World, route: tuple[str, str]) -> None:
    assert route in EXPECTED, f"{route} has no expectation: every route must be listed (deny by default)"
    method, _ = route
    rule = EXPECTED[route]
    failures: list[str] = []
    for caller in CALLERS:
        for owner in OWNERS if rule.owner != "none" else (OWN,):
            req = rule.build(world, owner)
            before = world.fingerprint()
            response = send(world, method, req, caller)
            wrote = world.fingerprint() != before
            expected = rule.expect(caller, owner)
            where = f"{caller} on {owner}'s object: {method} {req.path} {req.json}"
            if response.status_code != expected:
                failures.append(f"{where} → {response.status_code}, expected {expected}: {response.text[:300]}")
                continue
            if expected >= 400:
                body = response.json()
                if response.headers["content-type"] != "application/problem+json":
                    failures.append(f"{where}: content-type {response.headers['content-type']}")
                if wrote:
                    failures.append(f"{where}: refused with {expected} but the database changed")
                if expected == 401 and response.headers.get("www-authenticate") != "Bearer":
                    failures.append(f"{where}: 401 without WWW-Authenticate: Bearer")
                if expected in (401, 403) and body.get("code") != {401: "unauthenticated", 403: "forbidden"}[expected]:
                    failures.append(f"{where}: code {body.get('code')}")
                if expected == rule.refused and caller not in UNAUTHENTICATED:
                    missing = send(world, method, rule.build(world, NOWHERE), caller)
                    if (missing.status_code, normalized(missing.json())) != (expected, normalized(body)):
                        failures.append(f"{where}: out of reach answers {body}, a missing id answers "
                                        f"{missing.status_code} {missing.json()}")
            elif wrote != rule.write:
                failures.append(f"{where}: {'a read wrote' if wrote else 'an allowed write wrote nothing'}")
            elif rule.items is not None:
                failures.extend(f"{where}: {p}" for p in check_items(world, rule, caller, response.json()))
    assert not failures, "\n".join(failures)


def test_org_admin_reaches_down_its_subtree_but_never_up(world: World) -> None:
    """An org admin of a parent sees its sites; a site's admin does not see the parent."""
    own = world.sides[OWN]
    site = f.organization(world.allegiance, world.program_id, parent_id=own.organization_id)
    with world.allegiance.write() as uow:
        _, site_admin = uow.access.create_key(world.program_id, "site", KeyRole.ORG_ADMIN,
                                              organization_id=site["id"])
    parent_admin = {"Authorization": f"Bearer {world.keys[ORG_ADMIN]}"}
    child_admin = {"Authorization": f"Bearer {site_admin}"}
    assert world.client.get(f"{V1}/organizations/{site['id']}", headers=parent_admin).status_code == 200
    assert world.client.get(f"{V1}/organizations/{own.organization_id}", headers=child_admin).status_code == 404
    listed = world.client.get(f"{V1}/organizations", headers=child_admin).json()["items"]
    assert [o["id"] for o in listed] == [site["id"]]


def colleague(world: World) -> tuple[int, int, int]:
    """Another participant of the caller's own organization: (participant, account, hold) ids."""
    own = world.sides[OWN]
    person = f.participant(world.allegiance, world.program_id, own.organization_id)
    account = f.personal_account(world.allegiance, world.program_id, own.organization_id, person["id"])
    f.fund(world.allegiance, world.program_id, account, 100)
    with world.allegiance.write() as uow:
        hold = uow.ledger.reserve(world.program_id, account, 10, ttl=timedelta(hours=1), memo="colleague")
    return person["id"], account, hold.id


def test_participant_key_cannot_read_a_colleague_directly(world: World) -> None:
    person, account, _ = colleague(world)
    me = {"Authorization": f"Bearer {world.keys[PARTICIPANT]}"}
    assert world.client.get(f"{V1}/participants/{person}", headers=me).status_code == 404
    assert world.client.get(f"{V1}/accounts/{account}", headers=me).status_code == 404
    assert world.client.get(f"{V1}/accounts/{account}/postings", headers=me).status_code == 404
    listed = world.client.get(f"{V1}/participants", headers=me).json()["items"]
    assert [p["id"] for p in listed] == [world.sides[OWN].participant_id]
    accounts = world.client.get(f"{V1}/accounts", headers=me).json()["items"]
    assert {a["participant_id"] for a in accounts} == {world.sides[OWN].participant_id}


def test_participant_key_cannot_read_a_colleagues_holds(world: World) -> None:
    _, account, hold = colleague(world)
    me = {"Authorization": f"Bearer {world.keys[PARTICIPANT]}"}
    listed = world.client.get(f"{V1}/holds", headers=me).json()["items"]
    assert account not in {h["account_id"] for h in listed}
    assert world.client.get(f"{V1}/holds/{hold}", headers=me).status_code == 404


def test_participant_key_cannot_read_a_colleagues_transactions(world: World) -> None:
    person, _, _ = colleague(world)
    own = world.sides[OWN]
    with world.allegiance.write() as uow:
        settings = uow.programs.settings(world.program_id)
        posted = uow.ledger.award(world.program_id, "PTS", 100, organization_id=own.organization_id,
                                  participant_id=person, split=settings.award_split, expiry=settings.expiry)
    me = {"Authorization": f"Bearer {world.keys[PARTICIPANT]}"}
    listed = world.client.get(f"{V1}/transactions", headers=me, params={"limit": 200}).json()["items"]
    assert posted.transaction_id not in {t["id"] for t in listed}
    assert world.client.get(f"{V1}/transactions/{posted.transaction_id}", headers=me).status_code == 404


@pytest.mark.parametrize("whose", [OTHER, NOWHERE])
def test_a_key_cannot_name_a_participant_outside_the_program(world: World, whose: str) -> None:
    before = world.fingerprint()
    body = {"name": "sneaky", "role": "org_admin", "organization_id": world.sides[OWN].organization_id,
            "participant_id": side(world, whose).participant_id}
    response = world.lenient().post(f"{V1}/api-keys", json=body, headers=world.headers(OPERATOR))
    assert response.status_code in (404, 422), response.text
    assert response.json()["field"] == "participant_id"
    assert world.fingerprint() == before


@pytest.mark.parametrize("direction", ["to foreign", "from foreign"])
def test_org_admin_cannot_move_points_across_organizations(world: World, direction: str) -> None:
    own, foreign = world.sides[OWN], world.sides[FOREIGN]
    source, target, field = ((own.personal_account_id, foreign.pool_account_id, "to_account_id")
                             if direction == "to foreign" else
                             (foreign.personal_account_id, own.pool_account_id, "from_account_id"))
    before = world.fingerprint()
    response = world.client.post(f"{V1}/transactions/transfers", headers=world.headers(ORG_ADMIN),
                                 json={"from_account_id": source, "to_account_id": target, "amount": 1})
    assert (response.status_code, response.json()["field"]) == (404, field), response.text
    assert world.fingerprint() == before


@pytest.mark.parametrize("path", ["/transactions/spends", "/holds"])
def test_participant_key_cannot_spend_the_company_pool(world: World, path: str) -> None:
    """``pool_spenders`` defaults to org admins: a participant's key cannot touch the pool at all."""
    before = world.fingerprint()
    response = world.client.post(V1 + path, json={"account_id": world.sides[OWN].pool_account_id, "amount": 1},
                                 headers=world.headers(PARTICIPANT))
    assert response.status_code in (403, 404), response.text
    assert response.json()["field"] == "account_id"
    assert world.fingerprint() == before


def leave(world: World) -> None:
    own = world.sides[OWN]
    response = world.client.post(f"{V1}/participants/{own.participant_id}/leave", json={"reason": "left"},
                                 headers=world.headers(OPERATOR))
    assert response.status_code == 200, response.text
    f.fund(world.allegiance, world.program_id, own.personal_account_id, 50)  # an operator's goodwill credit


def test_a_leavers_key_stops_working(world: World) -> None:
    leave(world)
    before = world.fingerprint()
    spend = world.client.post(f"{V1}/transactions/spends", headers=world.headers(PARTICIPANT),
                              json={"account_id": world.sides[OWN].personal_account_id, "amount": 10})
    read = world.client.get(f"{V1}/organizations/{world.sides[OWN].organization_id}",
                            headers=world.headers(PARTICIPANT))
    assert world.fingerprint() == before
    assert (spend.status_code, read.status_code) == (401, 401)


def test_no_new_key_for_a_leaver(world: World) -> None:
    leave(world)
    before = world.fingerprint()
    response = world.client.post(f"{V1}/api-keys", headers=world.headers(OPERATOR), json={
        "name": "leaver", "role": "participant", "participant_id": world.sides[OWN].participant_id})
    assert world.fingerprint() == before
    assert (response.status_code, response.json().get("field")) == (422, "participant_id")
