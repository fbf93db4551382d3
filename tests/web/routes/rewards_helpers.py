"""Given-steps shared by the rewards pages' tests: items, people with points, waiting redemptions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from allegiance.bootstrap import Allegiance
from allegiance.rewards.model import ApprovalPolicy, CatalogItemCreate, RedemptionRequest
from allegiance.rewards.policy import Actor, Requester
from tests import factories
from tests.web.conftest import PASSWORD, OperatorUser


def needs_manager_for_travel(app: Allegiance, program_id: int, *, operator_approval: bool = False) -> None:
    with app.write() as uow:
        uow.rewards.set_program_policy(program_id, ApprovalPolicy(approval_categories=["travel"],
                                                                  operator_approval=operator_approval), "test")


def item(app: Allegiance, program_id: int, cost: int, *, name: str = "Weekend in Lisbon",
         category: str = "travel", stock: int | None = None) -> dict[str, Any]:
    with app.write() as uow:
        return uow.rewards.create_item(program_id, CatalogItemCreate.model_validate({
            "code": f"i-{uuid.uuid4().hex[:8]}", "names": {"en": name}, "category": category, "cost": cost,
            "stock": stock}))


@dataclass
class Team:
    organization: dict[str, Any]
    admin: dict[str, Any]
    member: dict[str, Any]
    account: int


def team(app: Allegiance, program_id: int, name: str, funds: int = 10_000, **org: Any) -> Team:
    organization = factories.organization(app, program_id, name=name, **org)
    admin = factories.participant(app, program_id, organization["id"], name=f"{name} Admin", is_org_admin=True)
    member = factories.participant(app, program_id, organization["id"], name=f"{name} Member")
    account = factories.personal_account(app, program_id, organization["id"], member["id"])
    factories.fund(app, program_id, account, funds)
    return Team(organization, admin, member, account)


def redeem(app: Allegiance, program_id: int, who: Team, item_id: int, *, delivery: str = "") -> dict[str, Any]:
    actor = Actor(Requester.PARTICIPANT, "test", who.organization["id"], who.member["id"])
    with app.write() as uow:
        return uow.rewards.redeem(program_id, actor, RedemptionRequest(item_id=item_id, delivery=delivery))


def org_admin_user(app: Allegiance, participant_id: int) -> OperatorUser:
    email = f"admin-{uuid.uuid4().hex[:8]}@partner.example"
    with app.write() as uow:
        user_id = uow.access.create_user(email, "Anna Admin", PASSWORD, participant_id=participant_id)
    return OperatorUser(user_id, email, "Anna Admin", PASSWORD)
