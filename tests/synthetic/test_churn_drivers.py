"""Latent churn drivers: every drifting customer has one, its signal shows before it leaves, loyal
customers get only background noise, and the events that existed before are untouched."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict

import jsonschema
import pytest

from allegiance.synthetic import (
    CHURN_DRIVERS,
    EventRecord,
    LatentProfile,
    SynthConfig,
    SyntheticProgram,
    default_sources,
    event_type_catalog,
    generate,
)

CONFIG = SynthConfig(seed=13, organizations=600, months=24, dealers=6)
SIGNAL_TYPES = {"survey.answered", "complaint.opened", "price.objection", "quote.lost"}
WINDOW = dt.timedelta(days=120)


@pytest.fixture(scope="module")
def program() -> SyntheticProgram:
    return generate(CONFIG)


@pytest.fixture(scope="module")
def events(program: SyntheticProgram) -> list[EventRecord]:
    return list(program.events())


@pytest.fixture(scope="module")
def by_org(events: list[EventRecord]) -> dict[str, list[EventRecord]]:
    out: dict[str, list[EventRecord]] = defaultdict(list)
    for e in events:
        out[e.organization_external_id].append(e)
    return out


def _customers(program: SyntheticProgram, driver: str | None) -> list[tuple[LatentProfile, dt.date]]:
    left = {o.external_id: o.left_on for o in program.organizations}
    return [(p, left[p.external_id] or program.organizations[0].joined_on) for p in program.latent.values()
            if p.churn_driver == driver]


def test_every_drifting_customer_has_one_driver_and_stayers_none(program: SyntheticProgram) -> None:
    orgs = {o.external_id: o for o in program.organizations}
    for profile in program.latent.values():
        drifting = profile.drift_start is not None
        assert (profile.churn_driver is not None) == drifting == (orgs[profile.external_id].left_on is not None)
        assert (profile.churn_driver == "champion_left") == (profile.champion_external_id is not None)
    counts = Counter(p.churn_driver for p in program.latent.values() if p.churn_driver)
    assert set(counts) == set(CHURN_DRIVERS)
    others = [counts[d] for d in CHURN_DRIVERS if d != "champion_left"]
    assert min(others) >= 0.5 * max(others)  # drawn uniformly among the three


def test_the_events_that_existed_before_are_unchanged(program: SyntheticProgram, events: list[EventRecord]) -> None:
    original = generate(CONFIG, sources=default_sources()[:5])
    assert [s.name for s in default_sources()[:5]] == ["orders", "contracts", "training", "recycling", "departures"]
    assert [e for e in events if e.type not in SIGNAL_TYPES] == list(original.events())
    assert {e.type for e in events} >= SIGNAL_TYPES


def test_signal_payloads_validate_against_the_catalog(events: list[EventRecord]) -> None:
    catalog = event_type_catalog()
    assert set(catalog) >= SIGNAL_TYPES
    validators = {t: jsonschema.Draft202012Validator(catalog[t]) for t in SIGNAL_TYPES}
    for e in events:
        if e.type in SIGNAL_TYPES:
            validators[e.type].validate(e.payload)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"survey_id": "S", "nps": 11}, catalog["survey.answered"])
    jsonschema.validate({"survey_id": "S", "nps": 7}, catalog["survey.answered"])  # the comment is optional


def _before(events: list[EventRecord], types: set[str], end: dt.date, span: dt.timedelta = WINDOW,
            ) -> list[EventRecord]:
    start = dt.datetime.combine(end - span, dt.time(), dt.UTC)
    stop = dt.datetime.combine(end, dt.time(), dt.UTC) + dt.timedelta(days=1)
    return [e for e in events if e.type in types and start <= e.occurred_at < stop]


def test_nps_falls_before_a_satisfaction_churn(program: SyntheticProgram,
                                               by_org: dict[str, list[EventRecord]]) -> None:
    late, early = [], []
    for profile, left_on in _customers(program, "satisfaction"):
        answers = by_org[profile.external_id]
        late += [e.payload["nps"] for e in _before(answers, {"survey.answered"}, left_on, dt.timedelta(days=90))]
        assert profile.drift_start is not None
        early += [e.payload["nps"] for e in answers if e.type == "survey.answered"
                  and e.occurred_at.date() < profile.drift_start - dt.timedelta(days=150)]
    stayers = [e.payload["nps"] for p, _ in _customers(program, None) for e in by_org[p.external_id]
               if e.type == "survey.answered"]
    assert len(late) >= 20 and max(late) <= 8 and statistics.mean(late) < 4.5
    assert statistics.mean(early) > 7.5 and statistics.mean(stayers) > 8.0
    assert 0.9 < Counter(s >= 7 for s in stayers)[True] / len(stayers) < 1.0  # noise: some passives and detractors


@pytest.mark.parametrize(("driver", "types"), [
    ("complaints", {"complaint.opened"}),
    ("competitor_price", {"price.objection", "quote.lost"}),
])
def test_complaints_and_competitor_pressure_build_up_before_the_churn(
        program: SyntheticProgram, by_org: dict[str, list[EventRecord]], driver: str, types: set[str]) -> None:
    driven = [len(_before(by_org[p.external_id], types, left_on)) for p, left_on in _customers(program, driver)]
    end = CONFIG.start + dt.timedelta(days=730)
    stayers = [len(_before(by_org[p.external_id], types, end)) for p, _ in _customers(program, None)]
    assert statistics.mean(driven) >= 3.0
    assert statistics.mean(stayers) < 0.6 and any(stayers)  # background noise, at a low rate
    other = "competitor_price" if driver == "complaints" else "complaints"
    others = [len(_before(by_org[p.external_id], types, left_on)) for p, left_on in _customers(program, other)]
    assert statistics.mean(driven) > 4 * statistics.mean(others)


def test_competitor_pressure_names_one_rival_and_a_large_price_gap(
        program: SyntheticProgram, by_org: dict[str, list[EventRecord]]) -> None:
    for profile, left_on in _customers(program, "competitor_price"):
        signals = _before(by_org[profile.external_id], {"price.objection", "quote.lost"}, left_on)
        if len(signals) < 3:
            continue
        rivals = Counter(e.payload["competitor"] for e in signals)
        assert rivals.most_common(1)[0][1] >= 0.6 * len(signals)
        assert statistics.mean(e.payload["price_gap_pct"] for e in signals) > 8.0
        assert all(e.payload["amount_minor"] > 0 for e in signals if e.type == "quote.lost")


def test_a_champion_departure_precedes_a_champion_left_churn(program: SyntheticProgram,
                                                             by_org: dict[str, list[EventRecord]]) -> None:
    people = {p.external_id: p for p in program.participants}
    for profile, _ in _customers(program, "champion_left"):
        assert profile.champion_external_id is not None and profile.drift_start is not None
        champion = people[profile.champion_external_id]
        assert champion.role in ("owner", "purchasing_manager")
        assert champion.left_on is not None and champion.left_on <= profile.drift_start
        assert any(e.type == "participant.left" and e.participant_external_id == champion.external_id
                   for e in by_org[profile.external_id])
