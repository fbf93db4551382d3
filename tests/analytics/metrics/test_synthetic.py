"""Metrics against the synthetic generator's hidden truth (organizations that left, latent order rates)."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict

import polars as pl
import pytest

from allegiance.analytics import frames
from allegiance.analytics.metrics import churn_rate, retention_gain_value, revenue_retention
from allegiance.analytics.metrics._common import period_index, period_start
from allegiance.synthetic import SynthConfig, SyntheticProgram, generate

AS_OF = dt.date(2025, 12, 31)  # the generator's horizon: 24 months from 2024-01-01
LAST = period_index(dt.date(2025, 10, 1), "quarter")  # Q4 2025, the last complete quarter
LAPSE = 2  # quarters without an order before an active customer counts as lost


@pytest.fixture(scope="module")
def program() -> SyntheticProgram:
    return generate(SynthConfig(organizations=200))


@pytest.fixture(scope="module")
def world(program: SyntheticProgram) -> frames.Frames:
    return frames.from_synthetic(program)


def leavers(program: SyntheticProgram) -> dict[str, dt.date]:
    return {o.external_id: o.left_on for o in program.organizations if o.left_on is not None and o.left_on <= AS_OF}


def test_organizations_that_left_stop_contributing_revenue(program: SyntheticProgram, world: frames.Frames) -> None:
    gone = leavers(program)
    assert len(gone) > 0
    per_org = revenue_retention(world.orders, returns=world.returns, period="quarter", as_of=AS_OF, by="org")
    # A customer that paid in the quarter it left has nothing in the next one: all of it is churned revenue.
    rows = per_org.filter(pl.col("org").is_in(list(gone)))
    for row in rows.iter_rows(named=True):
        left_quarter = period_start(gone[row["org"]], "quarter")
        assert row["base_period"] <= left_quarter
        if row["base_period"] == left_quarter:
            assert (row["churned_orgs"], row["ending_minor"], row["churned_minor"]) == (1, 0, row["starting_minor"])
    assert rows.filter(pl.col("base_period") == pl.col("org").replace_strict(
        {o: period_start(d, "quarter") for o, d in gone.items()}, return_dtype=pl.Date())).height > 0


def test_logo_churn_matches_recorded_departures_within_the_lapse_noise(program: SyntheticProgram,
                                                                      world: frames.Frames) -> None:
    """Activity churn (no order for LAPSE quarters after an active one) against OrganizationRecord.left_on.

    Every customer that left early enough to be judged (its departure quarter + LAPSE <= Q4 2025) must be
    flagged: once gone it places no orders. The flags on customers that never left are quiet spells of small
    buyers; their expected number, from each customer's latent order rate lambda (orders/month), is at most
    E = sum over judged quarters of P(no order in 3 * LAPSE months) = exp(-3 * LAPSE * lambda) (an upper
    bound: it also counts quarters before a customer joined and ignores growth). The tolerance is E plus
    three Poisson standard deviations.
    """
    gone = leavers(program)
    ordered = set(world.orders["org"].unique())
    flagged = churn_rate(world.orders, world.organizations, period="quarter", as_of=AS_OF, lapse_periods=LAPSE,
                         kinds={"customer"}, by="org").filter(pl.col("churned") > 0)
    flagged_orgs = set(flagged["org"])
    assert flagged.height > 0  # logo churn over the horizon is positive
    judged = {o for o, d in gone.items() if period_index(d, "quarter") + LAPSE <= LAST and o in ordered}
    assert judged and judged <= flagged_orgs
    false_flags = flagged.filter(~pl.col("org").is_in(list(gone))).height
    quarters = LAST - LAPSE - period_index(dt.date(2024, 1, 1), "quarter") + 1
    expected = sum(quarters * math.exp(-3 * LAPSE * p.orders_per_month)
                   for o, p in program.latent.items() if o not in gone)
    assert false_flags <= expected + 3 * math.sqrt(expected)
    # So the activity count brackets the recorded one: at least every judged departure, at most every
    # departure plus the quiet-spell tolerance.
    total = int(flagged["churned"].sum())
    assert len(judged) <= total <= len(gone) + expected + 3 * math.sqrt(expected)
    # Recorded departures per quarter are exactly the left_on dates (every customer is on the books then).
    recorded = churn_rate(world.orders, world.organizations, period="quarter", as_of=AS_OF, method="left_on",
                          kinds={"customer"})
    by_quarter: dict[dt.date, int] = defaultdict(int)
    for day in gone.values():
        by_quarter[period_start(day, "quarter")] += 1
    assert dict(zip(recorded["period"], recorded["churned"], strict=True)) == {
        p: by_quarter.get(p, 0) for p in recorded["period"]}


def test_annual_logo_retention_matches_an_independent_count(world: frames.Frames) -> None:
    revenue: dict[tuple[str, int], int] = defaultdict(int)
    for org, when, amount in world.orders.select("org", "occurred_at", "amount_minor").iter_rows():
        revenue[org, when.year] += amount
    for org, when, amount in world.returns.select("org", "occurred_at", "amount_minor").iter_rows():
        revenue[org, when.year] -= amount
    paid = {y: {o for (o, year), v in revenue.items() if year == y and v > 0} for y in (2024, 2025)}
    value = retention_gain_value(margin=0.3, orders=world.orders, returns=world.returns, as_of=AS_OF)
    assert value.retention_rate == pytest.approx(len(paid[2024] & paid[2025]) / len(paid[2024]))
    assert value.customers == len(paid[2025])
    assert value.revenue_per_customer_minor == pytest.approx(
        sum(revenue[o, 2025] for o in paid[2025]) / len(paid[2025]))
    assert 0.0 < value.retention_rate < 1.0 and value.total_uplift_minor > 0
