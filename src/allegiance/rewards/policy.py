"""Approval-policy resolution and catalog availability, pure functions over the models.

The program sets a policy; an organization's admin may override any of its fields for that
organization. Who approves what:

* a *participant's* redemption needs the manager (org admin) when its category is listed in
  ``approval_categories``, or when it is paid from their personal account and costs more than
  ``manager_approval_above`` for its unit;
* when ``operator_approval`` is on, every redemption not requested by an operator needs an operator;
* a request made by an org admin (or an operator) counts as that person's own approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from allegiance.rewards.model import ApprovalPolicy, Availability, Category, PolicyOverride, Source, Step


class Requester(StrEnum):
    OPERATOR = "operator"
    ORG_ADMIN = "org_admin"
    PARTICIPANT = "participant"


GRANTS: dict[Requester, frozenset[Step]] = {
    Requester.OPERATOR: frozenset({Step.MANAGER, Step.OPERATOR}),
    Requester.ORG_ADMIN: frozenset({Step.MANAGER}),
    Requester.PARTICIPANT: frozenset(),
}


def effective(program: ApprovalPolicy, override: PolicyOverride | None) -> ApprovalPolicy:
    if override is None:
        return program
    changes = override.model_dump(exclude_none=True)
    return program.model_copy(update=changes)


def may_spend_pool(policy: ApprovalPolicy, requester: Requester, *, role: str | None = None,
                   is_org_admin: bool = False) -> bool:
    if requester is Requester.OPERATOR:
        return True
    if "org_admin" in policy.pool_spenders and (requester is Requester.ORG_ADMIN or is_org_admin):
        return True
    return requester is Requester.PARTICIPANT and role is not None and role in policy.pool_spenders


def required_steps(policy: ApprovalPolicy, requester: Requester, *, source: Source, category: Category,
                   unit: str, cost: int) -> frozenset[Step]:
    steps: set[Step] = set()
    if requester is Requester.PARTICIPANT:
        if category in policy.approval_categories:
            steps.add(Step.MANAGER)
        threshold = policy.manager_approval_above.get(unit)
        if source is Source.PERSONAL and threshold is not None and cost > threshold:
            steps.add(Step.MANAGER)
    if policy.operator_approval and requester is not Requester.OPERATOR:
        steps.add(Step.OPERATOR)
    return frozenset(steps - GRANTS[requester])


def unavailable_because(availability: Availability, *, tier: str | None, kind: str | None,
                        country: str | None, role: str | None, check_role: bool = True) -> str | None:
    """Why an item is not for this organization/person, or None when it is. ``check_role=False``
    when there is no person to check (an org admin browsing for the company)."""
    if availability.tiers and tier not in availability.tiers:
        return f"for tiers {availability.tiers} only (the organization's tier is {tier or 'none'})"
    if availability.organization_kinds and kind not in availability.organization_kinds:
        return f"for organization kinds {availability.organization_kinds} only"
    if availability.countries and country not in availability.countries:
        return f"for countries {availability.countries} only"
    if check_role and availability.roles and role not in availability.roles:
        return f"for roles {availability.roles} only"
    return None


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the rewards rules see it (built from an API key or a web session)."""

    kind: Requester
    ref: str  # recorded in the history: "key:12", "user:3"
    organization_id: int | None = None
    participant_id: int | None = None
