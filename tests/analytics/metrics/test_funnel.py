from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.frames import empty
from allegiance.analytics.metrics import participation_funnel
from tests.analytics.metrics.helpers import at, frame, organizations

AS_OF = dt.date(2024, 6, 30)  # with 30 days: the window is [Jun 1, Jul 1)
ORGS = organizations(("O1", "enterprise"), ("O2", "small-business", dt.date(2024, 6, 15)),
                     ("O3", "small-business"))


def person(pid: str, org: str, role: str, status: str = "active", left_on: dt.date | None = None) -> dict[str, object]:
    return {"participant": pid, "org": org, "role": role, "status": status, "left_on": left_on}


PEOPLE = frame("people", [
    person("p1", "O1", "owner"), person("p2", "O1", "purchasing_manager"), person("p3", "O1", "engineer"),
    person("p4", "O1", "accountant", "left", dt.date(2024, 6, 10)),  # gone by as_of
    person("p5", "O1", "sales_rep", "left", dt.date(2024, 8, 1)),  # still there on as_of
    person("p6", "O2", "owner"),  # the organization left
    person("p7", "O3", "owner", "left"),  # left, date unknown
    person("p8", "O3", "purchasing_manager"),
    person("p9", "O4", "other"),  # organization unknown to ORGS: still enrolled
])
PROGRAM = frame("program", [
    {"org": "O1", "participant": "p1", "occurred_at": at(2024, 6, 10), "kind": "earned", "amount": 10},
    {"org": "O1", "participant": "p1", "occurred_at": at(2024, 6, 20), "kind": "redeemed", "amount": -5},
    {"org": "O1", "participant": "p3", "occurred_at": at(2024, 7, 1, 0), "kind": "redeemed", "amount": -5},
    {"org": "O1", "participant": "p4", "occurred_at": at(2024, 6, 5), "kind": "redeemed", "amount": -5},
    {"org": "O1", "participant": "p5", "occurred_at": at(2024, 6, 5), "kind": "redeemed", "amount": -5},
    {"org": "O2", "participant": "p6", "occurred_at": at(2024, 6, 5), "kind": "redeemed", "amount": -5},
])
ACTIVITY = frame("activity", [
    {"org": "O1", "participant": "p2", "type": "training.completed", "occurred_at": at(2024, 6, 1, 0)},
    {"org": "O1", "participant": "p3", "type": "training.completed", "occurred_at": at(2024, 5, 31, 23, 59, 59)},
    {"org": "O3", "participant": None, "type": "contract.signed", "occurred_at": at(2024, 6, 12)},
])


def test_funnel_hand_computed() -> None:
    f = participation_funnel(ORGS, PEOPLE, PROGRAM, ACTIVITY, AS_OF, window_days=30)
    assert f.overall.to_dicts() == [{"enrolled": 6, "active": 3, "redeeming": 2, "active_rate": 0.5,
                                     "redeeming_rate": 2 / 6, "redeeming_of_active": 2 / 3}]
    assert f.by_org.select("org", "segment", "enrolled", "active", "redeeming").rows() == [
        ("O1", "enterprise", 4, 3, 2), ("O3", "small-business", 1, 0, 0), ("O4", None, 1, 0, 0)]
    assert f.by_role.select("role", "enrolled", "active", "redeeming").rows() == [
        ("engineer", 1, 0, 0), ("other", 1, 0, 0), ("owner", 1, 1, 1), ("purchasing_manager", 2, 1, 0),
        ("sales_rep", 1, 1, 1)]


def test_orders_count_as_activity_when_given_and_window_length_matters() -> None:
    orders = frame("orders", [{"org": "O3", "order_id": "x", "participant": "p8", "occurred_at": at(2024, 6, 15),
                               "amount_minor": 1}])
    f = participation_funnel(ORGS, PEOPLE, PROGRAM, ACTIVITY, AS_OF, window_days=30, orders=orders)
    assert f.overall["active"][0] == 4
    # With 31 days, p3's May 31 training counts too.
    assert participation_funnel(ORGS, PEOPLE, PROGRAM, ACTIVITY, AS_OF, 31).overall["active"][0] == 4


def test_funnel_empty_frames() -> None:
    f = participation_funnel(empty("organizations"), empty("people"), empty("program"), empty("activity"), AS_OF)
    assert f.overall.to_dicts() == [{"enrolled": 0, "active": 0, "redeeming": 0, "active_rate": None,
                                     "redeeming_rate": None, "redeeming_of_active": None}]
    assert f.by_org.height == 0 and f.by_role.height == 0
    nobody_active = participation_funnel(ORGS, PEOPLE, empty("program"), empty("activity"), AS_OF)
    assert nobody_active.overall.row(0) == (6, 0, 0, 0.0, 0.0, None)
    with pytest.raises(ValueError):
        participation_funnel(ORGS, PEOPLE, PROGRAM, ACTIVITY, AS_OF, window_days=0)


_event = st.tuples(st.integers(0, 7), st.integers(0, 60), st.sampled_from(["earned", "redeemed", "activity"]))


@settings(max_examples=60, deadline=None)
@given(statuses=st.lists(st.tuples(st.sampled_from(["active", "left"]), st.none() | st.integers(0, 60)),
                         min_size=8, max_size=8),
       events=st.lists(_event, max_size=30), window=st.integers(1, 60))
def test_funnel_is_monotone_and_adds_up(statuses: list[tuple[str, int | None]], events: list[tuple[int, int, str]],
                                        window: int) -> None:
    start = dt.date(2024, 5, 1)
    people = frame("people", [
        person(f"p{i}", f"O{i % 3 + 1}", ["owner", "engineer"][i % 2], s,
               None if d is None else start + dt.timedelta(days=d)) for i, (s, d) in enumerate(statuses)])
    program = frame("program", [
        {"org": f"O{i % 3 + 1}", "participant": f"p{i}", "occurred_at": at(2024, 5, 1) + dt.timedelta(days=d),
         "kind": k, "amount": 1} for i, d, k in events if k != "activity"])
    activity = frame("activity", [
        {"org": f"O{i % 3 + 1}", "participant": f"p{i}", "type": "x",
         "occurred_at": at(2024, 5, 1) + dt.timedelta(days=d)} for i, d, k in events if k == "activity"])
    f = participation_funnel(ORGS, people, program, activity, AS_OF, window)
    for table in (f.overall, f.by_org, f.by_role):
        assert (table["enrolled"] >= table["active"]).all()
        assert (table["active"] >= table["redeeming"]).all()
        for rate in ("active_rate", "redeeming_rate", "redeeming_of_active"):
            assert table[rate].drop_nulls().is_between(0.0, 1.0).all()
    total = f.overall.select("enrolled", "active", "redeeming").row(0)
    assert f.by_org.select(pl.col("enrolled", "active", "redeeming").sum()).row(0) == total
    assert f.by_role.select(pl.col("enrolled", "active", "redeeming").sum()).row(0) == total
