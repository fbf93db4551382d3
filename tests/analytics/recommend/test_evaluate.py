"""Holdout evaluation: the protocol by hand, and the targets on synthetic data.

The targets (product level: hit@5 ≥ 1.5 × global popularity and > segment popularity; category
level: hit@1 and hit@3 above both baselines) are met on the co-purchase world of ``simulate``,
whose bundles and segments are known. On the program generator (``allegiance.synthetic``) the
model still beats both baselines at product level, but 1.5 × is out of reach for any method: its
purchases have no structure beyond per-category affinity, and an oracle ranking by the true
affinities gets only ~1.3 × (asserted below, so the claim in docs/analytics.md stays true).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from allegiance.analytics import frames
from allegiance.analytics.recommend import CoPurchaseConfig, build_matrix, evaluate, simulate
from allegiance.synthetic import SynthConfig, generate
from allegiance.synthetic.products import CATEGORIES, PRODUCT_CATEGORY_INDEX, PRODUCT_SHARE_IN_CATEGORY, PRODUCTS

from ._frames import lines, orgs

SPLIT = dt.date(2025, 7, 1)


def test_protocol_by_hand() -> None:
    # Segment s1 buys x and p, segment s2 (larger) buys x and q; A4 (s1) had only x and buys p after
    # the split, and so does B1 (s2).
    rows: list[tuple[str, str, int]] = []
    for o in ("A1", "A2", "A3"):
        rows += [(o, "x", 0), (o, "p", 1)]
    for o in ("B1", "B2", "B3", "B4"):
        rows += [(o, "x", 0), (o, "q", 1)]
    rows += [("A4", "x", 0), ("A4", "p", 40), ("A4", "x", 41), ("B1", "p", 40)]  # B1 buys p too
    organizations = orgs({**{f"A{i}": "s1" for i in range(1, 5)}, **{f"B{i}": "s2" for i in range(1, 5)}})
    result = evaluate(lines(rows), organizations, dt.date(2024, 2, 1), k=2)
    # Evaluated: A4 (new: p) and B1 (new: p); the x bought again by A4 is not new.
    assert result.n_orgs == 2 and result.n_train_orgs == 8 and result.new_items_per_org == 1.0
    # B1 bought x and q: its only candidate is p, a hit for every method. A4: global popularity
    # ranks q first (a miss at 1, a hit at 2), its segment and the model rank p first.
    assert result.hit("global_popularity", 1) == 0.5
    assert result.hit("segment_popularity", 1) == 1.0
    assert result.hit("model", 1) == 1.0
    g = result.metrics["global_popularity"]
    assert g.hit[2] == 1.0 and g.precision == pytest.approx(1 / 2) and g.recall == 1.0
    assert result.as_dict()["metrics"]["model"]["hit"]["1"] == 1.0


def test_protocol_by_hand_global_rank() -> None:
    rows = [("A1", "x", 0), ("A1", "p", 1), ("B1", "x", 0), ("B1", "q", 1), ("B2", "q", 1), ("C", "x", 0),
            ("C", "p", 40)]
    result = evaluate(lines(rows), orgs({"A1": "s1", "C": "s1", "B1": "s2", "B2": "s2"}), dt.date(2024, 2, 1), k=1)
    assert result.n_orgs == 1  # C
    assert result.hit("global_popularity", 1) == 0.0  # q (2 buyers) before p (1)
    assert result.hit("segment_popularity", 1) == 1.0  # p in s1
    assert result.hit("model", 1) == 1.0


@pytest.mark.parametrize("seed", [0, 3])
def test_targets_met_on_the_co_purchase_world(seed: int) -> None:
    world = simulate(CoPurchaseConfig(seed=seed))
    sku = evaluate(world.order_lines, world.organizations, SPLIT, k=5, level="sku")
    assert sku.n_orgs > 1000
    assert sku.hit("model", 5) >= 1.5 * sku.hit("global_popularity", 5)
    assert sku.hit("model", 5) > sku.hit("segment_popularity", 5)
    assert sku.meets_target
    cat = evaluate(world.order_lines, world.organizations, SPLIT, k=5, level="category")
    for at in (1, 3):
        assert cat.hit("model", at) > cat.hit("global_popularity", at)
        assert cat.hit("model", at) > cat.hit("segment_popularity", at)
    assert cat.meets_target
    # Precision and recall move with the hit rate.
    m, g = sku.metrics["model"], sku.metrics["global_popularity"]
    assert m.precision > g.precision and m.recall > g.recall


def test_program_generator_has_no_co_purchase_structure_beyond_category_affinity() -> None:
    program = generate(SynthConfig(seed=7, organizations=1000, months=24))
    fr = frames.from_synthetic(program)
    result = evaluate(fr.order_lines, fr.organizations, SPLIT, k=5, level="sku")
    model, glob, seg = (result.hit(m, 5) for m in ("model", "global_popularity", "segment_popularity"))
    assert model > glob and model > seg  # the within-category signal is found...
    assert model < 1.5 * glob  # ...but 1.5 × is not reachable here:
    # an oracle that ranks unbought products by the true affinity of the organization.
    split = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    before = build_matrix(fr.order_lines.filter(pl.col("occurred_at") < split), level="sku")
    after = build_matrix(fr.order_lines.filter(pl.col("occurred_at") >= split), level="sku", items=before.items)
    bought = before.binary().toarray() > 0
    later = {o: after.binary().toarray()[i] > 0 for i, o in enumerate(after.orgs)}
    column = before.item_index()
    hits = evaluated = 0
    for row, org in enumerate(before.orgs):
        if org not in later:
            continue
        new = later[org] & ~bought[row]
        if not new.any():
            continue
        affinity = program.latent[org].category_affinity
        truth = np.full(len(before.items), -1.0)
        for product, c, share in zip(PRODUCTS, PRODUCT_CATEGORY_INDEX, PRODUCT_SHARE_IN_CATEGORY, strict=True):
            if product.sku in column:
                truth[column[product.sku]] = affinity[c] * share
        truth[bought[row]] = -np.inf
        top = np.argsort(-truth, kind="stable")[:5]
        hits += bool(new[top].any())
        evaluated += 1
    assert evaluated == result.n_orgs
    oracle = hits / evaluated
    assert model < oracle < 1.4 * glob
    assert len(CATEGORIES) == 8


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        evaluate(lines([("A", "x")]), None, SPLIT, k=0)
