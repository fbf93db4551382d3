"""Hand-checkable cross-sell examples: scores, reasons, exclusion, ties."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from allegiance.analytics.recommend import OUTPUT_SCHEMA, RecommendConfig, fit, recommend, recommend_model, top_k

from ._frames import lines, orgs

# x: everyone; y: A, B, C; z: C only.
BASKETS = {"A": ["x", "y"], "B": ["x", "y"], "C": ["x", "y", "z"], "D": ["x"]}
CATEGORY = {"x": "printers", "y": "toner", "z": "paper", "w": "service"}


def _lines(baskets: dict[str, list[str]] = BASKETS) -> pl.DataFrame:
    return lines([(o, s) for o, items in baskets.items() for s in items], CATEGORY)


def _only(item: float = 0.0, peer: float = 0.0, pop: float = 0.0, **kw: object) -> RecommendConfig:
    return RecommendConfig(item_weight=item, peer_weight=peer, popularity_weight=pop, **kw)  # type: ignore[arg-type]


def test_item_item_scores_and_reason_by_hand() -> None:
    # shrink=0: S_ij = C_ij / sqrt(c_i c_j); c_x=4, c_y=3, c_z=1; C_xy=3, C_xz=C_yz=1.
    out = recommend(_lines(), orgs(dict.fromkeys(BASKETS, "retail")), k=5, config=_only(item=1, shrink=0.0))
    d = out.filter(pl.col("org") == "D")
    assert d["item"].to_list() == ["y", "z"]
    assert d["score"].to_list() == pytest.approx([3 / math.sqrt(12), 1 / 2])
    assert d["reason_kind"].to_list() == ["bought_with", "bought_with"]
    assert d["anchor"].to_list() == ["x", "x"]
    assert d["share"].to_list() == pytest.approx([3 / 4, 1 / 4])
    assert d["reason"][0] == ("often bought with x (printers), which you buy: 75% of companies that buy it "
                              "also buy y (toner)")
    a = out.filter(pl.col("org") == "A")
    # A buys x and y: the mean similarity of z to them; the anchor is the more similar one (y).
    assert a["item"].to_list() == ["z"]
    assert a["score"][0] == pytest.approx((1 / 2 + 1 / math.sqrt(3)) / 2)
    assert a["anchor"][0] == "y"
    assert a["share"][0] == pytest.approx(1 / 3)
    # C already buys everything: nothing to recommend.
    assert out.filter(pl.col("org") == "C").height == 0
    assert out.schema == pl.Schema(OUTPUT_SCHEMA)


def test_peer_scores_and_reason_by_hand() -> None:
    # D = {x}: cosine 1/sqrt(2) to A and B, 1/sqrt(3) to C. Three neighbours: y is bought by all of
    # them, z by C only: weighted share (1/sqrt 3) / (2/sqrt 2 + 1/sqrt 3), plain share 1/3.
    organizations = orgs(dict.fromkeys(BASKETS, "retail"))
    out = recommend(_lines(), organizations, config=_only(peer=1, neighbours=3))
    d = out.filter(pl.col("org") == "D")
    w = [1 / math.sqrt(2), 1 / math.sqrt(2), 1 / math.sqrt(3)]
    assert d["item"].to_list() == ["y", "z"]
    assert d["score"].to_list() == pytest.approx([1.0, w[2] / sum(w)])
    assert d["share"].to_list() == pytest.approx([1.0, 1 / 3])
    assert d["reason"][0] == "companies like yours in retail also buy y (toner): 100% of similar companies do"
    assert d["reason"][1] == "companies like yours in retail also buy z (paper): 33% of similar companies do"
    # Two neighbours: A and B (the closest); neither buys z, so z has no evidence and is dropped.
    two = recommend(_lines(), organizations, config=_only(peer=1, neighbours=2)).filter(pl.col("org") == "D")
    assert two["item"].to_list() == ["y"]


def test_neighbours_come_from_the_same_segment() -> None:
    baskets = {"A": ["x", "y"], "B": ["x", "z"], "C": ["x", "z"], "D": ["x"]}
    segments = {"A": "edu", "B": "retail", "C": "retail", "D": "edu"}
    out = recommend(_lines(baskets), orgs(segments), config=_only(peer=1, neighbours=5))
    # D's only peer in "edu" is A, although B and C are as similar and more numerous.
    assert out.filter(pl.col("org") == "D")["item"].to_list() == ["y"]


def test_segment_popularity_and_cold_start() -> None:
    baskets = {"A": ["x", "y"], "B": ["x", "y"], "C": ["x", "z"], "E": ["z"]}
    segments = {"A": "edu", "B": "edu", "C": "edu", "E": "retail", "NEW": "edu", "LOST": None}
    out = recommend(_lines(baskets), orgs(segments), config=_only(pop=1, prior_strength=0.0))
    new = out.filter(pl.col("org") == "NEW")  # no purchases yet: segment popularity only
    assert new["item"].to_list() == ["x", "y", "z"]
    assert new["score"].to_list() == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert new["reason"][1] == "popular among edu companies: 67% of them buy y (toner)"
    lost = out.filter(pl.col("org") == "LOST")  # no segment, no buyers in it: nothing to say
    assert lost.height == 0
    # With the global prior, a segment without buyers falls back to global popularity.
    prior = recommend(_lines(baskets), orgs(segments), config=_only(pop=1, prior_strength=10.0))
    lost = prior.filter(pl.col("org") == "LOST")
    assert lost["item"].to_list() == ["x", "y", "z"]  # 3/4, 2/4, 2/4: the tie goes to the first name
    assert lost["score"].to_list() == pytest.approx([3 / 4, 2 / 4, 2 / 4])
    assert lost["reason"][0] == "popular among companies: 75% of them buy x (printers)"


def test_blend_and_reason_follow_the_largest_contribution() -> None:
    organizations = orgs(dict.fromkeys(BASKETS, "retail"))
    cfg = RecommendConfig(item_weight=1.0, peer_weight=1.0, popularity_weight=0.25, shrink=0.0, neighbours=3,
                          prior_strength=0.0)
    model = fit(_lines(), organizations, cfg)
    out = recommend_model(model)
    d = out.filter(pl.col("org") == "D")
    w = [1 / math.sqrt(2), 1 / math.sqrt(2), 1 / math.sqrt(3)]
    item = {"y": 3 / math.sqrt(12), "z": 0.5}
    peers = {"y": 1.0, "z": w[2] / sum(w)}
    pop = {"y": 3 / 4, "z": 1 / 4}
    assert d["score"].to_list() == pytest.approx([item[i] + peers[i] + 0.25 * pop[i] for i in ("y", "z")])
    assert d["reason_kind"].to_list() == ["peers", "bought_with"]  # y: 1.0 > 0.87; z: 0.5 > 0.29


def test_exclusion_is_configurable_and_rare_purchases_stay_candidates() -> None:
    organizations = orgs(dict.fromkeys(BASKETS, "retail"))
    keep_bought = recommend(_lines(), organizations, config=RecommendConfig(exclude_bought=False), k=10)
    assert set(keep_bought.filter(pl.col("org") == "C")["item"]) == {"x", "y", "z"}
    # D bought x in three orders and y once: with bought_min_orders=2, y is "bought rarely".
    rows = [(o, s) for o, items in BASKETS.items() for s in items] + [("D", "x", 5), ("D", "x", 9), ("D", "y", 9)]
    out = recommend(lines(rows, CATEGORY), organizations, config=_only(item=1, shrink=0.0, bought_min_orders=2))
    d = out.filter(pl.col("org") == "D")
    assert "x" not in d["item"].to_list()
    assert "y" in d["item"].to_list()
    assert d.filter(pl.col("item") == "y")["reason"][0].endswith("(you bought it in only 1 order)")


def test_ties_are_broken_by_item_name_whatever_the_input_order() -> None:
    # P buys a; Q buys a and c; R buys a and b: b and c are symmetric for P.
    rows = [("Q", "c"), ("Q", "a"), ("R", "b"), ("R", "a"), ("P", "a")]
    organizations = orgs({"P": "s", "Q": "s", "R": "s"})
    for order in (rows, rows[::-1]):
        out = recommend(lines(order), organizations, k=1)
        assert out.filter(pl.col("org") == "P")["item"].to_list() == ["b"]
        both = recommend(lines(order), organizations, k=2).filter(pl.col("org") == "P")
        assert both["item"].to_list() == ["b", "c"]
        assert both["score"][0] == both["score"][1]


def test_top_k_ties_across_the_cut_and_exclusions() -> None:
    scores = np.array([[0.5, 1.0, 1.0, 1.0], [1.0, 2.0, 0.0, 3.0], [-np.inf, 1.0, -np.inf, -np.inf]])
    idx, vals = top_k(scores, 2)
    assert idx.tolist() == [[1, 2], [3, 1], [1, 0]]
    assert vals[2, 1] == -np.inf
    assert top_k(scores, 9)[0].shape == (3, 4)


def test_k_orgs_and_category_level() -> None:
    organizations = orgs(dict.fromkeys(BASKETS, "retail"))
    out = recommend(_lines(), organizations, k=1, orgs=["D", "A"])
    assert out["org"].to_list() == ["A", "D"] and out["rank"].to_list() == [1, 1]
    with pytest.raises(KeyError):
        recommend(_lines(), organizations, orgs=["nobody"])
    cats = recommend(_lines(), organizations, level="category", config=_only(item=1, shrink=0.0))
    d = cats.filter(pl.col("org") == "D")
    # At category level the history stays at product level: D's printer x leads to toner (y).
    assert d["item"].to_list() == ["toner", "paper"]
    assert d["reason"][0] == ("often bought with x (printers), which you buy: 75% of companies that buy it "
                              "also buy toner")
    with pytest.raises(ValueError, match="level"):
        RecommendConfig(level="brand")  # type: ignore[arg-type]
