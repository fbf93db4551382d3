"""Hypothesis invariants of the recommender on random small purchase histories."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from allegiance.analytics.recommend import RecommendConfig, build_matrix, recommend, top_k

from ._frames import lines, orgs

ORGS = [f"O{i}" for i in range(8)]
ITEMS = [f"i{i}" for i in range(7)]
CATS = {item: f"c{int(item[1:]) % 3}" for item in ITEMS}

purchases = st.lists(st.tuples(st.sampled_from(ORGS), st.sampled_from(ITEMS), st.integers(0, 3)),
                     min_size=1, max_size=40)
segments = st.dictionaries(st.sampled_from(ORGS), st.sampled_from(["s1", "s2", None]), max_size=8)
weights = st.tuples(*(st.sampled_from([0.0, 0.25, 1.0, 3.0]) for _ in range(3))).filter(lambda w: sum(w) > 0)


@settings(max_examples=60, deadline=None)
@given(purchases, segments, weights, st.integers(1, 8), st.sampled_from(["sku", "category"]),
       st.integers(1, 3), st.sampled_from(["binary", "log_value"]), st.integers(1, 5))
def test_recommendations_are_finite_new_and_at_most_k(
        rows: list[tuple[str, str, int]], segs: dict[str, str | None], w: tuple[float, float, float], k: int,
        level: str, min_orders: int, weighting: str, neighbours: int) -> None:
    frame = lines(rows, CATS)
    cfg = RecommendConfig(item_weight=w[0], peer_weight=w[1], popularity_weight=w[2], bought_min_orders=min_orders,
                          weighting=weighting, neighbours=neighbours, chunk=3)  # type: ignore[arg-type]
    out = recommend(frame, orgs(segs) if segs else None, k=k, level=level, config=cfg)  # type: ignore[arg-type]
    assert out["score"].is_finite().all() and (out["score"] > 0).all()
    assert out["share"].is_between(0.0, 1.0).all()
    assert out["reason"].str.len_chars().min() or out.height == 0
    per_org = out.group_by("org").agg(pl.col("rank"), pl.col("score"), pl.len().alias("n"))
    for ranks, scores, n in zip(per_org["rank"], per_org["score"], per_org["n"], strict=True):
        assert n <= k
        assert list(ranks) == list(range(1, n + 1))
        assert all(a >= b for a, b in itertools.pairwise(scores))
    # Excluded: bought in at least bought_min_orders distinct orders.
    key = "sku" if level == "sku" else "category"
    matrix = build_matrix(frame, level=level)
    counts = matrix.orders.toarray()
    index, columns = matrix.org_index(), matrix.item_index()
    for org, item in zip(out["org"], out["item"], strict=True):
        if org in index:
            assert counts[index[org], columns[item]] < min_orders, (org, item, key)
    # The same input gives the same output.
    again = recommend(frame, orgs(segs) if segs else None, k=k, level=level, config=cfg)  # type: ignore[arg-type]
    assert again.equals(out)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from([-np.inf, 0.0, 0.5, 1.0, 2.0]), min_size=6, max_size=6),
                min_size=1, max_size=6), st.integers(1, 8))
def test_top_k_matches_a_stable_sort(rows: list[list[float]], k: int) -> None:
    scores = np.array(rows)
    idx, vals = top_k(scores, k)
    expected = [sorted(range(6), key=lambda j, r=r: (-r[j], j))[:k] for r in rows]  # type: ignore[misc]
    assert idx.tolist() == expected
    assert np.array_equal(vals, np.take_along_axis(scores, idx, axis=1))
