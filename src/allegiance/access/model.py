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
    SIMULATE_RULES = "rules:simulate"  # backtest a draft over stored events (operator only)
    # tiers, discount cards and store credit (issue 4)
    READ_TIERS = "tiers:read"
    MANAGE_TIERS = "tiers:write"
    APPLY_STORE_CREDIT = "store-credit:apply"
    # rewards (issue 4)
    READ_REWARDS = "rewards:read"
    MANAGE_CATALOG = "catalog:write"
    REDEEM = "rewards:redeem"
    APPROVE_REDEMPTIONS = "redemptions:approve"
    FULFIL_REDEMPTIONS = "redemptions:fulfil"
    SET_REWARD_POLICY = "rewards:policy"
    QUOTE_CONCIERGE = "concierge:quote"
    GIFT_REGISTER = "rewards:gift-register"
    # co-op funds (issue 4)
    READ_COOP = "coop:read"
    CLAIM_COOP = "coop:claim"
    REVIEW_COOP = "coop:review"
    ALLOCATE_COOP = "coop:allocate"
    # referrals (issue 4)
    READ_REFERRALS = "referrals:read"
    REFER = "referrals:refer"
    REGISTER_REFERRAL = "referrals:register"
    REVIEW_REFERRALS = "referrals:review"
    # coalition partners and finance (issue 4); integration keys act only for the partner they are
    # bound to (``partner_keys``), checked by the partner routes
    READ_PARTNERS = "partners:read"
    MANAGE_PARTNERS = "partners:write"
    PARTNER_TRANSACT = "partners:transact"
    PARTNER_SETTLEMENT = "partners:settlement"
    READ_FINANCE = "finance:read"
    RUN_FINANCE_JOBS = "finance:jobs"
    # analytics (issue 5): operators only; results name organizations across the whole program
    READ_ANALYTICS = "analytics:read"
    MANAGE_ANALYTICS = "analytics:write"  # settings, segments, runs and on-demand evaluations


_ALL = frozenset(Action)
POLICY: dict[KeyRole, frozenset[Action]] = {
    KeyRole.OPERATOR: _ALL,
    KeyRole.ORG_ADMIN: frozenset({
        Action.READ_PROGRAM, Action.READ_ORGS, Action.READ_PEOPLE, Action.WRITE_PEOPLE, Action.READ_LEDGER,
        Action.TRANSFER, Action.SPEND, Action.HOLD, Action.RESOLVE_HOLD, Action.READ_EVENTS,
        Action.READ_RULES, Action.QUOTE, Action.READ_TIERS, Action.APPLY_STORE_CREDIT,
        Action.READ_REWARDS, Action.REDEEM, Action.APPROVE_REDEMPTIONS, Action.SET_REWARD_POLICY,
        Action.GIFT_REGISTER,
        Action.READ_COOP, Action.CLAIM_COOP,
        Action.READ_REFERRALS, Action.REFER,
    }),
    KeyRole.INTEGRATION: frozenset({Action.WRITE_EVENTS, Action.QUOTE, Action.REGISTER_REFERRAL,
                                    Action.PARTNER_TRANSACT, Action.PARTNER_SETTLEMENT}),
    KeyRole.PARTICIPANT: frozenset({
        Action.READ_PROGRAM, Action.READ_ORGS, Action.READ_PEOPLE, Action.READ_LEDGER, Action.SPEND,
        Action.HOLD, Action.READ_RULES, Action.QUOTE, Action.READ_TIERS,
        Action.READ_REWARDS, Action.REDEEM,
        Action.READ_COOP, Action.CLAIM_COOP,
        Action.READ_REFERRALS, Action.REFER,
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
