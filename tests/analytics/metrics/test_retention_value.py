from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.frames import empty
from allegiance.analytics.metrics import customer_value, retention_gain_value
from tests.analytics.metrics.helpers import at, orders, returns


def test_hand_computed_two_year_projection() -> None:
    r = retention_gain_value(retention_rate=0.8, revenue_per_customer_minor=1000, customers=100, margin=0.5,
                             discount_rate=0.1, horizon_years=2)
    before = 0.5 * 1000 * (0.8 / 1.1 + 0.8**2 / 1.1**2)  # 628.10
    after = 0.5 * 1000 * (0.82 / 1.1 + 0.82**2 / 1.1**2)  # 650.58
    assert r.value_per_customer_minor == pytest.approx(before)
    assert r.value_per_customer_after_minor == pytest.approx(after)
    assert r.uplift_per_customer_minor == pytest.approx(22.4793, abs=1e-4)
    assert r.total_uplift_minor == pytest.approx(100 * (after - before))
    assert (r.retention_rate, r.gain, r.customers, r.horizon_years) == (0.8, 0.02, 100, 2)
    assert r.retention_after == pytest.approx(0.82)
    assert set(r.sources.values()) == {"given"}


def test_retention_is_capped_at_one_and_inputs_are_checked() -> None:
    r = retention_gain_value(retention_rate=0.99, revenue_per_customer_minor=1000, customers=1, margin=1.0,
                             discount_rate=0.0, horizon_years=3)
    assert r.retention_after == 1.0
    assert r.value_per_customer_after_minor == pytest.approx(3000.0)  # kept for sure, undiscounted: 3 years
    for bad in ({"margin": 1.2}, {"horizon_years": 0}, {"discount_rate": -1.0}, {"retention_rate": 1.5}):
        args = {"retention_rate": 0.8, "revenue_per_customer_minor": 1, "customers": 1, "margin": 0.3, **bad}
        with pytest.raises(ValueError):
            retention_gain_value(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="orders"):
        retention_gain_value(margin=0.3)
    with pytest.raises(ValueError, match="prior 12 months"):
        retention_gain_value(margin=0.3, orders=empty("orders"), as_of=dt.date(2025, 12, 31))


def test_inputs_computed_from_frames() -> None:
    # Prior year (2024) payers: A, B, D. Last year (2025): A 300, C 100, D 200 - 50 returned = 150.
    book = orders(("A", at(2024, 3, 1), 100), ("A", at(2025, 3, 1), 300), ("B", at(2024, 6, 1), 400),
                  ("C", at(2025, 2, 1), 100), ("D", at(2024, 1, 1, 0), 50), ("D", at(2025, 12, 31, 23), 200, "D2"))
    back = returns(("D", "D2", at(2025, 12, 31, 23, 30), 50))
    r = retention_gain_value(margin=0.3, orders=book, returns=back, discount_rate=0.1, horizon_years=5)
    assert r.retention_rate == pytest.approx(2 / 3)  # A and D paid again
    assert r.customers == 3
    assert r.revenue_per_customer_minor == pytest.approx(550 / 3)
    assert r.sources == {"retention_rate": "frames", "customers": "frames", "revenue_per_customer_minor": "frames"}
    given_rate = retention_gain_value(margin=0.3, orders=book, returns=back, retention_rate=0.9)
    assert given_rate.retention_rate == 0.9 and given_rate.sources["retention_rate"] == "given"
    assert given_rate.customers == 3


@settings(max_examples=100, deadline=None)
@given(r=st.floats(0.0, 1.0), gain=st.floats(0.0, 0.2), d=st.floats(0.0, 0.5), years=st.integers(1, 15),
       revenue=st.floats(0.0, 1e7), margin=st.floats(0.0, 1.0))
def test_projection_invariants(r: float, gain: float, d: float, years: int, revenue: float, margin: float) -> None:
    out = retention_gain_value(retention_rate=r, revenue_per_customer_minor=revenue, customers=10, margin=margin,
                               discount_rate=d, horizon_years=years, gain=gain)
    assert out.uplift_per_customer_minor >= -1e-9  # keeping more customers is never worth less
    assert out.value_per_customer_minor <= margin * revenue * years + 1e-6  # at most every year undiscounted
    longer = customer_value(r, revenue, margin, d, years + 1)
    assert longer >= out.value_per_customer_minor - 1e-9
    q = r / (1 + d)
    closed = margin * revenue * (years if q == 1 else q * (1 - q**years) / (1 - q))
    assert out.value_per_customer_minor == pytest.approx(closed, rel=1e-9, abs=1e-6)
