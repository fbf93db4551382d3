"""Up-sell signals: hand-computed examples, and recovery of the generator's latent truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from allegiance.analytics import frames
from allegiance.analytics.frames import SCHEMAS
from allegiance.analytics.recommend import UPSELL_SCHEMA, peer_gaps, tier_proximity, upsell
from allegiance.synthetic import SynthConfig, generate
from allegiance.synthetic.products import CATEGORIES, CATEGORY_SHARE

from ._frames import T0, orgs


def _spend(rows: list[tuple[str, str, int, int]]) -> pl.DataFrame:
    """(org, category, value_minor, day) -> order lines."""
    return pl.DataFrame(
        [(o, f"{o}-{day}-{cat}", T0 + dt.timedelta(days=day), f"{cat}-1", cat, 1, value)
         for o, cat, value, day in rows], schema=SCHEMAS["order_lines"], orient="row")


def test_tier_proximity_by_hand() -> None:
    progress = pl.DataFrame({
        "org": ["A", "B", "C", "D", "E"], "tier": ["Silver", "Silver", "Gold", "Silver", "Bronze"],
        "next_tier": ["Gold", "Gold", None, "Gold", "Silver"],
        "progress_value": [9_500, 8_000, 50_000, 10_000, 1_000],
        "next_threshold": [10_000, 10_000, None, 10_000, 1_050],
    })
    out = tier_proximity(progress, within=0.10)
    assert out.schema == pl.Schema(UPSELL_SCHEMA)
    assert out["org"].to_list() == ["E", "A"]  # smallest gap first; B is 20 % short, D already there
    assert out["gap"].to_list() == [50.0, 500.0]
    assert out["ratio"].to_list() == pytest.approx([1_000 / 1_050, 0.95])
    assert out["reason"][1] == "500 short of Gold (95% of the 10,000 threshold; now Silver)"
    assert tier_proximity(progress, within=0.25)["org"].to_list() == ["E", "A", "B"]
    with pytest.raises(ValueError):
        tier_proximity(progress, within=1.5)


def _peers() -> tuple[pl.DataFrame, pl.DataFrame]:
    rows = [("A", "toner", 100_000, 400), ("A", "paper", 20_000, 400),
            ("B", "toner", 150_000, 400), ("B", "paper", 50_000, 400),
            ("C", "toner", 200_000, 400), ("C", "paper", 100_000, 400),
            ("D", "toner", 300_000, 400), ("D", "paper", 100_000, 400),
            ("E", "paper", 40_000, 400), ("E", "toner", 9_000_000, 0)]  # E's toner is outside the window
    return _spend(rows), orgs(dict.fromkeys("ABCDE", "retail"))


def test_peer_gaps_by_hand() -> None:
    order_lines, organizations = _peers()
    out = peer_gaps(order_lines, organizations, bands=1, min_peers=5)
    # 12-month spend: A 120k, B 200k, C 300k, D 400k, E 40k; median 200k; E < 0.5 × median.
    low = out.filter(pl.col("signal") == "below_peers")
    assert low["org"].to_list() == ["E"]
    assert low.row(0, named=True) | {"reason": ""} == {
        "org": "E", "signal": "below_peers", "segment": "retail", "band": "1 of 1 by spend", "category": None,
        "value": 40_000.0, "benchmark": 200_000.0, "gap": 160_000.0, "ratio": 0.2, "reason": ""}
    assert low["reason"][0] == ("you spend 20% of the median of retail companies of your size "
                                "(400 vs 2,000 in the last 12 months)")
    # Toner medians: [100k, 150k, 200k, 300k, 0] -> 150k; paper: [20k, 50k, 100k, 100k, 40k] -> 50k.
    gaps = out.filter(pl.col("signal") == "category_gap")
    assert gaps.select("org", "category", "value", "benchmark").rows() == [
        ("A", "paper", 20_000.0, 50_000.0), ("E", "toner", 0.0, 150_000.0)]
    assert gaps["ratio"].to_list() == [2.5, float("inf")]
    assert gaps["reason"].to_list() == [
        "peers of your size in retail spend 2.5× more on paper (median 500 vs your 200 in the last 12 months)",
        "peers of your size in retail spend a median 1,500 a year on toner; you bought none in the last 12 months",
    ]
    # Too few peers: nobody is flagged. A gap floor drops A's small paper gap.
    assert peer_gaps(order_lines, organizations, bands=1, min_peers=6).height == 0
    floor = peer_gaps(order_lines, organizations, bands=1, min_peers=5, min_gap_minor=40_000)
    assert floor.filter(pl.col("signal") == "category_gap")["org"].to_list() == ["E"]
    # An earlier as_of moves the window: only E's old toner is in it, one buyer < min_peers.
    assert peer_gaps(order_lines, organizations, as_of=T0 + dt.timedelta(days=1), bands=1, min_peers=1).height == 0


def test_size_bands_from_headcount() -> None:
    heads = {"A": 1, "B": 1, "C": 2, "D": 10, "E": 10, "F": 12}
    spend = {"A": 100, "B": 100, "C": 10, "D": 1_000, "E": 1_000, "F": 1_000}
    order_lines = _spend([(o, "toner", v, 1) for o, v in spend.items()])
    people = pl.DataFrame([(f"{o}-{i}", o, "other", "active", None) for o, n in heads.items() for i in range(n)],
                          schema=SCHEMAS["people"], orient="row")
    out = peer_gaps(order_lines, orgs(dict.fromkeys(heads, "s")), people=people, bands=2, min_peers=3)
    # Bands by headcount: {A, B, C} and {D, E, F}; C spends 10 against a median of 100.
    low = out.filter(pl.col("signal") == "below_peers")
    assert low.select("org", "band", "benchmark").rows() == [("C", "1 of 2 by headcount", 100.0)]
    # Bands by spend are the same two groups here ({C, A, B} and {D, E, F}).
    by_spend = peer_gaps(order_lines, orgs(dict.fromkeys(heads, "s")), bands=2, min_peers=3)
    assert by_spend.filter(pl.col("signal") == "below_peers")["org"].to_list() == ["C"]


def test_upsell_combines_both_signals() -> None:
    order_lines, organizations = _peers()
    progress = pl.DataFrame({"org": ["B"], "tier": ["Silver"], "next_tier": ["Gold"], "progress_value": [95],
                             "next_threshold": [100]})
    out = upsell(order_lines, organizations, tier_progress=progress, bands=1, min_peers=5)
    assert out.group_by("signal").len().sort("signal").rows() == [
        ("below_peers", 1), ("category_gap", 2), ("tier_proximity", 1)]
    assert out.schema == pl.Schema(UPSELL_SCHEMA)
    assert upsell(order_lines.clear(), organizations).height == 0


def test_flags_recover_the_generator_truth() -> None:
    program = generate(SynthConfig(seed=11, organizations=1000, months=24))
    fr = frames.from_synthetic(program)
    out = peer_gaps(fr.order_lines, fr.organizations, people=fr.people)
    buyers = set(fr.order_lines["org"])
    # Spend per size: orders per month × value per line, relative to size (the latent truth).
    intensity = {o: p.orders_per_month * p.value_multiplier / p.size for o, p in program.latent.items()}
    low = set(out.filter(pl.col("signal") == "below_peers")["org"])
    assert len(low) > 50
    assert np.median([intensity[o] for o in low]) < 0.8 * np.median([intensity[o] for o in buyers - low])
    # A category gap is a category the organization has little affinity for.

    def relative_affinity(org: str, category: str) -> float:
        affinity = program.latent[org].category_affinity
        i = CATEGORIES.index(category)
        return affinity[i] / sum(affinity) / CATEGORY_SHARE[i]

    gaps = out.filter(pl.col("signal") == "category_gap")
    flagged = set(zip(gaps["org"], gaps["category"], strict=True))
    others = [relative_affinity(o, c) for o in buyers for c in CATEGORIES if (o, c) not in flagged]
    assert np.median([relative_affinity(o, c) for o, c in flagged]) < 0.5 * np.median(others)
