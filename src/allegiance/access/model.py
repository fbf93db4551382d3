"""Principals and the authorization policy, in one table.

A principal comes from an API key (or an operator's web session). Its *role* decides which actions
it may attempt; its *scope* (program, organization, participant) decides which objects it may see.
Objects outside the scope are reported as missing (404), never as forbidden, so ids of other
tenants cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from allegiance.kernel.errors import Forbidden


class KeyRole(StrEnum):
    OPERATOR = "operator"  # the whole program
    ORG_ADMIN = "org_admin"  # one organization (and the sites below it)
    INTEGRATION = "integration"  # write events only
    PARTICIPANT = "participant"  # themselves


class Action(StrEnum):
    READ_PROGRAM = "program:read"
    CONFIGURE_PROGRAM = "program:configure"
    MANAGE_KEYS = "keys:manage"
    READ_ORGS = "organizations:read"
    WRITE_ORGS = "organizations:write"
    READ_PEOPLE = "participants:read"
    WRITE_PEOPLE = "participants:write"
    READ_LEDGER = "ledger:read"
    AWARD = "ledger:award"
    ADJUST = "ledger:adjust"
    TRANSFER = "ledger:transfer"
    SPEND = "ledger:spend"
    HOLD = "ledger:hold"
    RESOLVE_HOLD = "ledger:resolve-hold"
    REVERSE = "ledger:reverse"
    WRITE_EVENTS = "events:write"
    READ_EVENTS = "events:read"
    MANAGE_EVENT_TYPES = "event-types:write"
    READ_RULES = "rules:read"
    MANAGE_RULES = "rules:write"
    QUOTE = "rules:quote"


_ALL = frozenset(Action)
POLICY: dict[KeyRole, frozenset[Action]] = {
    KeyRole.OPERATOR: _ALL,
    KeyRole.ORG_ADMIN: frozenset({
        Action.READ_PROGRAM, Action.READ_ORGS, Action.READ_PEOPLE, Action.WRITE_PEOPLE, Action.READ_LEDGER,
        Action.TRANSFER, Action.SPEND, Action.HOLD, Action.RESOLVE_HOLD, Action.READ_EVENTS,
        Action.READ_RULES, Action.QUOTE,
    }),
    KeyRole.INTEGRATION: frozenset({Action.WRITE_EVENTS, Action.QUOTE}),
    KeyRole.PARTICIPANT: frozenset({
        Action.READ_PROGRAM, Action.READ_ORGS, Action.READ_PEOPLE, Action.READ_LEDGER, Action.SPEND,
        Action.HOLD, Action.READ_RULES, Action.QUOTE,
    }),
}


@dataclass(frozen=True)
class Principal:
    program_id: int
    role: KeyRole
    key_id: int | None = None
    organization_id: int | None = None  # org admins: their organization
    participant_id: int | None = None  # participants: themselves
    user_id: int | None = None  # operators signed in on the web

    def require(self, action: Action) -> None:
        if action not in POLICY[self.role]:
            raise Forbidden(f"a {self.role.value} key may not {action.value}")

    @property
    def idempotency_scope(self) -> str:
        return f"key:{self.key_id}" if self.key_id is not None else f"user:{self.user_id}"


def visible_organizations(principal: Principal, subtree: set[int]) -> set[int] | None:
    """None = every organization of the program; otherwise the ids this principal may see."""
    if principal.role is KeyRole.OPERATOR:
        return None
    if principal.role is KeyRole.INTEGRATION:
        return set()
    return subtree
