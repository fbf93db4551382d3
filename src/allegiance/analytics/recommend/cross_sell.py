"""Cross-sell: the next products (or categories) an organization is likely to buy, with a reason.

Three signals, each an estimate on a 0..1 scale of "organizations like this one buy item j", are
blended linearly (weights in :class:`RecommendConfig`):

- **bought with** (item-item): cosine similarity between item columns of the org × item matrix,
  ``S_ij = C_ij / (sqrt(c_i c_j) + shrink)`` with ``C = XᵀX`` the co-purchase counts and ``c`` the
  item buyer counts; an organization's score for j is the mean of ``S_ij`` over the items i it buys.
- **peers** (user-based kNN): the organization's ``neighbours`` most similar organizations of its
  own segment (cosine over rows), and the similarity-weighted share of them that buy j.
- **popularity in segment**: the share of the segment's buyers that buy j, shrunk towards the
  global share with ``prior_strength`` pseudo-organizations.

Items already bought are excluded (configurable; with ``bought_min_orders > 1`` items bought only
rarely stay candidates). The reason shown is the signal that contributed most to the score.

Everything is sparse or chunked: memory is O(nnz + m² + chunk × (m + pool)), so 100,000
organizations × 1,000 items run in bounded memory (see ``bench/bench_recommend.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from .matrix import NO_SEGMENT, FloatArray, IntArray, Level, PurchaseMatrix, build_matrix

Similarity = Literal["cosine", "conditional"]
Weighting = Literal["binary", "log_value"]
REASON_KINDS = ("peers", "bought_with", "popular")

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), "rank": pl.Int32(), "item": pl.String(), "category": pl.String(),
    "score": pl.Float64(), "reason_kind": pl.String(), "reason": pl.String(), "anchor": pl.String(),
    "share": pl.Float64(), "segment": pl.String(),
}


@dataclass(frozen=True)
class RecommendConfig:
    """How recommendations are scored. The defaults are the ones measured in docs/analytics.md."""

    level: Level = "sku"
    item_weight: float = 1.0  # bought-with (item-item cosine)
    peer_weight: float = 1.0  # similar organizations in the same segment
    popularity_weight: float = 0.25  # popularity within segment (smoothed to global)
    neighbours: int = 30
    max_pool: int = 5000  # candidate neighbours per segment (a seeded sample beyond that)
    shrink: float = 2.0  # damps cosine similarities resting on few co-buyers
    prior_strength: float = 10.0  # pseudo-organizations of global popularity in each segment's share
    weighting: Weighting = "binary"  # what a cell of the matrix holds for the similarities
    exclude_bought: bool = True
    bought_min_orders: int = 1  # bought in fewer orders than this = "buys rarely", stays a candidate
    chunk: int = 2048  # organizations scored at once
    seed: int = 0

    def __post_init__(self) -> None:
        if self.level not in ("sku", "category"):
            raise ValueError(f"level must be 'sku' or 'category', not {self.level!r}")
        if min(self.item_weight, self.peer_weight, self.popularity_weight) < 0:
            raise ValueError("weights must be >= 0")
        if self.item_weight + self.peer_weight + self.popularity_weight <= 0:
            raise ValueError("at least one weight must be positive")
        if self.neighbours < 1 or self.max_pool < 2 or self.chunk < 1 or self.bought_min_orders < 1:
            raise ValueError("neighbours, chunk and bought_min_orders must be >= 1, max_pool >= 2")
        if self.weighting not in ("binary", "log_value"):
            raise ValueError(f"weighting must be 'binary' or 'log_value', not {self.weighting!r}")


@dataclass
class Components:
    """The three signals for a block of organizations (rows) × all items, before weighting."""

    rows: IntArray
    item: FloatArray
    peers: FloatArray
    peers_share: FloatArray  # unweighted share of the neighbours buying the item (for the reason)
    popularity: FloatArray


def _row_normalize(x: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inv) @ x)


@dataclass
class CrossSellModel:
    """A fitted recommender: the statistics of one purchase history. Build it with :func:`fit`.

    ``history`` is always the product-level matrix (what an organization bought, at the finest
    grain: it tells neighbours and co-purchases apart best); ``target`` is the matrix at the level
    recommended (the same object at product level). Their rows are the same organizations.
    """

    config: RecommendConfig
    history: PurchaseMatrix
    target: PurchaseMatrix
    bought: sp.csr_matrix  # target level, binary, >= 1 order
    history_bought: sp.csr_matrix  # product level, binary
    excluded: sp.csr_matrix | None  # target level, >= bought_min_orders orders (None: nothing excluded)
    history_buyers: FloatArray  # c_i: organizations buying history item i
    co_counts: FloatArray  # C_ij: organizations buying history item i and target item j (m_h × m_t)
    similarity: FloatArray  # S_ij (m_h × m_t), 0 where history item i is (or lies in) target item j
    segment_codes: IntArray
    segment_names: list[str]
    segment_popularity: FloatArray  # G × m_t, smoothed share of the segment's buyers
    segment_raw: FloatArray  # G × m_t, plain share (0 for a segment without buyers)
    global_popularity: FloatArray  # m_t
    segment_buyers: FloatArray  # G: organizations with purchases per segment
    pools: dict[int, IntArray]
    normalized: sp.csr_matrix  # history rows, L2-normalized (cosine between organizations)

    @property
    def matrix(self) -> PurchaseMatrix:
        return self.target

    def components(self, rows: IntArray) -> Components:
        """The three signals for ``rows`` (row indexes, any mix of segments), each rows × target items."""
        cfg = self.config
        m = len(self.target.items)
        x = self.history_bought[rows]
        counts = np.asarray(x.sum(axis=1)).ravel()
        inv = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        item = np.asarray(x @ self.similarity) * inv[:, None]
        popularity = self.segment_popularity[self.segment_codes[rows]]
        peers = np.zeros((len(rows), m))
        share = np.zeros((len(rows), m))
        if cfg.peer_weight > 0:
            codes = self.segment_codes[rows]
            for g in np.unique(codes):
                sel = np.flatnonzero(codes == g)
                peers[sel], share[sel] = self._peers(rows[sel], int(g))
        return Components(rows, item, peers, share, popularity)

    def _peers(self, rows: IntArray, g: int) -> tuple[FloatArray, FloatArray]:
        m = len(self.target.items)
        pool = self.pools.get(g, np.zeros(0, dtype=np.int64))
        if len(pool) < 2:
            return np.zeros((len(rows), m)), np.zeros((len(rows), m))
        k = min(self.config.neighbours, len(pool) - 1)
        dense_pool = self.normalized[pool].toarray().astype(np.float32)
        sims = np.asarray(self.normalized[rows].astype(np.float32) @ dense_pool.T, dtype=np.float32)
        position = np.minimum(np.searchsorted(pool, rows), len(pool) - 1)
        own = np.flatnonzero(pool[position] == rows)
        sims[own, position[own]] = -np.inf  # an organization is not its own neighbour
        # On the negated copy: introselect with kth near the end is ~10× slower on these many-zero rows.
        nbr = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.maximum(np.take_along_axis(sims, nbr, axis=1), 0.0).astype(np.float64)
        indptr = np.arange(0, len(rows) * k + 1, k)
        pool_bought = self.bought[pool]
        weighted = sp.csr_matrix((w.ravel(), nbr.ravel(), indptr), shape=(len(rows), len(pool)))
        ones = sp.csr_matrix((np.ones(w.size), nbr.ravel(), indptr), shape=(len(rows), len(pool)))
        total = w.sum(axis=1)
        inv = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
        peers = np.asarray((weighted @ pool_bought).todense()) * inv[:, None]
        share = np.asarray((ones @ pool_bought).todense()) / k
        share[total <= 0] = 0.0
        return peers, share

    def blend(self, comp: Components) -> FloatArray:
        """Weighted sum of the signals, rounded to 12 decimals so that equal evidence ties exactly."""
        cfg = self.config
        score = cfg.item_weight * comp.item + cfg.peer_weight * comp.peers + cfg.popularity_weight * comp.popularity
        return np.round(score, 12)

    def exclusion_mask(self, rows: IntArray) -> FloatArray | None:
        if self.excluded is None:
            return None
        return np.asarray(self.excluded[rows].todense(), dtype=np.float64)

    def blocks(self, rows: IntArray | None = None) -> Iterator[IntArray]:
        """Row blocks of at most ``chunk`` organizations of one segment each (sorted, deterministic)."""
        rows = np.arange(len(self.target.orgs)) if rows is None else np.asarray(rows, dtype=np.int64)
        rows = rows[np.lexsort((rows, self.segment_codes[rows]))]
        codes = self.segment_codes[rows]
        for g in np.unique(codes):
            seg_rows = rows[codes == g]
            for start in range(0, len(seg_rows), self.config.chunk):
                yield seg_rows[start:start + self.config.chunk]


def _history_input(history: PurchaseMatrix, bought: sp.csr_matrix, weighting: Weighting) -> sp.csr_matrix:
    if weighting == "binary":
        return bought
    x = history.value.copy()
    x.data = np.log1p(np.maximum(x.data, 0.0) / 100.0)
    return sp.csr_matrix(x.multiply(bought))


def fit(order_lines: pl.DataFrame, organizations: pl.DataFrame | None = None,
        config: RecommendConfig | None = None) -> CrossSellModel:
    """Fit the recommender on ``order_lines`` (and ``organizations`` for segments).

    Frames as in ``frames.SCHEMAS``. Organizations of ``organizations`` without order lines get a
    row too (segment popularity only); shares and counts are over organizations with lines.
    """
    cfg = config or RecommendConfig()
    history = build_matrix(order_lines, organizations, level="sku")
    target = history if cfg.level == "sku" else build_matrix(order_lines, organizations, level=cfg.level)
    h_bought = history.binary(1)
    bought = h_bought if target is history else target.binary(1)
    n, m = target.shape
    x = _history_input(history, h_bought, cfg.weighting)
    y = x if target is history else bought
    history_buyers = np.asarray(h_bought.sum(axis=0), dtype=np.float64).ravel()
    co = np.asarray((h_bought.T @ bought).todense(), dtype=np.float64)
    xy = np.asarray((x.T @ y).todense(), dtype=np.float64)
    x_norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    y_norm = x_norm if target is history else np.sqrt(np.asarray(y.multiply(y).sum(axis=0)).ravel())
    outer = np.outer(x_norm, y_norm)
    similarity = np.divide(xy, outer, out=np.zeros_like(xy), where=outer > 0) * (co / (co + cfg.shrink + 1e-300))
    if target is history:
        np.fill_diagonal(similarity, 0.0)
    else:  # a product says nothing about buying its own category
        column = {c: j for j, c in enumerate(target.items)}
        own = np.array([column.get(c, -1) for c in history.item_category], dtype=np.int64)
        has = np.flatnonzero(own >= 0)
        similarity[has, own[has]] = 0.0

    names = sorted(set(target.segment))
    code_of = {s: i for i, s in enumerate(names)}
    codes = np.array([code_of[s] for s in target.segment], dtype=np.int64)
    buyer = target.buyer
    glob = np.asarray(bought.sum(axis=0), dtype=np.float64).ravel() / max(int(buyer.sum()), 1)
    indicator = sp.csr_matrix((buyer.astype(np.float64), (codes, np.arange(n))), shape=(len(names), n))
    seg_counts = np.asarray((indicator @ bought).todense(), dtype=np.float64).reshape(len(names), m)
    seg_n = np.asarray(indicator.sum(axis=1), dtype=np.float64).ravel()
    denominator = np.broadcast_to(seg_n[:, None] + cfg.prior_strength, seg_counts.shape)
    smoothed = np.divide(seg_counts + cfg.prior_strength * glob, denominator, out=np.zeros_like(seg_counts),
                         where=denominator > 0)
    raw = np.divide(seg_counts, seg_n[:, None], out=np.zeros_like(seg_counts), where=seg_n[:, None] > 0)

    rng = np.random.default_rng(cfg.seed)
    pools: dict[int, IntArray] = {}
    for g in range(len(names)):
        members = np.flatnonzero((codes == g) & buyer)
        if len(members) > cfg.max_pool:
            members = np.sort(rng.choice(members, cfg.max_pool, replace=False))
        pools[g] = members.astype(np.int64)
    excluded = target.binary(cfg.bought_min_orders) if cfg.exclude_bought else None
    return CrossSellModel(cfg, history, target, bought, h_bought, excluded, history_buyers, co, similarity, codes,
                          names, smoothed, raw, glob, seg_n, pools, _row_normalize(x))


def top_k(scores: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """Per row, the ``k`` highest scores and their column indexes; ties go to the lower index.

    ``-inf`` marks an excluded cell; it is returned only when a row has fewer than ``k`` others.
    """
    n, m = scores.shape
    k = min(k, m)
    if k <= 0 or n == 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0))
    if k == m:
        idx = np.argsort(-scores, axis=1, kind="stable")
        return idx, np.take_along_axis(scores, idx, axis=1)
    part = np.argpartition(-scores, k, axis=1)[:, :k + 1]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    tied = np.flatnonzero(vals[:, k - 1] == vals[:, k])
    idx = part[:, :k].copy()
    if len(tied):
        idx[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :k]
    return idx.astype(np.int64), np.take_along_axis(scores, idx, axis=1)


def _anchor(model: CrossSellModel, rows: IntArray, cols: IntArray) -> tuple[IntArray, FloatArray]:
    """For (org, recommended item) pairs: the product the org buys that is most similar to the item
    (-1 when none is), and the share of that product's buyers who also buy the item."""
    dense = np.asarray(model.history_bought[rows].todense(), dtype=np.float64)
    anchors = np.full(cols.shape, -1, dtype=np.int64)
    conf = np.zeros(cols.shape)
    for r in range(cols.shape[1]):
        c = cols[:, r]
        sim = dense * model.similarity[:, c].T  # (rows, products): similarity of each bought product to c
        best = np.argmax(sim, axis=1)  # ties: the lowest product index
        ok = sim[np.arange(len(c)), best] > 0
        anchors[ok, r] = best[ok]
        conf[ok, r] = model.co_counts[best[ok], c[ok]] / np.maximum(model.history_buyers[best[ok]], 1.0)
    return anchors, conf


def recommend_model(model: CrossSellModel, *, k: int = 5, orgs: Sequence[str] | None = None,
                    reasons: bool = True) -> pl.DataFrame:
    """Top-``k`` recommendations per organization from a fitted model (see :func:`recommend`).

    ``orgs`` restricts the output to these organizations (KeyError for one the model has never
    seen); ``reasons=False`` skips the reason columns (null), e.g. for evaluation at scale.
    """
    mat = model.matrix
    index = mat.org_index()
    if orgs is None:
        rows = np.arange(len(mat.orgs), dtype=np.int64)
    else:
        unknown = [o for o in orgs if o not in index]
        if unknown:
            raise KeyError(f"organizations not in the model: {unknown[:5]}")
        rows = np.array(sorted({index[o] for o in orgs}), dtype=np.int64)
    cfg = model.config
    parts: list[dict[str, np.ndarray]] = []
    for block in model.blocks(rows):
        comp = model.components(block)
        score = model.blend(comp)
        mask = model.exclusion_mask(block)
        if mask is not None:
            score[mask > 0] = -np.inf
        idx, vals = top_k(score, k)
        keep = np.isfinite(vals) & (vals > 0)
        rr = np.repeat(np.arange(len(block))[:, None], idx.shape[1], axis=1)
        part: dict[str, np.ndarray] = {"row": block[rr[keep]], "col": idx[keep], "score": vals[keep],
                                       "rank": np.tile(np.arange(1, idx.shape[1] + 1), (len(block), 1))[keep]}
        if reasons:
            contributions = np.stack([cfg.peer_weight * np.take_along_axis(comp.peers, idx, 1),
                                      cfg.item_weight * np.take_along_axis(comp.item, idx, 1),
                                      cfg.popularity_weight * np.take_along_axis(comp.popularity, idx, 1)])
            kind = np.argmax(contributions, axis=0)
            anchors, conf = _anchor(model, block, idx)
            peer_share = np.take_along_axis(comp.peers_share, idx, 1)
            codes = model.segment_codes[block]
            seg_share = np.where((model.segment_buyers[codes] > 0)[:, None],
                                 model.segment_raw[codes][rr, idx], model.global_popularity[idx])
            share = np.where(kind == 0, peer_share, np.where(kind == 1, conf, seg_share))
            kind = np.where((kind == 1) & (anchors < 0), 2, kind)
            share = np.where(kind == 2, seg_share, share)
            times = np.asarray(mat.orders[block].todense())[rr, idx]
            part.update(kind=kind[keep], anchor=anchors[keep], share=share[keep], times=times[keep])
        parts.append(part)
    if not parts:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    cat = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    items = np.array(mat.items, dtype=object)
    categories = np.array(mat.item_category, dtype=object)
    org_arr = np.array(mat.orgs, dtype=object)
    seg_arr = np.array(mat.segment, dtype=object)
    frame = pl.DataFrame({
        "org": org_arr[cat["row"]].tolist(), "rank": cat["rank"].astype(np.int32),
        "item": items[cat["col"]].tolist(), "category": categories[cat["col"]].tolist(),
        "score": cat["score"].astype(np.float64), "segment": seg_arr[cat["row"]].tolist(),
    }, schema_overrides={"org": pl.String(), "item": pl.String(), "category": pl.String(),
                         "segment": pl.String()})
    if reasons:
        products = np.array([*model.history.items, None], dtype=object)
        anchor = np.where(cat["kind"] == 1, cat["anchor"], -1)
        frame = frame.with_columns(
            reason_kind=pl.Series(np.array(REASON_KINDS, dtype=object)[cat["kind"]].tolist(), dtype=pl.String()),
            anchor=pl.Series(products[anchor].tolist(), dtype=pl.String()),
            share=pl.Series(cat["share"].astype(np.float64)),
            times=pl.Series(cat["times"].astype(np.int64)),
        )
        anchor_category = dict(zip(model.history.items, model.history.item_category, strict=True))
        frame = _with_reason(frame, mat.level, anchor_category)
    else:
        frame = frame.with_columns(reason_kind=pl.lit(None, pl.String()), reason=pl.lit(None, pl.String()),
                                   anchor=pl.lit(None, pl.String()), share=pl.lit(None, pl.Float64()))
    return frame.select(list(OUTPUT_SCHEMA)).sort("org", "rank")


def _with_reason(frame: pl.DataFrame, level: Level, anchor_category: dict[str, str]) -> pl.DataFrame:
    pct = (pl.col("share") * 100).round(0).cast(pl.Int64).cast(pl.String)
    item = pl.format("{} ({})", pl.col("item"), pl.col("category")) if level == "sku" else pl.col("item")
    anchor = pl.format("{} ({})", pl.col("anchor"),
                       pl.col("anchor").replace_strict(anchor_category, default="", return_dtype=pl.String()))
    known = pl.col("segment") != NO_SEGMENT
    like = pl.when(known).then(pl.format("companies like yours in {}", pl.col("segment"))) \
        .otherwise(pl.lit("companies like yours"))
    where = pl.when(known).then(pl.format("{} companies", pl.col("segment"))).otherwise(pl.lit("companies"))
    reason = (
        pl.when(pl.col("reason_kind") == "peers")
        .then(pl.format("{} also buy {}: {}% of similar companies do", like, item, pct))
        .when(pl.col("reason_kind") == "bought_with")
        .then(pl.format("often bought with {}, which you buy: {}% of companies that buy it also buy {}",
                        anchor, pct, item))
        .otherwise(pl.format("popular among {}: {}% of them buy {}", where, pct, item))
    )
    rarely = pl.when(pl.col("times") > 0).then(
        pl.format(" (you bought it in only {} order{})", pl.col("times"),
                  pl.when(pl.col("times") == 1).then(pl.lit("")).otherwise(pl.lit("s")))
    ).otherwise(pl.lit(""))
    return frame.with_columns(reason=pl.concat_str([reason, rarely]))


def recommend(order_lines: pl.DataFrame, organizations: pl.DataFrame | None = None, *, k: int = 5,
              level: Level = "sku", config: RecommendConfig | None = None,
              orgs: Sequence[str] | None = None) -> pl.DataFrame:
    """Next best products (``level="sku"``) or categories per organization, with a reason each.

    Input: ``order_lines`` and ``organizations`` as in ``frames.SCHEMAS`` (the latter for segments;
    organizations without lines get segment-popularity recommendations). ``config.level`` is
    overridden by ``level``. Returns one row per (org, rank ≤ k): org, rank, item, category, score,
    reason_kind ("peers" | "bought_with" | "popular"), reason (human-readable), anchor (the bought
    item behind a "bought_with" reason), share (the percentage the reason quotes, 0..1), segment.
    Items with no evidence (score 0) and, by default, items already bought are never returned.
    ``orgs`` limits the output to those organizations (all of them by default).
    """
    cfg = config or RecommendConfig()
    if cfg.level != level:
        cfg = RecommendConfig(**{**cfg.__dict__, "level": level})
    model = fit(order_lines, organizations, cfg)
    return recommend_model(model, k=k, orgs=orgs)
