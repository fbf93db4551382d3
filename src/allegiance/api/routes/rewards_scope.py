"""Who may see which rewards objects: the rewards half of the authorization policy.

Objects outside the caller's reach answer exactly like missing ones (same status, message, field),
so ids of other organizations and programs cannot be probed.
"""

from __future__ import annotations

from typing import Any

from allegiance.access.model import KeyRole, Principal
from allegiance.api.deps import Scope
from allegiance.bootstrap import UnitOfWork
from allegiance.kernel.errors import NotFound
from allegiance.rewards.policy import Actor, Requester

_KINDS = {KeyRole.OPERATOR: Requester.OPERATOR, KeyRole.ORG_ADMIN: Requester.ORG_ADMIN,
          KeyRole.PARTICIPANT: Requester.PARTICIPANT}


def actor_of(principal: Principal) -> Actor:
    return Actor(_KINDS[principal.role], principal.idempotency_scope, principal.organization_id,
                 principal.participant_id)


def _mine(principal: Principal, row: dict[str, Any], *fields: str) -> bool:
    if principal.role is not KeyRole.PARTICIPANT:
        return True
    return any(row.get(name) == principal.participant_id for name in fields)


def redemption(uow: UnitOfWork, principal: Principal, redemption_id: int) -> dict[str, Any]:
    row = uow.reward_store.redemption(principal.program_id, redemption_id)
    scope = Scope.of(principal, uow)
    if row is None or not scope.sees_organization(row["organization_id"]) or not _mine(
            principal, row, "participant_id", "recipient_participant_id"):
        raise NotFound(f"redemption {redemption_id} not found", field="redemption_id")
    return row


def concierge(uow: UnitOfWork, principal: Principal, request_id: int) -> dict[str, Any]:
    row = uow.reward_store.concierge(principal.program_id, request_id)
    scope = Scope.of(principal, uow)
    if row is None or not scope.sees_organization(row["organization_id"]) or not _mine(
            principal, row, "participant_id", "recipient_participant_id"):
        raise NotFound(f"concierge request {request_id} not found", field="request_id")
    return row


def check_parties(uow: UnitOfWork, principal: Principal, *, participant_id: int | None = None,
                  organization_id: int | None = None, recipient_id: int | None = None) -> None:
    """Names in a request body the caller may not see are reported as missing, like the service
    reports truly missing ones."""
    scope = Scope.of(principal, uow)
    if organization_id is not None and not scope.sees_organization(organization_id):
        raise NotFound(f"organization {organization_id} not found", field="organization_id")
    for field, ident, by_org in (("participant_id", participant_id, False),
                                 ("recipient_participant_id", recipient_id, True)):
        if ident is None:
            continue
        person = uow.program_store.participant(principal.program_id, ident)
        visible = person is not None and (scope.sees_organization(person["organization_id"]) if by_org
                                          else scope.sees_participant(person))
        if not visible:
            raise NotFound(f"participant {ident} not found", field=field)
