"""Holdout evaluation of the cross-sell recommender against two popularity baselines.

Protocol: fit on the order lines before ``split_date``; for every organization that bought before
the split, the *new items* are those it buys on or after the split and never bought before. Each
method ranks the items the organization had not bought (the same exclusion for all three), and is
scored on its top-k:

- hit@k: share of evaluated organizations with at least one new item in the top k;
- precision@k: new items in the top k / k, averaged over organizations;
- recall@k: new items in the top k / number of new items, averaged over organizations.

Baselines, measured in the same run on the same organizations: **global popularity** (items
ranked by how many organizations bought them before the split) and **segment popularity** (the
same within the organization's segment, ties broken by global popularity).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from .cross_sell import RecommendConfig, fit, top_k
from .matrix import FloatArray, IntArray, Level, build_matrix

METHODS = ("model", "global_popularity", "segment_popularity")
SKU_RATIO_TARGET = 1.5  # hit@5 of the model over global popularity, product level


@dataclass(frozen=True)
class Metrics:
    """Ranking quality of one method: hit rate at several cut-offs, precision and recall at ``k``."""

    hit: dict[int, float]
    precision: float
    recall: float


@dataclass(frozen=True)
class Evaluation:
    """All numbers of one holdout run (see the module docstring for the protocol)."""

    level: Level
    k: int
    split_date: dt.datetime
    n_orgs: int  # evaluated: bought before the split and bought a new item after it
    n_train_orgs: int
    n_items: int
    new_items_per_org: float
    metrics: dict[str, Metrics] = field(default_factory=dict)

    def hit(self, method: str, at: int) -> float:
        return self.metrics[method].hit[at]

    def ratio(self, at: int, baseline: str = "global_popularity") -> float:
        """Model hit@``at`` over a baseline's (inf when the baseline scores 0 and the model does not)."""
        base = self.hit(baseline, at)
        model = self.hit("model", at)
        return model / base if base > 0 else (float("inf") if model > 0 else float("nan"))

    @property
    def meets_target(self) -> bool:
        """Product level: hit@5 ≥ 1.5 × global popularity and > segment popularity.
        Category level (few categories saturate hit@5): hit@1 and hit@3 above both baselines."""
        if self.level == "sku":
            at = min(5, self.k)
            return (self.hit("model", at) >= SKU_RATIO_TARGET * self.hit("global_popularity", at)
                    and self.hit("model", at) > self.hit("segment_popularity", at))
        return all(self.hit("model", at) > self.hit(base, at)
                   for at in (1, 3) for base in ("global_popularity", "segment_popularity"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level, "k": self.k, "split_date": self.split_date.isoformat(), "n_orgs": self.n_orgs,
            "n_train_orgs": self.n_train_orgs, "n_items": self.n_items,
            "new_items_per_org": self.new_items_per_org, "meets_target": self.meets_target,
            "metrics": {name: {"hit": {str(a): v for a, v in m.hit.items()}, "precision": m.precision,
                               "recall": m.recall} for name, m in self.metrics.items()},
        }


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _metrics(ranked: IntArray, truth: sp.csr_matrix, k: int, cutoffs: tuple[int, ...]) -> Metrics:
    """``ranked``: (orgs, ≥k) item indexes (-1 = none); ``truth``: binary new-item matrix, same rows."""
    valid = ranked >= 0
    safe = np.where(valid, ranked, 0)
    dense_truth = truth
    hits = np.zeros(ranked.shape, dtype=bool)
    for j in range(ranked.shape[1]):
        col = np.asarray(dense_truth[np.arange(ranked.shape[0]), safe[:, j]]).ravel() > 0
        hits[:, j] = col & valid[:, j]
    n_new = np.asarray(truth.sum(axis=1)).ravel()
    hit = {c: float(np.mean(hits[:, :c].any(axis=1))) if len(hits) else 0.0 for c in cutoffs}
    found = hits[:, :k].sum(axis=1)
    precision = float(np.mean(found / k)) if len(hits) else 0.0
    recall = float(np.mean(found / np.maximum(n_new, 1))) if len(hits) else 0.0
    return Metrics(hit, precision, recall)


def _rank(scores: FloatArray, excluded: FloatArray, k: int) -> IntArray:
    scores = scores.copy()
    scores[excluded > 0] = -np.inf
    idx, vals = top_k(scores, k)
    return np.where(np.isfinite(vals), idx, -1)


def evaluate(order_lines: pl.DataFrame, organizations: pl.DataFrame | None, split_date: dt.date | dt.datetime,
             k: int = 5, level: Level = "sku", config: RecommendConfig | None = None,
             end_date: dt.date | dt.datetime | None = None) -> Evaluation:
    """Holdout hit rate / precision / recall at ``k`` of the recommender and both baselines.

    ``order_lines`` and ``organizations`` as in ``frames.SCHEMAS``; lines before ``split_date``
    train, lines from it (up to ``end_date`` when given) test. ``config`` tunes the model (its
    ``level`` is overridden by ``level``; exclusion is always "anything bought before the split",
    the definition of a new item). hit@1, hit@3 and hit@k are always reported.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    split = _as_datetime(split_date)
    base = config or RecommendConfig()
    cfg = RecommendConfig(**{**base.__dict__, "level": level, "exclude_bought": True, "bought_min_orders": 1})
    train = order_lines.filter(pl.col("occurred_at") < split)
    test = order_lines.filter(pl.col("occurred_at") >= split)
    if end_date is not None:
        test = test.filter(pl.col("occurred_at") < _as_datetime(end_date))
    model = fit(train, organizations, cfg)
    matrix = model.target
    test_matrix = build_matrix(test.filter(pl.col("org").is_in(matrix.orgs)), None, level=level, items=matrix.items)
    # Align test rows with training rows.
    index = matrix.org_index()
    remap = np.array([index[o] for o in test_matrix.orgs], dtype=np.int64)
    coo = test_matrix.binary(1).tocoo()
    after = sp.csr_matrix((coo.data, (remap[coo.row], coo.col)), shape=matrix.shape)
    new = (after - after.multiply(model.bought)).tocsr()
    new.eliminate_zeros()
    rows = np.flatnonzero(matrix.buyer & (np.diff(new.indptr) > 0)).astype(np.int64)
    cutoffs = tuple(sorted({c for c in (1, 3, k) if c <= k} | {k}))
    ranked: dict[str, list[IntArray]] = {name: [] for name in METHODS}
    truth_parts: list[sp.csr_matrix] = []
    block_rows: list[IntArray] = []
    for block in model.blocks(rows):
        excluded = np.asarray(model.bought[block].todense())
        comp = model.components(block)
        ranked["model"].append(_rank(model.blend(comp), excluded, k))
        glob = np.broadcast_to(model.global_popularity, excluded.shape)
        ranked["global_popularity"].append(_rank(glob, excluded, k))
        seg = model.segment_raw[model.segment_codes[block]] + 1e-9 * model.global_popularity
        ranked["segment_popularity"].append(_rank(seg, excluded, k))
        truth_parts.append(new[block])
        block_rows.append(block)
    truth = sp.vstack(truth_parts).tocsr() if truth_parts else sp.csr_matrix((0, len(matrix.items)))
    metrics = {name: _metrics(np.vstack(parts) if parts else np.zeros((0, k), dtype=np.int64), truth, k, cutoffs)
               for name, parts in ranked.items()}
    n_new = float(np.asarray(new[rows].sum(axis=1)).mean()) if len(rows) else 0.0
    return Evaluation(level, k, split, len(rows), int(matrix.buyer.sum()), len(matrix.items), n_new, metrics)


