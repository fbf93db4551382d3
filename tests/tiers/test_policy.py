"""Pure tier logic: ladders as data, qualification, windows, reviews, benefits and discount cards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.tiers.errors import LadderInvalid, parse
from allegiance.tiers.model import DiscountCard, Ladder, Period, Window, WindowKind
from allegiance.tiers.policy import (
    StatusFacts,
    Verdict,
    benefits_at,
    card_percent,
    discount,
    key_of,
    last_boundary,
    progress,
    qualify,
    review,
    visible_to,
    window_days,
)

SALES = {"measure": "value", "event_types": ["order.placed"], "field": "payload.amount_minor"}
PARTNER = Ladder.model_validate({
    "code": "partner", "name": "Partner levels", "tiers": [
        {"code": "registered", "name": "Registered",
         "benefits": [{"code": "portal", "kind": "information", "name": "Partner portal"}]},
        {"code": "certified", "name": "Certified", "discount_percent": "10",
         "requires": [{**SALES, "at_least": 500_000_000},
                      {"measure": "participants", "event_types": ["certification.passed"], "at_least": 2}],
         "benefits": [{"code": "margin", "kind": "other", "name": "Certified margin", "roles": ["owner"]}]},
        {"code": "gold", "name": "Gold", "earn_multiplier": "1.5",
         "requires": [{**SALES, "at_least": 2_000_000_000},
                      {"measure": "participants", "event_types": ["certification.passed"], "at_least": 5}],
         "benefits": [{"code": "margin", "kind": "other", "name": "Gold margin", "roles": ["owner"]}]},
    ]})
SALES_KEY, PEOPLE_KEY = (key_of(c) for c in PARTNER.tiers[1].requires)


def values(sales: int, people: int) -> dict[Any, int]:
    return {SALES_KEY: sales, PEOPLE_KEY: people}


def test_a_tier_needs_every_criterion_it_lists() -> None:
    assert qualify(PARTNER, values(0, 0)) == 0
    assert qualify(PARTNER, values(500_000_000, 1)) == 0  # sales without the second certified employee
    assert qualify(PARTNER, values(499_999_999, 2)) == 0
    assert qualify(PARTNER, values(500_000_000, 2)) == 1
    assert qualify(PARTNER, values(2_000_000_000, 4)) == 1
    assert qualify(PARTNER, values(2_000_000_000, 5)) == 2


@given(st.integers(0, 3 * 10**9), st.integers(0, 8), st.integers(0, 10**9), st.integers(0, 4))
def test_the_qualified_tier_never_falls_when_totals_rise(sales: int, people: int, more_sales: int,
                                                         more_people: int) -> None:
    before = qualify(PARTNER, values(sales, people))
    after = qualify(PARTNER, values(sales + more_sales, people + more_people))
    assert after >= before


def test_progress_says_how_far_each_criterion_of_the_next_tier_is() -> None:
    ahead = progress(PARTNER, values(300_000_000, 2), 0)
    assert ahead is not None and ahead.tier == "certified"
    assert [(g.measure, g.current, g.remaining) for g in ahead.criteria] == [("value", 300_000_000, 200_000_000),
                                                                             ("participants", 2, 0)]
    assert progress(PARTNER, values(0, 0), 2) is None


def test_higher_tiers_keep_lower_benefits_and_roles_filter_what_a_person_sees() -> None:
    gold = benefits_at(PARTNER, 2)
    assert [(b.code, b.name) for b in gold] == [("portal", "Partner portal"), ("margin", "Gold margin")]
    assert [b.code for b in visible_to(gold, "engineer")] == ["portal"]
    assert [b.code for b in visible_to(gold, "owner")] == ["portal", "margin"]
    assert [b.code for b in visible_to(gold, None, everything=True)] == ["portal", "margin"]
    alone = PARTNER.model_copy(update={"inherit_benefits": False})
    assert [b.code for b in benefits_at(alone, 2)] == ["margin"]
    assert benefits_at(PARTNER, -1) == []


@pytest.mark.parametrize(("kind", "days", "on", "first"), [
    ("year", None, date(2026, 5, 17), date(2026, 1, 1)),
    ("quarter", None, date(2026, 5, 17), date(2026, 4, 1)),
    ("month", None, date(2026, 5, 17), date(2026, 5, 1)),
    ("rolling", 365, date(2026, 5, 17), date(2025, 5, 18)),
    ("lifetime", None, date(2026, 5, 17), None),
])
def test_windows_cover_the_calendar_period_or_the_last_n_days(kind: str, days: int | None, on: date,
                                                               first: date | None) -> None:
    assert window_days(Window(kind=WindowKind(kind), days=days), on) == (first, on)


def test_the_review_boundary_is_the_start_of_the_current_period() -> None:
    at = datetime(2026, 5, 17, 13, tzinfo=UTC)
    assert last_boundary(Period.YEAR, at) == datetime(2026, 1, 1, tzinfo=UTC)
    assert last_boundary(Period.QUARTER, at) == datetime(2026, 4, 1, tzinfo=UTC)
    assert last_boundary(Period.MONTH, at) == datetime(2026, 5, 1, tzinfo=UTC)


BOUNDARY = datetime(2026, 1, 1, tzinfo=UTC)
HELD = StatusFacts(rank=2, since=datetime(2025, 3, 1, tzinfo=UTC))


def test_upgrades_are_immediate_and_a_tier_earned_this_period_is_kept() -> None:
    now = BOUNDARY + timedelta(days=3)
    assert review(HELD, now=now, boundary=BOUNDARY, qualified_now=3, qualified_at_end=0, grace_days=0).verdict \
        is Verdict.UPGRADE
    fresh = StatusFacts(rank=2, since=BOUNDARY + timedelta(days=1))
    assert review(fresh, now=now, boundary=BOUNDARY, qualified_now=0, qualified_at_end=0, grace_days=0).verdict \
        is Verdict.KEEP


def test_a_failed_period_warns_during_the_grace_period_then_downgrades() -> None:
    during = review(HELD, now=BOUNDARY + timedelta(days=10), boundary=BOUNDARY, qualified_now=0,
                    qualified_at_end=1, grace_days=30)
    assert (during.verdict, during.target, during.due) == (Verdict.WARN, 1, BOUNDARY + timedelta(days=30))
    pending = StatusFacts(2, HELD.since, None, during.due)
    after = review(pending, now=BOUNDARY + timedelta(days=30), boundary=BOUNDARY, qualified_now=0,
                   qualified_at_end=1, grace_days=30)
    assert (after.verdict, after.target, after.reviewed_through) == (Verdict.DOWNGRADE, 1, BOUNDARY)
    requalified = review(pending, now=BOUNDARY + timedelta(days=20), boundary=BOUNDARY, qualified_now=2,
                         qualified_at_end=1, grace_days=30)
    assert requalified.verdict is Verdict.KEEP
    no_grace = review(HELD, now=BOUNDARY, boundary=BOUNDARY, qualified_now=0, qualified_at_end=0, grace_days=0)
    assert (no_grace.verdict, no_grace.target) == (Verdict.DOWNGRADE, 0)


def test_a_passed_review_is_not_repeated() -> None:
    passed = review(HELD, now=BOUNDARY + timedelta(days=2), boundary=BOUNDARY, qualified_now=0,
                    qualified_at_end=2, grace_days=0)
    assert (passed.verdict, passed.reviewed_through) == (Verdict.KEEP, BOUNDARY)
    again = StatusFacts(2, HELD.since, BOUNDARY)
    assert review(again, now=BOUNDARY + timedelta(days=40), boundary=BOUNDARY, qualified_now=0, qualified_at_end=0,
                  grace_days=0).verdict is Verdict.KEEP


def test_cumulative_cards_step_up_with_purchases() -> None:
    card = DiscountCard.model_validate({"kind": "cumulative", "event_types": ["order.placed"], "steps": [
        {"from_amount": 0, "percent": "2"}, {"from_amount": 100_000, "percent": "5"},
        {"from_amount": 500_000, "percent": "7.5"}]})
    assert card_percent(card, 0) == (Decimal(2), Decimal(5), 100_000)
    assert card_percent(card, 99_999) == (Decimal(2), Decimal(5), 100_000)
    assert card_percent(card, 100_000) == (Decimal(5), Decimal("7.5"), 500_000)
    assert card_percent(card, 10**9) == (Decimal("7.5"), None, None)
    found = discount(card, 120_000, date(2026, 1, 1), "gold", Decimal(3))
    assert (found.percent, found.source, found.next_percent, found.remaining) == (Decimal(5), "card",
                                                                                  Decimal("7.5"), 380_000)
    assert discount(card, 0, date(2026, 1, 1), "gold", Decimal(3)).source == "tier"


def test_a_card_outside_its_dates_gives_nothing() -> None:
    card = DiscountCard.model_validate({"kind": "fixed", "percent": "12", "valid_from": "2026-02-01",
                                        "valid_until": "2026-02-28"})
    assert discount(card, 0, date(2026, 2, 10), None, Decimal(0)).percent == Decimal(12)
    late = discount(card, 0, date(2026, 3, 1), None, Decimal(0))
    assert (late.percent, late.source) == (Decimal(0), None)


@pytest.mark.parametrize(("patch", "field"), [
    ({"tiers": []}, "tiers"),
    ({"colour": "gold"}, "colour"),
    ({"window": {"kind": "rolling"}}, "window"),
    ({"tiers": [{"code": "a", "name": "A", "requires": [{"measure": "value", "at_least": 1}]}]},
     "tiers[0].requires[0]"),
    ({"tiers": [{"code": "a", "name": "A", "requires": [{"measure": "count", "event_types": ["x"],
                                                         "at_least": -1}]}]}, "tiers[0].requires[0].at_least"),
    ({"tiers": [{"code": "a", "name": "A", "discount_percent": "101"}]}, "tiers[0].discount_percent"),
    ({"tiers": [{"code": "a", "name": "A"}, {"code": "a", "name": "B"}]}, "document"),
])
def test_a_bad_ladder_is_refused_naming_the_field(patch: dict[str, Any], field: str) -> None:
    document = {"code": "l", "name": "L", "tiers": [{"code": "base", "name": "Base"}], **patch}
    with pytest.raises(LadderInvalid) as refused:
        parse(Ladder, document, LadderInvalid)
    assert refused.value.field == field
