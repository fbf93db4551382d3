"""The breakage estimator: pure properties, then a synthetic ledger history whose answer is known."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.bootstrap import Allegiance
from allegiance.finance.breakage import Cohort, CohortFlow, cohorts, estimate
from allegiance.kernel.clock import FixedClock
from allegiance.programs.model import ProgramSettings
from tests import factories as f
from tests.conftest import ProgramFixture

D1, D2 = date(2026, 1, 31), date(2026, 2, 28)


def test_issuance_net_of_corrections_and_expiry_make_a_cohort() -> None:
    flows = [
        CohortFlow("PTS", D1, "award", None, 1000, 0),
        CohortFlow("PTS", D1, "reversal", "award", 0, 100),  # an award taken back: never issued
        CohortFlow("PTS", D1, "reversal", "transfer", 50, 50),  # internal: no effect
        CohortFlow("PTS", D1, "transfer", None, 300, 300),
        CohortFlow("PTS", D1, "spend", None, 0, 600),
        CohortFlow("PTS", D1, "expire", None, 0, 300),
        CohortFlow("PTS", D2, "award", None, 500, 0),
    ]
    found = cohorts(flows, {("PTS", D2): 500}, as_of=date(2026, 3, 1))
    assert found == [Cohort("PTS", D1, 900, 300, 0, True), Cohort("PTS", D2, 500, 0, 500, False)]
    [only] = estimate(found).values()
    assert (only.closed_cohorts, only.issued, only.expired, only.rate) == (1, 900, 300, Fraction(1, 3))
    assert only.rate_text() == "0.333333"


def test_a_cohort_not_yet_due_is_open_even_when_empty() -> None:
    found = cohorts([CohortFlow("PTS", D2, "award", None, 10, 0), CohortFlow("PTS", D2, "spend", None, 0, 10)],
                    {}, as_of=D1)
    assert [c.closed for c in found] == [False]
    assert estimate(found) == {}


cohort_values = st.lists(st.tuples(st.integers(1, 10**9), st.integers(0, 100), st.booleans()), max_size=30)


@given(cohort_values)
def test_the_rate_is_the_issued_weighted_share_over_closed_cohorts(values) -> None:  # type: ignore[no-untyped-def]
    found = [Cohort("PTS", D1 + timedelta(days=i), issued, issued * pct // 100, 0, closed)
             for i, (issued, pct, closed) in enumerate(values)]
    result = estimate(found)
    closed = [c for c in found if c.closed]
    if not closed:
        assert result == {}
        return
    rate = result["PTS"].rate
    assert rate == Fraction(sum(c.expired for c in closed), sum(c.issued for c in closed))
    assert 0 <= rate <= 1
    assert min(Fraction(c.expired, c.issued) for c in closed) <= rate <= max(Fraction(c.expired, c.issued)
                                                                             for c in closed)


# -- a synthetic history through the real ledger ------------------------------------------------------
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


def run_expiry(app: Allegiance) -> None:
    with app.write() as uow:
        for account_id in uow.ledger_store.expired_lot_accounts(app.clock.now(), 10_000):
            uow.ledger.expire_lots_of(account_id)


def test_the_estimator_recovers_a_known_breakage_rate(allegiance: Allegiance, program: ProgramFixture,
                                                      clock: FixedClock) -> None:
    # given points that expire 30 days after they are earned
    with allegiance.write() as uow:
        settings = uow.programs.settings(program.id).model_dump(mode="json")
        uow.programs.configure(program.id, ProgramSettings.model_validate(
            {**settings, "expiry": {"mode": "days", "days": 30}}))
        split = uow.programs.settings(program.id).award_split
        expiry = uow.programs.settings(program.id).expiry
    # and 10 companies that each earn 1,000 points and spend 70 % of them (one through a colleague
    # after a transfer, which keeps the points' expiry); plus an award that is reversed (never issued)
    for n in range(10):
        org = f.organization(allegiance, program.id)
        pool = f.pool_account(allegiance, program.id, org["id"])
        with allegiance.write() as uow:
            uow.ledger.award(program.id, "PTS", 1000, organization_id=org["id"], participant_id=None, split=split,
                             expiry=expiry)
            mistake = uow.ledger.award(program.id, "PTS", 400, organization_id=org["id"], participant_id=None,
                                       split=split, expiry=expiry)
            uow.ledger.reverse(program.id, mistake.transaction_id, memo="awarded by mistake")
        if n == 0:
            person = f.participant(allegiance, program.id, org["id"])
            personal = f.personal_account(allegiance, program.id, org["id"], person["id"])
            with allegiance.write() as uow:
                uow.ledger.transfer(program.id, pool, personal, 500)
                uow.ledger.spend(program.id, personal, 400)
                uow.ledger.spend(program.id, pool, 300)
        else:
            with allegiance.write() as uow:
                uow.ledger.spend(program.id, pool, 700)
    # when their points expire and the expiry job runs (twice: it is idempotent)
    clock.advance(timedelta(days=31))
    run_expiry(allegiance)
    run_expiry(allegiance)
    # and a newer cohort, still open, is earned
    late = f.organization(allegiance, program.id)
    with allegiance.write() as uow:
        uow.ledger.award(program.id, "PTS", 1000, organization_id=late["id"], participant_id=None, split=split,
                         expiry=expiry)
    # then the estimate is exactly the 30 % that expired, and it predicts 300 of the open 1,000
    with allegiance.read() as uow:
        result = uow.finance.breakage(program.id)
    [pts] = result["units"]
    assert (pts["issued"], pts["expired"], pts["closed_cohorts"]) == (10_000, 3_000, 1)
    assert pts["breakage_rate"] == "0.300000"
    assert (pts["expirable_outstanding"], pts["expected_breakage"]) == (1000, 300)
