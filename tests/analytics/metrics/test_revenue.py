from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.frames import empty
from allegiance.analytics.metrics import Period, churn_rate, net_negative_churn, revenue_retention
from tests.analytics.metrics.helpers import at, frame, orders, organizations, returns

END_2025 = dt.date(2025, 12, 31)
# A expands 100 -> 150, B contracts 200 -> 50, C churns 100 -> 0, D is new in 2025 (not in the cohort).
BOOK = orders(("A", at(2024, 3, 1), 100, "A1"), ("A", at(2025, 3, 1), 150, "A2"),
              ("B", at(2024, 5, 1), 120, "B1"), ("B", at(2024, 6, 1), 80, "B2"), ("B", at(2025, 5, 1), 50, "B3"),
              ("C", at(2024, 12, 31, 23, 59, 59), 100, "C1"),
              ("D", at(2025, 1, 1, 0), 500, "D1"))


def test_grr_nrr_hand_computed() -> None:
    out = revenue_retention(BOOK, period="year", as_of=END_2025)
    assert out.to_dicts() == [{
        "base_period": dt.date(2024, 1, 1), "next_period": dt.date(2025, 1, 1), "orgs": 3, "retained_orgs": 2,
        "churned_orgs": 1, "starting_minor": 400, "expansion_minor": 50, "contraction_minor": 150,
        "churned_minor": 100, "ending_minor": 200, "grr": 0.375, "nrr": 0.5, "net_negative_churn": False}]
    # 2025 -> 2026 is not complete on 2025-12-31... and neither is 2025 itself one day earlier.
    assert revenue_retention(BOOK, period="year", as_of=dt.date(2025, 12, 30)).height == 0
    # The default as_of is the last day with an order (2025-05-01): 2025 is incomplete.
    assert revenue_retention(BOOK, period="year").height == 0


def test_returns_are_booked_when_they_happen_and_clip_at_zero() -> None:
    back = returns(("A", "A2", at(2025, 4, 1), 60),  # A 2025: 150 - 60 = 90, a contraction of 10
                   ("B", "B3", at(2025, 6, 1), 80))  # B 2025: 50 - 80 < 0 -> 0, B churned
    row = revenue_retention(BOOK, returns=back, period="year", as_of=END_2025).row(0, named=True)
    assert (row["starting_minor"], row["expansion_minor"], row["contraction_minor"], row["churned_minor"],
            row["ending_minor"], row["churned_orgs"]) == (400, 0, 10, 300, 90, 2)
    assert row["grr"] == row["nrr"] == 90 / 400


def test_net_negative_churn_when_expansion_outweighs_losses() -> None:
    book = orders(("A", at(2024, 1, 5), 100), ("A", at(2025, 1, 5), 300),
                  ("B", at(2024, 1, 5), 200), ("B", at(2025, 1, 5), 150), ("C", at(2024, 1, 5), 100))
    out = revenue_retention(book, period="year", as_of=END_2025)
    row = out.row(0, named=True)
    assert (row["expansion_minor"], row["contraction_minor"], row["churned_minor"]) == (200, 50, 100)
    assert row["nrr"] == 450 / 400 and row["grr"] == 250 / 400
    assert row["net_negative_churn"] is True
    assert net_negative_churn(out).to_list() == [True]
    assert net_negative_churn(revenue_retention(BOOK, period="year", as_of=END_2025)).to_list() == [False]


def test_quarter_boundary_is_midnight_utc() -> None:
    book = orders(("Q", at(2024, 3, 31, 23, 59, 59), 100), ("Q", at(2024, 4, 1, 0), 100))
    out = revenue_retention(book, period="quarter", as_of=dt.date(2024, 6, 30))
    assert out.select("base_period", "starting_minor", "ending_minor", "grr", "nrr").rows() == [
        (dt.date(2024, 1, 1), 100, 100, 1.0, 1.0)]
    assert revenue_retention(book, period="quarter", as_of=dt.date(2024, 6, 29)).height == 0
    monthly = revenue_retention(book, period="month", as_of=dt.date(2024, 4, 30))
    assert monthly["base_period"].to_list() == [dt.date(2024, 3, 1)]


def test_trailing_twelve_months_against_the_twelve_before() -> None:
    book = orders(("X", at(2023, 7, 1, 0), 100), ("X", at(2024, 6, 30, 23, 59), 50), ("X", at(2024, 7, 1, 0), 300),
                  ("Y", at(2023, 6, 30, 23, 59), 1000),  # before both windows
                  ("Y", at(2025, 7, 1, 0), 70),  # after as_of
                  ("Z", at(2024, 1, 1), 200))
    out = revenue_retention(book, trailing_months=12, as_of=dt.date(2025, 6, 30))
    row = out.row(0, named=True)
    assert (row["base_period"], row["next_period"]) == (dt.date(2023, 7, 1), dt.date(2024, 7, 1))
    assert (row["orgs"], row["starting_minor"], row["expansion_minor"], row["churned_minor"],
            row["ending_minor"]) == (2, 350, 150, 200, 300)
    assert row["grr"] == pytest.approx(150 / 350) and row["nrr"] == pytest.approx(300 / 350)
    nobody = revenue_retention(book, trailing_months=12, as_of=dt.date(2030, 1, 1)).row(0, named=True)
    assert nobody["orgs"] == 0 and nobody["grr"] is None and nobody["nrr"] is None
    with pytest.raises(ValueError):
        revenue_retention(book, trailing_months=0, as_of=dt.date(2025, 6, 30))


def test_retention_by_segment_and_empty_input() -> None:
    orgs = organizations(("A", "enterprise"), ("B", "enterprise"), ("C", "small-business"))
    out = revenue_retention(BOOK, period="year", as_of=END_2025, organizations=orgs, by="segment")
    assert out.select("segment", "starting_minor", "ending_minor", "grr", "nrr").rows() == [
        ("enterprise", 300, 200, 150 / 300, 200 / 300), ("small-business", 100, 0, 0.0, 0.0)]
    totals = out.select(pl.col("^.*_minor$").sum())
    overall = revenue_retention(BOOK, period="year", as_of=END_2025)
    assert totals.row(0) == overall.select(pl.col("^.*_minor$")).row(0)
    none = revenue_retention(empty("orders"), period="quarter")
    assert none.height == 0 and none.schema["grr"] == pl.Float64()
    with pytest.raises(ValueError, match="period"):
        revenue_retention(BOOK, period="week", as_of=END_2025)  # type: ignore[arg-type]


# Quarterly activity: P in Q1, Q2, Q4; R in Q1; S in Q2, Q3; T in Q3; U (a dealer) in Q1.
ACTIVE = orders(("P", at(2024, 2, 1), 1), ("P", at(2024, 5, 1), 1), ("P", at(2024, 11, 1), 1),
                ("R", at(2024, 1, 1, 0), 1), ("S", at(2024, 6, 30, 23, 59), 1), ("S", at(2024, 7, 1, 0), 1),
                ("T", at(2024, 8, 1), 1), ("U", at(2024, 2, 1), 1))
KINDS = pl.concat([organizations(("P", None), ("R", None), ("S", None), ("T", None)),
                   organizations(("U", None), kind="dealer")])


def test_activity_churn_hand_computed() -> None:
    out = churn_rate(ACTIVE, KINDS, period="quarter", as_of=dt.date(2024, 12, 31), kinds={"customer"})
    # Q1: P stays, R lost. Q2: P skips Q3 (lost for a one-quarter lapse), S stays. Q3: S and T lost.
    # Q4 cannot be judged before Q1 2025 is over.
    assert out.rows() == [(dt.date(2024, 1, 1), 2, 1, 1, 0.5), (dt.date(2024, 4, 1), 2, 1, 1, 0.5),
                          (dt.date(2024, 7, 1), 2, 2, 0, 1.0)]
    with_dealer = churn_rate(ACTIVE, period="quarter", as_of=dt.date(2024, 12, 31))
    assert with_dealer.row(0) == (dt.date(2024, 1, 1), 3, 2, 1, 2 / 3)
    # Forgiving a quiet quarter: P's Q3 gap is no longer churn; only Q1 and Q2 can be judged.
    lapse2 = churn_rate(ACTIVE, KINDS, period="quarter", as_of=dt.date(2024, 12, 31), kinds={"customer"},
                        lapse_periods=2)
    assert lapse2.rows() == [(dt.date(2024, 1, 1), 2, 1, 1, 0.5), (dt.date(2024, 4, 1), 2, 0, 2, 0.0)]


def test_recorded_departures_churn_hand_computed() -> None:
    orgs = frame("organizations", [
        {"org": "P", "kind": "customer", "joined_on": dt.date(2023, 1, 1)},
        {"org": "R", "kind": "customer", "joined_on": dt.date(2023, 1, 1), "left_on": dt.date(2024, 5, 15)},
        {"org": "S", "kind": "customer", "joined_on": dt.date(2024, 4, 10), "left_on": dt.date(2024, 9, 30)},
        {"org": "T", "kind": "customer", "left_on": dt.date(2024, 3, 31)},
        {"org": "V", "kind": "customer", "left_on": dt.date(2023, 12, 31)},  # gone before the first period
        {"org": "W", "kind": "customer", "joined_on": dt.date(2024, 10, 1)},
        {"org": "X", "kind": "dealer"},
    ])
    out = churn_rate(ACTIVE, orgs, period="quarter", as_of=dt.date(2024, 12, 31), method="left_on",
                     kinds={"customer"})
    assert out.rows() == [(dt.date(2024, 1, 1), 3, 1, 2, 1 / 3), (dt.date(2024, 4, 1), 3, 1, 2, 1 / 3),
                          (dt.date(2024, 7, 1), 2, 1, 1, 0.5), (dt.date(2024, 10, 1), 2, 0, 2, 0.0)]
    with pytest.raises(ValueError, match="organizations"):
        churn_rate(ACTIVE, method="left_on")
    assert churn_rate(empty("orders"), orgs, method="left_on").height == 0
    assert churn_rate(empty("orders")).height == 0


_book = st.lists(st.tuples(st.sampled_from("ABCDEF"), st.integers(0, 729), st.integers(0, 1_000)), max_size=50)


@settings(max_examples=60, deadline=None)
@given(rows=_book, back=st.lists(st.tuples(st.sampled_from("ABCDEF"), st.integers(0, 729), st.integers(0, 800)),
                                 max_size=8),
       period=st.sampled_from(["month", "quarter", "year"]))
def test_retention_invariants(rows: list[tuple[str, int, int]], back: list[tuple[str, int, int]],
                              period: Period) -> None:
    base = dt.datetime(2024, 1, 1, 9, tzinfo=dt.UTC)
    book = orders(*[(o, base + dt.timedelta(days=d), a) for o, d, a in rows])
    ret = returns(*[(o, "x", base + dt.timedelta(days=d), a) for o, d, a in back])
    out = revenue_retention(book, returns=ret, period=period, as_of=END_2025)
    for row in out.iter_rows(named=True):
        assert row["starting_minor"] > 0 and row["orgs"] == row["retained_orgs"] + row["churned_orgs"]
        assert (row["starting_minor"] + row["expansion_minor"] - row["contraction_minor"] - row["churned_minor"]
                == row["ending_minor"])
        assert 0.0 <= row["grr"] <= 1.0
        assert row["grr"] <= row["nrr"] + 1e-12
        assert row["net_negative_churn"] == (row["nrr"] > 1.0)
    lapse1 = churn_rate(book, period=period, as_of=END_2025)
    lapse2 = churn_rate(book, period=period, as_of=END_2025, lapse_periods=2)
    assert all(0.0 <= r <= 1.0 for r in lapse1["churn_rate"])
    joined = lapse2.join(lapse1, on="period", suffix="_1")
    assert joined.height == lapse2.height  # every period judged with a longer lapse is judged with a shorter one
    assert (joined["churned"] <= joined["churned_1"]).all()
    assert (joined["at_risk"] == joined["at_risk_1"]).all()
