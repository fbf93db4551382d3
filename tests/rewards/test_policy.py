"""Approval-policy resolution and catalog availability."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from allegiance.rewards.model import ApprovalPolicy, Availability, Category, PolicyOverride, Source, Step
from allegiance.rewards.policy import Requester, effective, may_spend_pool, required_steps, unavailable_because


def test_an_override_replaces_only_the_fields_it_sets() -> None:
    program = ApprovalPolicy(manager_approval_above={"PTS": 500}, annual_cap={"PTS": 10_000}, operator_approval=True)
    merged = effective(program, PolicyOverride(manager_approval_above={"PTS": 100}))
    assert merged.manager_approval_above == {"PTS": 100}
    assert (merged.annual_cap, merged.operator_approval) == ({"PTS": 10_000}, True)
    assert effective(program, PolicyOverride(operator_approval=False)).operator_approval is False
    assert effective(program, None) == program


@given(cost=st.integers(1, 10_000), threshold=st.integers(0, 10_000), source=st.sampled_from(list(Source)))
def test_the_threshold_applies_to_personal_redemptions_by_participants_only(cost: int, threshold: int,
                                                                           source: Source) -> None:
    policy = ApprovalPolicy(manager_approval_above={"PTS": threshold})
    steps = required_steps(policy, Requester.PARTICIPANT, source=source, category=Category.GOODS, unit="PTS",
                           cost=cost)
    assert (Step.MANAGER in steps) == (source is Source.PERSONAL and cost > threshold)
    for requester in (Requester.ORG_ADMIN, Requester.OPERATOR):
        assert required_steps(policy, requester, source=source, category=Category.GOODS, unit="PTS",
                              cost=cost) == frozenset()


def test_listed_categories_always_need_the_manager_and_operator_approval_needs_an_operator() -> None:
    policy = ApprovalPolicy(approval_categories=[Category.TRAVEL], operator_approval=True)
    assert required_steps(policy, Requester.PARTICIPANT, source=Source.POOL, category=Category.TRAVEL, unit="PTS",
                          cost=1) == {Step.MANAGER, Step.OPERATOR}
    assert required_steps(policy, Requester.ORG_ADMIN, source=Source.POOL, category=Category.TRAVEL, unit="PTS",
                          cost=1) == {Step.OPERATOR}
    assert required_steps(policy, Requester.OPERATOR, source=Source.POOL, category=Category.TRAVEL, unit="PTS",
                          cost=1) == frozenset()


def test_pool_spenders_name_org_admins_and_roles() -> None:
    policy = ApprovalPolicy(pool_spenders=["org_admin", "purchasing_manager"])
    assert may_spend_pool(policy, Requester.ORG_ADMIN)
    assert may_spend_pool(policy, Requester.PARTICIPANT, role="purchasing_manager")
    assert may_spend_pool(policy, Requester.PARTICIPANT, role="engineer", is_org_admin=True)
    assert not may_spend_pool(policy, Requester.PARTICIPANT, role="engineer")
    assert not may_spend_pool(ApprovalPolicy(pool_spenders=[]), Requester.ORG_ADMIN)
    assert may_spend_pool(ApprovalPolicy(pool_spenders=[]), Requester.OPERATOR)


def test_availability_filters_and_empty_means_everyone() -> None:
    anyone = Availability()
    assert unavailable_because(anyone, tier=None, kind=None, country=None, role=None) is None
    gold_de = Availability(tiers=["gold"], countries=["DE"], roles=["engineer"])
    base = {"tier": "gold", "kind": "dealer", "country": "DE", "role": "engineer"}
    assert unavailable_because(gold_de, **base) is None
    for field, value, word in (("tier", "silver", "tiers"), ("tier", None, "tiers"), ("country", "FR", "countries"),
                               ("role", "accountant", "roles")):
        reason = unavailable_because(gold_de, **{**base, field: value})
        assert reason is not None and word in reason
    assert unavailable_because(gold_de, **{**base, "role": None}, check_role=False) is None
