"""Organization admins on the pages: who they are and what they may reach, resolved per request.

An organization admin signs in like an operator (same login form, session and CSRF token), with a
user row linked to their participant (``users.participant_id``, created by ``allegiance users
create EMAIL --participant-id N --program SLUG``). Their reach is the rewards rule of an
``org_admin`` API key: their organization and everything below it, in their program only.

The link is checked on every request, not only at login: a participant who leaves or loses the
admin flag is logged out at their next click. Operator pages send them to their own start page
(``WrongArea``) and the pages here send operators to theirs, so neither sees the other's navigation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from allegiance.programs.model import ProgramSettings
from allegiance.rewards.policy import Actor, Requester
from allegiance.storage import web_queries
from allegiance.web.auth import (
    AccessWithdrawn,
    LoginRequired,
    WrongArea,
    _request_path,
    csrf_token,
    get_allegiance,
    log_out,
)
from allegiance.web.rendering import Money

OPERATOR_HOME = "/redemptions"


@dataclass
class OrgAdmin:
    """The signed-in organization admin; offers what the layout reads of an ``Operator``."""

    user: dict[str, Any]
    participant: dict[str, Any]
    organization: dict[str, Any]
    program: dict[str, Any]
    organizations: set[int]  # their organization and everything below it
    csrf: str
    settings: ProgramSettings
    money: Money = field(init=False)
    role_labels: dict[str, str] = field(init=False)
    area = "org"

    def __post_init__(self) -> None:
        self.money = Money(self.settings)
        self.role_labels = {r.code: r.label for r in self.settings.roles}

    @property
    def programs(self) -> list[dict[str, Any]]:
        return [self.program]

    @property
    def program_id(self) -> int:
        return int(self.program["id"])

    @property
    def actor(self) -> Actor:
        """As the rewards rules see them: an org admin gives the manager's approval."""
        return Actor(Requester.ORG_ADMIN, f"user:{self.user['id']}", int(self.organization["id"]),
                     int(self.participant["id"]))


def org_admin(request: Request) -> OrgAdmin:
    user_id = request.session.get("uid")
    if not isinstance(user_id, int):
        raise LoginRequired(_request_path(request))
    with get_allegiance(request).read() as uow:
        user = uow.access.user(user_id)
        if user is None or not user["is_active"]:
            log_out(request)
            raise LoginRequired(_request_path(request))
        if user.get("participant_id") is None:
            raise WrongArea(OPERATOR_HOME)
        found = web_queries.org_admin_of(uow.conn, int(user["participant_id"]))
        if found is None or not found["is_org_admin"] or found["status"] == "left":
            log_out(request)
            raise AccessWithdrawn()
        program_id, organization_id = int(found["program_id"]), int(found["organization_id"])
        program = {"id": program_id, "name": found["program_name"], "settings": found["program_settings"]}
        organization = uow.programs.organization(program_id, organization_id)
        reach = web_queries.subtree(uow.conn, program_id, organization_id)
    user.pop("password_hash", None)
    settings = ProgramSettings.model_validate(program["settings"])
    return OrgAdmin(user=user, participant=found, organization=organization, program=program, organizations=reach,
                    csrf=csrf_token(request), settings=settings)


OrgAdminDep = Annotated[OrgAdmin, Depends(org_admin)]
