"""The co-purchase world: deterministic, well-formed, and carrying the structure it claims."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from allegiance.analytics.frames import SCHEMAS
from allegiance.analytics.recommend import CoPurchaseConfig, simulate


def test_deterministic_and_schema() -> None:
    cfg = CoPurchaseConfig(organizations=300, seed=5)
    a, b = simulate(cfg), simulate(cfg)
    assert a.order_lines.equals(b.order_lines) and a.organizations.equals(b.organizations)
    assert not simulate(CoPurchaseConfig(organizations=300, seed=6)).order_lines.equals(a.order_lines)
    assert a.order_lines.schema == pl.Schema(SCHEMAS["order_lines"])
    assert a.organizations.schema == pl.Schema(SCHEMAS["organizations"])
    ol = a.order_lines
    assert ol["occurred_at"].min() >= dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # type: ignore[operator]
    assert ol["occurred_at"].max() < dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # type: ignore[operator]
    assert ol.select(pl.struct("order_id", "sku").is_unique().all()).item()  # one line per product per order
    assert (ol["quantity"] >= 1).all() and (ol["value_minor"] > 0).all()


def test_truth_matches_the_frames() -> None:
    world = simulate(CoPurchaseConfig(organizations=500, seed=1))
    cfg = world.config
    assert dict(zip(world.organizations["org"], world.organizations["segment"], strict=True)) == world.segment_of
    assert len(world.bundles) == cfg.bundles
    for bundle in world.bundles:
        assert len(bundle) == cfg.bundle_size
        assert len({world.product_category[p] for p in bundle}) <= 2  # two home categories
    assert all(len(b) >= 1 for b in world.bundles_of.values())
    # Every line's category is its product's category.
    pairs = world.order_lines.select("sku", "category").unique()
    assert all(world.product_category[s] == c for s, c in pairs.iter_rows())
    # Adopters buy the bundle's products far more often than other organizations do.
    bought = world.order_lines.group_by("org").agg(pl.col("sku").unique())
    has = {o: set(s) for o, s in bought.iter_rows()}
    bundle = world.bundles[0]
    adopters = [o for o, bs in world.bundles_of.items() if 0 in bs and o in has]
    others = [o for o, bs in world.bundles_of.items() if 0 not in bs and o in has]
    share = lambda group: sum(len(has[o] & set(bundle)) for o in group) / (len(group) * len(bundle))  # noqa: E731
    assert adopters and share(adopters) > 5 * share(others)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        CoPurchaseConfig(organizations=0)
    with pytest.raises(ValueError):
        CoPurchaseConfig(categories=1)
