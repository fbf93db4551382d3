"""The operational database read back as analytics frames must equal the frames of the synthetic
program it was loaded from (same orders, lines, returns and activity), and the ledger must show
up as program participation. Snapshots replace their own day; configurations are versioned.
Both databases."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from allegiance.analytics.frames import from_synthetic
from allegiance.bootstrap import Allegiance
from allegiance.demo.loader import load_demo
from allegiance.synthetic import SynthConfig, generate

ORGS, MONTHS, SEED = 30, 6, 5


def _same_program(app: Allegiance) -> SynthConfig:
    today = app.clock.now().date()
    start_month = today.year * 12 + today.month - 1 - MONTHS
    return SynthConfig(seed=SEED, organizations=ORGS, months=MONTHS,
                       start=datetime(start_month // 12, start_month % 12 + 1, 1).date())


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns)


def test_frames_from_the_database_equal_the_frames_of_the_loaded_program(allegiance: Allegiance) -> None:
    summary = load_demo(allegiance, seed=SEED, organizations=ORGS, months=MONTHS)
    expected = from_synthetic(generate(_same_program(allegiance)))
    with allegiance.read() as uow:
        frames = uow.analytics_store.frames(summary.program_id)
    for name in ("orders", "order_lines", "returns", "activity", "responses"):
        assert _sorted(getattr(frames, name)).equals(_sorted(getattr(expected, name))), name
    assert frames.orders.height > 100
    assert set(frames.organizations["org"]) == set(expected.organizations["org"])
    assert frames.people.height == expected.people.height
    earned = frames.program.filter(pl.col("kind") == "earned")
    redeemed = frames.program.filter(pl.col("kind") == "redeemed")
    assert earned.height > 0 and redeemed.height > 0
    assert earned["org"].null_count() == 0
    with allegiance.read() as uow:
        older = uow.analytics_store.frames(summary.program_id, until=frames.orders["occurred_at"].median())
    assert 0 < older.orders.height < frames.orders.height


def test_a_snapshot_rerun_on_the_same_day_replaces_it_and_configs_are_versioned(
        allegiance: Allegiance, program: object) -> None:
    program_id = program.id  # type: ignore[attr-defined]
    with allegiance.write() as uow:
        uow.analytics_store.save_snapshot(program_id, "metrics", date(2026, 1, 1), {"nrr": 1.0})
        uow.analytics_store.save_snapshot(program_id, "metrics", date(2026, 1, 1), {"nrr": 1.1})
        uow.analytics_store.save_snapshot(program_id, "metrics", date(2026, 1, 2), {"nrr": 1.2})
        first = uow.analytics_store.save_config(program_id, "health_score", {"w": 1}, by="t")
        second = uow.analytics_store.save_config(program_id, "health_score", {"w": 2}, by="t")
    with allegiance.read() as uow:
        series = uow.analytics_store.snapshots(program_id, "metrics")
        assert [(s["as_of"], s["document"]["nrr"]) for s in series] == [(date(2026, 1, 1), 1.1),
                                                                        (date(2026, 1, 2), 1.2)]
        assert (first, second) == (1, 2)
        assert uow.analytics_store.config(program_id, "health_score")["document"] == {"w": 2}
        assert uow.analytics_store.config(program_id, "health_score", 1)["document"] == {"w": 1}
        assert uow.analytics_store.config(program_id, "segments") is None
