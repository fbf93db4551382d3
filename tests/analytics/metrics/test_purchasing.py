from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.frames import empty
from allegiance.analytics.metrics import average_order_value, purchase_frequency, repeat_customer_rate
from tests.analytics.metrics.helpers import at, orders, organizations, returns

JAN, APR = dt.date(2024, 1, 1), dt.date(2024, 4, 1)

# Window [Jan 1, Apr 1): A has 3 orders, B 1 (exactly at the start), C 1 (its Apr 1 order is at the
# excluded end), D 1 (its Dec 31 order is before the start), E 2. Repeat buyers: A and E.
BOOK = orders(
    ("A", at(2024, 1, 5), 100), ("A", at(2024, 2, 10), 100), ("A", at(2024, 3, 31, 23, 59, 59), 100),
    ("B", at(2024, 1, 1, 0), 100),
    ("C", at(2024, 2, 1), 100), ("C", at(2024, 4, 1, 0), 100),
    ("D", at(2023, 12, 31, 23, 59, 59), 100), ("D", at(2024, 2, 2), 100),
    ("E", at(2024, 3, 3), 100), ("E", at(2024, 3, 4), 100),
)
ORGS = organizations(("A", "enterprise"), ("B", "enterprise"), ("C", "small-business"), ("D", "small-business"))


def test_repeat_rate_hand_computed_with_window_edges() -> None:
    out = repeat_customer_rate(BOOK, JAN, APR)
    assert out.to_dicts() == [{"buyers": 5, "repeat_buyers": 2, "repeat_rate": 0.4}]


def test_repeat_rate_accepts_datetimes_naive_as_utc() -> None:
    aware = repeat_customer_rate(BOOK, at(2024, 1, 1, 0), at(2024, 4, 1, 0))
    naive = repeat_customer_rate(BOOK, dt.datetime(2024, 1, 1), dt.datetime(2024, 4, 1))
    assert aware.equals(naive)
    # One second later at the end brings C's April order in: C becomes a repeat buyer.
    assert repeat_customer_rate(BOOK, JAN, at(2024, 4, 1, 0, 0, 1))["repeat_buyers"][0] == 3


def test_repeat_rate_by_segment_keeps_unknown_orgs_in_a_null_group() -> None:
    out = repeat_customer_rate(BOOK, JAN, APR, organizations=ORGS, by="segment")
    assert out.to_dicts() == [
        {"segment": "enterprise", "buyers": 2, "repeat_buyers": 1, "repeat_rate": 0.5},
        {"segment": "small-business", "buyers": 2, "repeat_buyers": 0, "repeat_rate": 0.0},
        {"segment": None, "buyers": 1, "repeat_buyers": 1, "repeat_rate": 1.0},  # E is not in ORGS
    ]


def test_repeat_rate_empty_and_errors() -> None:
    assert repeat_customer_rate(empty("orders"), JAN, APR).to_dicts() == [
        {"buyers": 0, "repeat_buyers": 0, "repeat_rate": None}]
    assert repeat_customer_rate(empty("orders"), JAN, APR, organizations=ORGS, by="segment").height == 0
    with pytest.raises(ValueError, match="cannot group by"):
        repeat_customer_rate(BOOK, JAN, APR, by="segment")  # no organizations to take it from
    with pytest.raises(ValueError):
        repeat_customer_rate(BOOK, JAN, APR, min_orders=0)


def test_purchase_frequency_monthly_with_gap_and_partial_period() -> None:
    out = purchase_frequency(BOOK, JAN, dt.date(2024, 6, 1))
    assert out.to_dicts() == [
        {"period": dt.date(2024, 1, 1), "orders": 2, "buyers": 2, "frequency": 1.0},
        {"period": dt.date(2024, 2, 1), "orders": 3, "buyers": 3, "frequency": 1.0},
        {"period": dt.date(2024, 3, 1), "orders": 3, "buyers": 2, "frequency": 1.5},
        {"period": dt.date(2024, 4, 1), "orders": 1, "buyers": 1, "frequency": 1.0},
        {"period": dt.date(2024, 5, 1), "orders": 0, "buyers": 0, "frequency": None},  # a gap, not a missing row
    ]
    # A window ending on Feb 5 sees only the part of February it covers: C's and D's orders.
    partial = purchase_frequency(BOOK, JAN, dt.date(2024, 2, 5))
    assert partial["orders"].to_list() == [2, 2]
    quarterly = purchase_frequency(BOOK, JAN, dt.date(2024, 6, 1), period="quarter")
    assert quarterly.select("orders", "buyers", "frequency").rows() == [(8, 5, 1.6), (1, 1, 1.0)]
    whole = purchase_frequency(BOOK, JAN, dt.date(2024, 6, 1), period=None)
    assert whole.to_dicts() == [{"orders": 9, "buyers": 5, "frequency": 1.8}]


def test_purchase_frequency_by_segment_fills_every_period_per_group() -> None:
    out = purchase_frequency(BOOK, JAN, APR, organizations=ORGS, by="segment")
    assert out.height == 3 * 3  # 3 months x (enterprise, small-business, null)
    ent = out.filter(pl.col("segment") == "enterprise")
    assert ent.select("orders", "buyers").rows() == [(2, 2), (1, 1), (1, 1)]
    assert out.filter(pl.col("segment").is_null())["orders"].to_list() == [0, 0, 2]
    assert purchase_frequency(empty("orders"), JAN, APR)["orders"].to_list() == [0, 0, 0]


AOV_ORDERS = orders(("A", at(2024, 1, 10), 100, "A1"), ("A", at(2024, 2, 10), 200, "A2"),
                    ("B", at(2024, 3, 10), 300, "B1"), ("C", at(2024, 5, 10), 50, "C1"))
AOV_RETURNS = returns(("A", "A1", at(2024, 2, 1), 30),
                      ("B", "B1", at(2024, 3, 20), 500),  # more than the order: deducts 300 only
                      ("C", "C1", at(2024, 5, 20), 50),  # its order is outside the window
                      ("A", "A2", at(2024, 6, 1), 10))  # after as_of 2024-05-31


def test_average_order_value_gross_and_net_of_returns() -> None:
    gross = average_order_value(AOV_ORDERS, JAN, APR)
    assert gross.to_dicts() == [{"orders": 3, "gross_minor": 600, "returned_minor": 0, "net_minor": 600,
                                 "aov_minor": 200.0}]
    net = average_order_value(AOV_ORDERS, JAN, APR, returns=AOV_RETURNS, as_of=dt.date(2024, 5, 31))
    assert net.select("returned_minor", "net_minor", "aov_minor").row(0) == (330, 270, 90.0)
    later = average_order_value(AOV_ORDERS, JAN, APR, returns=AOV_RETURNS)
    assert later.select("returned_minor", "net_minor").row(0) == (340, 260)
    assert later["aov_minor"][0] == pytest.approx(260 / 3)


def test_average_order_value_by_segment_and_period() -> None:
    by_seg = average_order_value(AOV_ORDERS, JAN, APR, returns=AOV_RETURNS, as_of=dt.date(2024, 5, 31),
                                 organizations=organizations(("A", "enterprise"), ("B", "small-business")),
                                 by="segment")
    assert by_seg.rows() == [("enterprise", 2, 300, 30, 270, 135.0), ("small-business", 1, 300, 300, 0, 0.0)]
    monthly = average_order_value(AOV_ORDERS, JAN, APR, returns=AOV_RETURNS, as_of=dt.date(2024, 5, 31),
                                  period="month")
    assert monthly.select("period", "net_minor").rows() == [
        (dt.date(2024, 1, 1), 70), (dt.date(2024, 2, 1), 200), (dt.date(2024, 3, 1), 0)]
    assert average_order_value(empty("orders"), JAN, APR, returns=AOV_RETURNS).to_dicts() == [
        {"orders": 0, "gross_minor": 0, "returned_minor": 0, "net_minor": 0, "aov_minor": None}]


_rows = st.lists(st.tuples(st.sampled_from("ABCDE"), st.integers(0, 150), st.integers(0, 1_000)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(rows=_rows, back=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 2_000)), max_size=10))
def test_purchasing_invariants(rows: list[tuple[str, int, int]], back: list[tuple[int, int]]) -> None:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    book = orders(*[(o, base + dt.timedelta(days=d, hours=7), a, f"o{i}") for i, (o, d, a) in enumerate(rows)])
    ret = returns(*[(rows[i][0], f"o{i}", base + dt.timedelta(days=200), a) for i, a in back if i < len(rows)])
    start, end = dt.date(2024, 1, 20), dt.date(2024, 4, 20)
    rate = repeat_customer_rate(book, start, end).row(0, named=True)
    assert 0 <= rate["repeat_buyers"] <= rate["buyers"] <= 5
    if rate["buyers"]:
        assert 0.0 <= rate["repeat_rate"] <= 1.0
    grouped = repeat_customer_rate(book, start, end, organizations=ORGS, by="segment")
    assert grouped["buyers"].sum() == rate["buyers"]
    monthly = purchase_frequency(book, start, end)
    whole = purchase_frequency(book, start, end, period=None).row(0, named=True)
    assert monthly["orders"].sum() == whole["orders"]
    assert monthly["period"].to_list() == [dt.date(2024, m, 1) for m in (1, 2, 3, 4)]
    assert all(f >= 1.0 for f in monthly["frequency"].drop_nulls())
    aov = average_order_value(book, start, end, returns=ret).row(0, named=True)
    assert 0 <= aov["returned_minor"] <= aov["gross_minor"]
    assert 0 <= aov["net_minor"] <= aov["gross_minor"]
    assert aov["orders"] == whole["orders"]
