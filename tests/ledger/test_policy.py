"""Pure ledger policies: split, expiry dates, FIFO lot allocation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.ledger.errors import Overdraw
from allegiance.ledger.policy import AwardSplit, ExpiryMode, ExpiryPolicy, OpenLot, SplitMode, allocate

T0 = datetime(2026, 2, 14, 10, 30, tzinfo=UTC)


@given(st.integers(1, 10**12), st.integers(0, 100))
def test_a_split_always_adds_up_to_the_award(amount: int, percent: int) -> None:
    org, person = AwardSplit(mode=SplitMode.SHARED, participant_percent=percent).split(amount)
    assert org + person == amount
    assert 0 <= person <= amount * percent / 100


def test_the_reference_split_gives_70_30() -> None:
    assert AwardSplit(participant_percent=30).split(6000) == (4200, 1800)
    assert AwardSplit(mode=SplitMode.ORGANIZATION).split(10) == (10, 0)
    assert AwardSplit(mode=SplitMode.PARTICIPANT).split(10) == (0, 10)


@pytest.mark.parametrize(("policy", "expected"), [
    (ExpiryPolicy(), None),
    (ExpiryPolicy(mode=ExpiryMode.DAYS, days=30), datetime(2026, 3, 16, 10, 30, tzinfo=UTC)),
    (ExpiryPolicy(mode=ExpiryMode.END_OF_MONTH), datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)),
    (ExpiryPolicy(mode=ExpiryMode.END_OF_QUARTER), datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    (ExpiryPolicy(mode=ExpiryMode.END_OF_YEAR, periods_after=1), datetime(2027, 12, 31, 23, 59, 59, 999999,
                                                                            tzinfo=UTC)),
    (ExpiryPolicy(mode=ExpiryMode.END_OF_QUARTER, periods_after=3), datetime(2026, 12, 31, 23, 59, 59, 999999,
                                                                               tzinfo=UTC)),
])
def test_expiry_dates_follow_the_policy(policy: ExpiryPolicy, expected: datetime | None) -> None:
    assert policy.expires_at(T0) == expected


def test_days_are_required_exactly_with_the_days_mode() -> None:
    with pytest.raises(ValueError, match="days"):
        ExpiryPolicy(mode=ExpiryMode.DAYS)
    with pytest.raises(ValueError, match="days"):
        ExpiryPolicy(mode=ExpiryMode.NEVER, days=3)


def test_spends_consume_the_soonest_expiring_lots_first_and_never_expiring_last() -> None:
    lots = [OpenLot(1, 50, None), OpenLot(2, 30, datetime(2026, 6, 1, tzinfo=UTC)),
            OpenLot(3, 40, datetime(2026, 3, 1, tzinfo=UTC))]
    taken = [(lot.lot_id, amount) for lot, amount in allocate(lots, 100)]
    assert taken == [(3, 40), (2, 30), (1, 30)]


def test_a_preferred_lot_goes_first() -> None:
    lots = [OpenLot(1, 50, datetime(2026, 3, 1, tzinfo=UTC)), OpenLot(2, 30, None)]
    assert [(lot.lot_id, n) for lot, n in allocate(lots, 40, prefer=frozenset({2}))] == [(2, 30), (1, 10)]


@given(st.lists(st.integers(0, 1000), max_size=8), st.integers(1, 9000))
def test_allocation_takes_exactly_the_amount_or_refuses(sizes: list[int], amount: int) -> None:
    lots = [OpenLot(i + 1, size, None) for i, size in enumerate(sizes)]
    if amount > sum(sizes):
        with pytest.raises(Overdraw) as refused:
            allocate(lots, amount)
        assert refused.value.data["available"] == sum(sizes)
    else:
        taken = allocate(lots, amount)
        assert sum(n for _, n in taken) == amount
        assert all(0 < n <= lot.remaining for lot, n in taken)
