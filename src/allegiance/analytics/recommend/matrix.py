"""The organization × item purchase matrix every recommender and baseline in this package reads.

An *item* is a product (``sku``) or a ``category``, depending on the level asked for. The matrix
keeps, per (organization, item), the number of distinct orders and the value bought, as sparse
CSR matrices, so 100,000 organizations × 1,000 items cost memory in proportion to the pairs that
were actually bought, not to their product.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

Level = Literal["sku", "category"]
LEVELS: tuple[Level, ...] = ("sku", "category")
NO_SEGMENT = "(none)"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PurchaseMatrix:
    """Who bought what, in index space.

    ``orgs`` and ``items`` are sorted, so row/column order (and every tie broken by index) is
    deterministic. ``buyer`` marks rows with at least one purchase: organizations listed in the
    organizations frame without order lines have empty rows (they still get popularity-based
    recommendations) but are left out of every share and count.
    """

    level: Level
    orgs: list[str]
    items: list[str]
    item_category: list[str]
    segment: list[str]  # per row
    orders: sp.csr_matrix  # distinct orders per (org, item), int64
    value: sp.csr_matrix  # value_minor summed per (org, item), float64

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.orgs), len(self.items)

    @property
    def buyer(self) -> npt.NDArray[np.bool_]:
        return np.diff(self.orders.indptr) > 0

    def binary(self, min_orders: int = 1) -> sp.csr_matrix:
        """1.0 where the organization bought the item in at least ``min_orders`` distinct orders."""
        m = self.orders.copy()
        m.data = (m.data >= min_orders).astype(np.float64)
        m.eliminate_zeros()
        return m

    def org_index(self) -> dict[str, int]:
        return {o: i for i, o in enumerate(self.orgs)}

    def item_index(self) -> dict[str, int]:
        return {it: i for i, it in enumerate(self.items)}


def _check_level(level: str) -> Level:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    return level


def build_matrix(order_lines: pl.DataFrame, organizations: pl.DataFrame | None = None, *,
                 level: str = "sku", items: Iterable[str] | None = None) -> PurchaseMatrix:
    """Aggregate ``order_lines`` (frames.SCHEMAS["order_lines"]) into a :class:`PurchaseMatrix`.

    Rows are every organization with order lines plus every organization of ``organizations``
    (its ``segment`` column gives the row's segment; missing or null segments read ``"(none)"``).
    Columns are the items bought (or ``items`` when given, e.g. to keep a training catalog;
    lines of other items are then dropped). A SKU's category is the one it appears with most often.
    """
    lvl = _check_level(level)
    lines = order_lines.select("org", "order_id", "sku", "category", "value_minor")
    key = "sku" if lvl == "sku" else "category"
    found = lines.get_column(key).unique().drop_nulls().to_list()
    item_list = sorted(found if items is None else set(items))
    if lvl == "sku":
        cat = (lines.group_by("sku", "category").len()
               .sort(["sku", "len", "category"], descending=[False, True, False])
               .unique("sku", keep="first"))
        cat_of = dict(zip(cat.get_column("sku").to_list(), cat.get_column("category").to_list(), strict=True))
        item_category = [str(cat_of.get(s, "")) for s in item_list]
    else:
        item_category = list(item_list)

    org_set = set(lines.get_column("org").unique().drop_nulls().to_list())
    seg_of: dict[str, str] = {}
    if organizations is not None and organizations.height:
        org_set |= set(organizations.get_column("org").drop_nulls().to_list())
        seg_of = {o: (s if s else NO_SEGMENT) for o, s in
                  zip(organizations.get_column("org").to_list(), organizations.get_column("segment").to_list(),
                      strict=True)}
    org_list = sorted(org_set)
    segment = [seg_of.get(o, NO_SEGMENT) for o in org_list]

    org_ix = pl.DataFrame({"org": org_list, "r": np.arange(len(org_list), dtype=np.int64)})
    item_ix = pl.DataFrame({key: item_list, "c": np.arange(len(item_list), dtype=np.int64)},
                           schema={key: pl.String(), "c": pl.Int64()})
    agg = (lines.group_by("org", key)
           .agg(pl.col("order_id").n_unique().alias("n"), pl.col("value_minor").sum().alias("v"))
           .join(org_ix, on="org").join(item_ix, on=key))
    r = agg.get_column("r").to_numpy()
    c = agg.get_column("c").to_numpy()
    shape = (len(org_list), len(item_list))
    orders = sp.csr_matrix((agg.get_column("n").to_numpy().astype(np.int64), (r, c)), shape=shape)
    value = sp.csr_matrix((agg.get_column("v").to_numpy().astype(np.float64), (r, c)), shape=shape)
    orders.sort_indices()
    value.sort_indices()
    return PurchaseMatrix(lvl, org_list, item_list, item_category, segment, orders, value)
