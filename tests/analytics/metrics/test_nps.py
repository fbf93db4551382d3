from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.frames import empty
from allegiance.analytics.metrics import NpsMethod, nps, nps_interval
from tests.analytics.metrics.helpers import at, frame, organizations

Z95 = 1.959963984540054


def test_wald_interval_hand_computed() -> None:
    # 5 promoters, 3 passives, 2 detractors: NPS 30; var = (0.5 + 0.2 - 0.3^2) / 10 = 0.061.
    score, low, high = nps_interval(5, 3, 2)
    half = 100 * Z95 * math.sqrt(0.061)
    assert score == 30.0 and low is not None and high is not None
    assert low == pytest.approx(30 - half) and high == pytest.approx(30 + half)
    assert (round(low, 2), round(high, 2)) == (-18.41, 78.41)
    # Every answer a promoter: Wald collapses to a point, the adjusted interval does not.
    assert nps_interval(5, 0, 0) == (100.0, 100.0, 100.0)
    _, a_low, a_high = nps_interval(5, 0, 0, method="adjusted_wald")
    centre, var = 5 / 8, (5.75 / 8 + 0.75 / 8 - (5 / 8) ** 2) / 8
    assert a_low == pytest.approx(100 * (centre - Z95 * math.sqrt(var))) and a_high == 100.0


def test_adjusted_wald_is_centred_on_the_adjusted_estimate() -> None:
    score, low, high = nps_interval(1, 0, 0, method="adjusted_wald")
    assert score == 100.0 and low is not None and high is not None  # the point estimate stays the raw NPS...
    assert low == pytest.approx(25 - 100 * Z95 * 0.375) and high == pytest.approx(25 + 100 * Z95 * 0.375)
    assert high < 100.0  # ...which this tiny, extreme sample's interval does not contain (documented)


def test_no_answers_gives_null_not_a_crash() -> None:
    assert nps_interval(0, 0, 0) == (None, None, None)
    assert nps_interval(0, 0, 0, method="adjusted_wald") == (None, None, None)
    out = nps(empty("responses"))
    assert out.to_dicts() == [{"n": 0, "promoters": 0, "passives": 0, "detractors": 0, "score": None,
                               "ci_low": None, "ci_high": None}]
    assert nps(empty("responses"), period="month").height == 0
    with pytest.raises(ValueError):
        nps_interval(1, 1, 1, confidence=1.0)
    with pytest.raises(ValueError):
        nps_interval(1, 1, 1, method="bootstrap")  # type: ignore[arg-type]


def answer(org: str, who: str | None, when: dt.datetime, score: int) -> dict[str, object]:
    return {"org": org, "participant": who, "occurred_at": when, "score": score}


RESPONSES = frame("responses", [
    answer("A", "a1", at(2024, 1, 5), 10), answer("A", "a1", at(2024, 1, 25), 6),  # a1 changed their mind
    answer("A", "a2", at(2024, 1, 7), 9), answer("B", "b1", at(2024, 1, 31, 23, 59, 59), 7),
    answer("B", None, at(2024, 2, 1, 0), 3), answer("B", "b1", at(2024, 2, 10), 10),
    answer("B", "b2", at(2024, 2, 11), 11),  # invalid, dropped
])
PEOPLE = frame("people", [{"participant": p, "org": o, "role": r, "status": "active"} for p, o, r in
                          (("a1", "A", "owner"), ("a2", "A", "engineer"), ("b1", "B", "owner"))])


def test_nps_over_frames_by_period_role_segment() -> None:
    overall = nps(RESPONSES)
    assert overall.select("n", "promoters", "passives", "detractors", "score").row(0) == (6, 3, 1, 2, 100 / 6)
    monthly = nps(RESPONSES, period="month")
    assert monthly.select("period", "n", "score").rows() == [
        (dt.date(2024, 1, 1), 4, 25.0), (dt.date(2024, 2, 1), 2, 0.0)]
    latest = nps(RESPONSES, period="month", latest_per_respondent=True)
    assert latest.select("n", "promoters", "detractors").rows() == [(3, 1, 1), (2, 1, 1)]
    by_role = nps(RESPONSES, by="role", people=PEOPLE)
    assert by_role.select("role", "n", "score").rows() == [
        ("engineer", 1, 100.0), ("owner", 4, 25.0), (None, 1, -100.0)]  # the anonymous answer has no role
    by_segment = nps(RESPONSES, by="segment", organizations=organizations(("A", "enterprise"), ("B", "education")))
    assert by_segment.select("segment", "n", "score").rows() == [("education", 3, 0.0), ("enterprise", 3, 100 / 3)]
    window = nps(RESPONSES, start=dt.date(2024, 1, 7), end=dt.date(2024, 2, 1))
    assert window["n"][0] == 3
    for row in monthly.iter_rows(named=True):
        assert (row["score"], row["ci_low"], row["ci_high"]) == nps_interval(
            row["promoters"], row["passives"], row["detractors"])


def coverage(draws: np.ndarray, true: float, method: NpsMethod) -> float:
    hits = 0
    for p, q, d in draws:
        _, low, high = nps_interval(int(p), int(q), int(d), method=method)
        assert low is not None and high is not None
        hits += low <= true <= high
    return hits / len(draws)


def test_interval_coverage_recovers_the_nominal_level() -> None:
    # Known true NPS = 15; the 95% intervals should cover it about 95% of the time at n = 400
    # (Monte Carlo standard error of the coverage ~0.5 points with 2,000 samples).
    rng = np.random.default_rng(7)
    probs, true = (0.40, 0.35, 0.25), 15.0
    large = rng.multinomial(400, probs, size=2000)
    assert 0.93 <= coverage(large, true, "wald") <= 0.965
    assert 0.93 <= coverage(large, true, "adjusted_wald") <= 0.965
    assert 0.93 <= coverage(rng.multinomial(10, probs, size=2000), true, "adjusted_wald") <= 0.965
    # With small, lopsided samples (true NPS 75) the plain Wald interval under-covers; the adjusted one does not.
    lopsided = rng.multinomial(10, (0.8, 0.15, 0.05), size=2000)
    assert coverage(lopsided, 75.0, "wald") < 0.91
    assert coverage(lopsided, 75.0, "adjusted_wald") > 0.93


@settings(max_examples=200, deadline=None)
@given(p=st.integers(0, 60), q=st.integers(0, 60), d=st.integers(0, 60),
       confidence=st.floats(0.5, 0.999), method=st.sampled_from(["wald", "adjusted_wald"]))
def test_interval_invariants(p: int, q: int, d: int, confidence: float, method: NpsMethod) -> None:
    score, low, high = nps_interval(p, q, d, method=method, confidence=confidence)
    if p + q + d == 0:
        assert score is None and low is None and high is None
        return
    assert score is not None and low is not None and high is not None
    assert -100.0 <= low <= high <= 100.0
    assert -100.0 <= score <= 100.0
    if method == "wald":
        assert low - 1e-9 <= score <= high + 1e-9
    else:
        assert low < high  # never degenerate
    _, wide_low, wide_high = nps_interval(p, q, d, method=method, confidence=min(0.9999, confidence + 0.0005))
    assert wide_low is not None and wide_high is not None
    assert wide_low <= low + 1e-9 and wide_high >= high - 1e-9
