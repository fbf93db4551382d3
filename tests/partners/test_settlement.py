"""The settlement arithmetic, pure: signs, reversals at the original rate, exact money."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.kernel.rates import round_half_up, total, value
from allegiance.partners.settlement import SettlementPosting, settle

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)


def op(kind: str, minor: int, per: int = 1) -> dict[str, object]:
    return {"partner_operation": kind, "rate": {"minor": minor, "per_points": per, "currency": "EUR"}}


def report(postings: list[SettlementPosting]):  # type: ignore[no-untyped-def]
    return settle(postings, partner_id=1, partner_code="bank", start=START, end=END, unit="PTS", currency="EUR",
                  currency_scale=2)


def test_earnings_and_redemptions_are_priced_at_their_own_rates_and_reversals_undo_them() -> None:
    # given 1,000 points issued at 1 cent per point, 400 redeemed at 0.8 cents, and 100 of the
    # issued points taken back by a reversal (priced at the earn's rate)
    postings = [
        SettlementPosting(1, -1000, False, op("earn", 1)),
        SettlementPosting(2, 400, False, op("redeem", 8, 10)),
        SettlementPosting(3, 100, True, op("earn", 1)),
    ]
    # when settled
    result = report(postings)
    # then the partner owes 900 cents, the operator 320 cents: the operator is owed 580 net
    assert (result.points_issued, result.points_redeemed, result.net_points) == (900, 400, -500)
    assert (result.partner_owes_minor, result.operator_owes_minor, result.net_minor) == (900, 320, -580)
    assert (result.transactions, result.reversals) == (3, 1)


def test_money_is_rounded_once_half_up_not_per_transaction() -> None:
    # three redemptions of 1 point at half a cent each: 1.5 cents in total → 2, not 3 × round(0.5)
    result = report([SettlementPosting(i, 1, False, op("redeem", 1, 2)) for i in range(3)])
    assert result.operator_owes_minor == 2


def test_a_posting_that_is_no_partner_operation_is_refused() -> None:
    with pytest.raises(ValueError, match="transaction 9"):
        report([SettlementPosting(9, 5, False, {"rule": "x"})])


@pytest.mark.parametrize(("amount", "expected"), [(0, 0), (1, 1), (-1, -1)])
def test_round_half_up_rounds_halves_away_from_zero(amount: int, expected: int) -> None:
    from fractions import Fraction

    assert round_half_up(Fraction(amount, 2)) == expected
    assert round_half_up(Fraction(amount * 3, 2)) == 2 * expected


operations = st.lists(st.tuples(st.sampled_from(["earn", "redeem"]), st.integers(1, 10**6), st.booleans(),
                                st.integers(0, 500), st.integers(1, 100)), max_size=40)


@given(operations, st.randoms())
def test_the_report_does_not_depend_on_the_order_of_postings(ops, rnd) -> None:  # type: ignore[no-untyped-def]
    postings = [SettlementPosting(i, (-1 if kind == "earn" else 1) * amount * (-1 if rev else 1), rev,
                                  op(kind, minor, per))
                for i, (kind, amount, rev, minor, per) in enumerate(ops)]
    shuffled = list(postings)
    rnd.shuffle(shuffled)
    first, second = report(postings), report(shuffled)
    assert first == second
    assert first.net_points == sum(p.amount for p in postings)
    expected = total(value(-p.amount, p.operation["rate"]["minor"], p.operation["rate"]["per_points"])  # type: ignore[index]
                     for p in postings if p.operation["partner_operation"] == "earn")
    assert first.partner_owes_minor == expected
