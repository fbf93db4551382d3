from __future__ import annotations

import datetime as dt
import functools
import math
import random
import statistics

import polars as pl
import pytest

from allegiance.analytics import frames
from allegiance.analytics.frames import empty
from allegiance.analytics.metrics import program_roi
from allegiance.synthetic import SynthConfig, generate
from tests.analytics.metrics.helpers import at, frame, orders, organizations, returns

BEFORE = (dt.date(2024, 1, 1), dt.date(2024, 4, 1))  # 91 days
AFTER = (dt.date(2024, 4, 1), dt.date(2024, 7, 1))  # 91 days: no rescaling
ORGS = organizations(("P1", "ent"), ("P2", "ent"), ("C1", "ent"), ("C2", "ent"), ("P3", "sb"), ("C3", "sb"),
                     ("P4", "edu"), ("P5", "ent"))
PARTICIPANTS = ["P1", "P2", "P3", "P4", "P5"]


def book(*spend: tuple[str, int, int]) -> pl.DataFrame:
    """(org, before, after) spend as one order in each window."""
    rows: list[tuple[str, dt.datetime, int]] = []
    for org, before, after in spend:
        if before:
            rows.append((org, at(2024, 2, 1), before))
        if after:
            rows.append((org, at(2024, 5, 1), after))
    return orders(*rows)


# ent: participants +500, +300 (mean 400) vs controls +100, +300 (mean 200): effect 200 x 2.
# sb: participant -100 vs control -300 (after 400 less a 100 return): effect 200 x 1.
# edu: P4 has no comparable organization; P5 bought nothing before and cannot be matched.
SPEND = book(("P1", 1000, 1500), ("P2", 2000, 2300), ("C1", 1000, 1100), ("C2", 3000, 3300),
             ("P3", 500, 400), ("C3", 600, 400), ("P4", 100, 200), ("P5", 0, 900))
RETURNS = returns(("C3", "x", at(2024, 5, 20), 100))


def test_difference_in_differences_hand_computed() -> None:
    r = program_roi(SPEND, RETURNS, ORGS, PARTICIPANTS, cost_minor=50, liability_minor=40, margin=0.25,
                    period_before=BEFORE, period_after=AFTER, bands=1)
    assert r.status == "ok"
    assert r.incremental_revenue_minor == pytest.approx(600.0)
    assert r.incremental_margin_minor == pytest.approx(150.0)
    assert r.net_benefit_minor == pytest.approx(60.0)
    assert r.roi == pytest.approx(60 / 90)
    assert (r.matched_participants, r.matched_controls, r.unmatched_participants,
            r.participants_without_pre_spend) == (3, 3, 1, 1)
    assert r.strata.select("segment", "participants", "controls", "effect_minor", "matched").rows() == [
        ("edu", 1, 0, None, False), ("ent", 2, 2, 200.0, True), ("sb", 1, 1, 200.0, True)]
    # The naive comparison (participants' after-spend vs controls') would credit selection, not the program.
    program = frame("program", [{"org": o, "occurred_at": at(2024, 4, 2), "kind": "earned", "amount": 1}
                                for o in PARTICIPANTS])
    same = program_roi(SPEND, RETURNS, ORGS, program, cost_minor=50, liability_minor=40, margin=0.25,
                       period_before=BEFORE, period_after=AFTER, bands=1)
    assert same.incremental_revenue_minor == r.incremental_revenue_minor


def test_spend_bands_decide_who_is_comparable() -> None:
    # One segment: a big participant (pre 5,000) and three small controls (10, 20, 30).
    spend = book(("P1", 5000, 6000), ("C1", 10, 20), ("C2", 20, 20), ("C3", 30, 60))
    orgs = organizations(("P1", "ent"), ("C1", "ent"), ("C2", "ent"), ("C3", "ent"))
    alone = program_roi(spend, None, orgs, ["P1"], cost_minor=100, liability_minor=0, margin=0.5,
                        period_before=BEFORE, period_after=AFTER, bands=4)
    assert alone.status == "not_enough_comparables"
    assert "not enough comparable organizations" in alone.message
    assert alone.roi is None and alone.incremental_revenue_minor is None and alone.unmatched_participants == 1
    # Two bands: ranks 1..4 -> bands 0, 0, 1, 1, so C3 (30) is P1's comparable: effect 1000 - 30.
    paired = program_roi(spend, None, orgs, ["P1"], cost_minor=100, liability_minor=0, margin=0.5,
                         period_before=BEFORE, period_after=AFTER, bands=2)
    assert paired.status == "ok" and paired.matched_controls == 1
    assert paired.incremental_revenue_minor == pytest.approx(970.0)
    assert paired.roi == pytest.approx((0.5 * 970 - 100) / 100)
    strict = program_roi(spend, None, orgs, ["P1"], cost_minor=100, liability_minor=0, margin=0.5,
                         period_before=BEFORE, period_after=AFTER, bands=2, min_controls=2)
    assert strict.status == "not_enough_comparables"


def test_unequal_windows_rescale_the_pre_period_and_edge_cases() -> None:
    before, after = (dt.date(2024, 1, 1), dt.date(2024, 1, 11)), (dt.date(2024, 1, 11), dt.date(2024, 1, 16))
    spend = orders(("P", at(2024, 1, 3), 1000), ("P", at(2024, 1, 12), 700),
                   ("C", at(2024, 1, 3), 1000), ("C", at(2024, 1, 12), 500))
    orgs = organizations(("P", "x"), ("C", "x"))
    r = program_roi(spend, None, orgs, ["P"], cost_minor=0, liability_minor=0, margin=1.0,
                    period_before=before, period_after=after)
    assert r.incremental_revenue_minor == pytest.approx(200.0)  # (700 - 500) - (500 - 500)
    assert r.roi is None  # no cost: a ratio would be infinite
    nobody = program_roi(spend, None, orgs, ["Z"], cost_minor=1, liability_minor=0, margin=1.0,
                         period_before=before, period_after=after)
    assert nobody.status == "no_participants" and nobody.roi is None
    none = program_roi(empty("orders"), empty("returns"), empty("organizations"), [], cost_minor=1,
                       liability_minor=1, margin=0.3, period_before=before, period_after=after)
    assert none.status == "no_participants" and none.strata.height == 0
    with pytest.raises(ValueError):
        program_roi(spend, None, orgs, ["P"], cost_minor=0, liability_minor=0, margin=1.5,
                    period_before=before, period_after=after)
    with pytest.raises(ValueError):
        program_roi(spend, None, orgs, ["P"], cost_minor=0, liability_minor=0, margin=0.5,
                    period_before=after, period_after=(after[1], after[1]))


@pytest.fixture(scope="module")
def world() -> frames.Frames:
    return frames.from_synthetic(generate(SynthConfig(organizations=200)))


def test_program_effect_is_recovered_exactly_on_synthetic_data(world: frames.Frames) -> None:
    """Injecting a known extra spend per participant moves the estimate by exactly that amount per matched
    participant; adding the same spend to everybody (a common trend) does not move it at all."""
    customers = world.organizations.filter(pl.col("kind") == "customer")["org"].to_list()
    participants = customers[::2]
    before, after = (dt.date(2024, 1, 1), dt.date(2025, 1, 1)), (dt.date(2025, 1, 1), dt.date(2026, 1, 1))
    roi = functools.partial(program_roi, cost_minor=1_000_000, liability_minor=500_000, margin=0.3,
                            period_before=before, period_after=after, kinds={"customer"})
    base = roi(world.orders, world.returns, world.organizations, participants)
    assert base.status == "ok" and base.matched_participants > 50 and base.matched_controls > 50
    assert base.incremental_revenue_minor is not None

    def with_extra(orgs: list[str], amount: int) -> pl.DataFrame:
        extra = orders(*[(o, at(2025, 6, 3), amount, f"extra-{o}") for o in orgs])
        return pl.concat([world.orders, extra])

    lift = 250_000
    treated = roi(with_extra(participants, lift), world.returns, world.organizations, participants)
    assert treated.incremental_revenue_minor is not None
    assert treated.incremental_revenue_minor - base.incremental_revenue_minor == pytest.approx(
        lift * base.matched_participants, rel=1e-9)
    assert treated.incremental_margin_minor == pytest.approx(0.3 * treated.incremental_revenue_minor)
    trend = roi(with_extra(customers, lift), world.returns, world.organizations, participants)
    assert trend.incremental_revenue_minor == pytest.approx(base.incremental_revenue_minor, abs=1e-3)


def test_random_placebo_assignments_centre_on_zero(world: frames.Frames) -> None:
    """With participants drawn at random there is no program effect: across 20 draws the estimates
    scatter around 0 (their mean is within 3 standard errors of it), i.e. the matching adds no bias."""
    customers = world.organizations.filter(pl.col("kind") == "customer")["org"].to_list()
    before, after = (dt.date(2024, 1, 1), dt.date(2025, 1, 1)), (dt.date(2025, 1, 1), dt.date(2026, 1, 1))
    effects = []
    for seed in range(20):
        chosen = random.Random(seed).sample(customers, 100)
        r = program_roi(world.orders, world.returns, world.organizations, chosen, cost_minor=0, liability_minor=0,
                        margin=0.3, period_before=before, period_after=after, kinds={"customer"})
        assert r.status == "ok" and r.incremental_revenue_minor is not None
        effects.append(r.incremental_revenue_minor / r.matched_participants)
    assert abs(statistics.mean(effects)) < 3 * statistics.stdev(effects) / math.sqrt(len(effects))
