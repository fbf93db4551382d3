"""A small synthetic co-purchase world with known structure, to test recommenders honestly.

Why it exists: the program generator (``allegiance.synthetic``) draws each order line from the
organization's category affinity, independently per category and independently of the segment,
with equal shares of the products within a category. Its only co-purchase structure is "more of
the category you already buy"; even an oracle that knows every latent affinity reaches hit@5 of
only ~1.3 × global popularity on it (docs/analytics.md), so it cannot tell a good recommender
from a mediocre one. Here purchases come from known latent structure instead:

- **bundles**: groups of ``bundle_size`` products drawn from two "home" categories each (a printer
  with its toner and service contract); an organization that adopts a bundle starts buying its
  products one after another (exponential lags), so part of a bundle is bought before any date
  and the rest after it;
- **segments**: each segment has its own Dirichlet preference over bundles, so organizations of
  a segment adopt similar bundles;
- **noise**: a few products per organization drawn from a global Zipf popularity, bought at a
  lower rate.

Frames follow ``frames.SCHEMAS``; :class:`CoPurchaseWorld` also carries the truth (segment and
bundles per organization). Vectorized numpy: 100,000 organizations take a few seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from ..frames import SCHEMAS

_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class CoPurchaseConfig:
    """Everything that determines a world; the same config always gives the same frames."""

    organizations: int = 1500
    products: int = 120
    categories: int = 12
    segments: int = 4
    bundles: int = 16
    bundle_size: int = 5
    extra_bundles: float = 1.0  # mean bundles beyond the first per organization (Poisson)
    take: float = 0.85  # chance an adopter buys each product of its bundle at all
    lag_days: float = 150.0  # mean delay between two products of one bundle
    concentration: float = 0.25  # Dirichlet alpha of segment bundle preferences (small = distinct)
    noise_products: float = 2.0  # mean popularity-driven extra products per organization
    zipf: float = 1.1
    rate_per_month: float = 0.6  # purchases of an adopted product per month (times a lognormal per org)
    noise_rate: float = 0.25
    start: dt.date = dt.date(2024, 1, 1)
    days: int = 730
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.organizations, self.products, self.categories, self.segments, self.bundles,
               self.bundle_size, self.days) < 1:
            raise ValueError("sizes must be >= 1")
        if self.categories < 2:
            raise ValueError("categories must be >= 2 (a bundle spans two)")
        if not 0 < self.take <= 1:
            raise ValueError("take must be in (0, 1]")


@dataclass(frozen=True)
class CoPurchaseWorld:
    """The frames and the truth behind them."""

    config: CoPurchaseConfig
    order_lines: pl.DataFrame
    organizations: pl.DataFrame
    segment_of: dict[str, str]
    bundles: list[list[str]]  # products of each bundle
    bundles_of: dict[str, list[int]]  # bundle indexes each organization adopted
    product_category: dict[str, str]


def _gumbel_top(rng: np.random.Generator, logp: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]
                ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per row, ``counts[row]`` distinct columns drawn without replacement with weights exp(logp)."""
    keys = logp + rng.gumbel(size=logp.shape)
    order = np.argsort(-keys, axis=1)
    take = np.arange(logp.shape[1])[None, :] < counts[:, None]
    rows = np.repeat(np.arange(logp.shape[0]), take.sum(axis=1))
    return rows, order[take]


def simulate(config: CoPurchaseConfig | None = None) -> CoPurchaseWorld:
    """Generate a co-purchase world (see the module docstring for the structure)."""
    cfg = config or CoPurchaseConfig()
    rng = np.random.default_rng(cfg.seed)
    n, p, nc, ns, nb = cfg.organizations, cfg.products, cfg.categories, cfg.segments, cfg.bundles
    width = len(str(n))
    orgs = np.array([f"SIM-{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    skus = np.array([f"P{i:04d}" for i in range(1, p + 1)], dtype=object)
    cats = np.array([f"cat-{c:02d}" for c in range(1, nc + 1)], dtype=object)
    seg_names = [f"segment-{chr(ord('a') + s)}" for s in range(ns)]
    product_cat = np.arange(p) % nc
    rng.shuffle(product_cat)
    by_cat = [np.flatnonzero(product_cat == c) for c in range(nc)]
    price = np.round(np.exp(rng.normal(8.5, 1.2, size=p))).astype(np.int64) + 100

    # Bundles: bundle_size products from two home categories.
    bundles: list[npt.NDArray[np.int64]] = []
    for _ in range(nb):
        home = rng.choice(nc, size=2, replace=False)
        pool = np.concatenate([by_cat[int(c)] for c in home])
        size = min(cfg.bundle_size, len(pool))
        bundles.append(np.sort(rng.choice(pool, size=size, replace=False)).astype(np.int64))

    segment = rng.integers(ns, size=n)
    pref = rng.dirichlet(np.full(nb, cfg.concentration), size=ns)
    counts = np.minimum(1 + rng.poisson(cfg.extra_bundles, size=n), nb).astype(np.int64)
    b_rows, b_cols = _gumbel_top(rng, np.log(pref[segment] + 1e-12), counts)
    adopted_at = rng.uniform(-0.5 * cfg.days, cfg.days, size=len(b_rows))

    # Products of adopted bundles, started one after another.
    sizes = np.array([len(bundles[b]) for b in b_cols], dtype=np.int64)
    pair_org = np.repeat(b_rows, sizes)
    pair_item = np.concatenate([rng.permutation(bundles[b]) for b in b_cols]) if len(b_cols) else np.zeros(0, np.int64)
    lags = rng.exponential(cfg.lag_days, size=len(pair_item))
    starts_of_bundle = np.concatenate([np.arange(s) for s in sizes]) if len(sizes) else np.zeros(0, np.int64)
    first = np.cumsum(sizes) - sizes
    csum = np.cumsum(lags)
    lag_cum = csum - np.repeat(csum[first] if len(first) else np.zeros(0), sizes)
    pair_start = np.repeat(adopted_at, sizes) + np.where(starts_of_bundle == 0, 0.0, lag_cum)
    keep = rng.random(len(pair_item)) < cfg.take
    keep[first] = True  # the bundle's first product is what adoption means
    pair_org, pair_item, pair_start = pair_org[keep], pair_item[keep], pair_start[keep]
    pair_rate = np.full(len(pair_item), cfg.rate_per_month)

    # Popularity-driven noise.
    zipf_w = 1.0 / np.arange(1, p + 1) ** cfg.zipf
    popular = rng.permutation(p)
    n_noise = rng.poisson(cfg.noise_products, size=n).astype(np.int64)
    nz_rows = np.repeat(np.arange(n), n_noise)
    nz_items = popular[rng.choice(p, size=len(nz_rows), p=zipf_w / zipf_w.sum())]
    pair_org = np.concatenate([pair_org, nz_rows])
    pair_item = np.concatenate([pair_item, nz_items])
    pair_start = np.concatenate([pair_start, rng.uniform(-0.5 * cfg.days, cfg.days, size=len(nz_rows))])
    pair_rate = np.concatenate([pair_rate, np.full(len(nz_rows), cfg.noise_rate)])

    # One purchase stream per (org, product): earliest start wins.
    order = np.lexsort((pair_start, pair_item, pair_org))
    first_pair = np.ones(len(order), dtype=bool)
    first_pair[1:] = (pair_org[order][1:] != pair_org[order][:-1]) | (pair_item[order][1:] != pair_item[order][:-1])
    order = order[first_pair]
    pair_org, pair_item, pair_start, pair_rate = pair_org[order], pair_item[order], pair_start[order], pair_rate[order]

    activity = rng.lognormal(0.0, 0.4, size=n)
    begin = np.clip(pair_start, 0.0, cfg.days)
    span = cfg.days - begin
    lam = pair_rate * activity[pair_org] * span / 30.44
    events = rng.poisson(lam)
    # An adopted product is bought at least once if it started within the window.
    events = np.where((span > 0) & (events == 0) & (rng.random(len(events)) < 0.5), 1, events)
    line_pair = np.repeat(np.arange(len(events)), events)
    t = begin[line_pair] + rng.random(len(line_pair)) * span[line_pair]
    day = np.minimum(np.floor(t).astype(np.int64), cfg.days - 1)
    seconds = rng.integers(8 * 3600, 18 * 3600, size=len(line_pair))
    line_org = pair_org[line_pair]
    line_item = pair_item[line_pair]
    # Lines of one organization on one day form one order; one line per product per order.
    key = np.lexsort((line_item, day, line_org))
    line_org, line_item, day, seconds = line_org[key], line_item[key], day[key], seconds[key]
    uniq = np.ones(len(line_org), dtype=bool)
    uniq[1:] = (line_org[1:] != line_org[:-1]) | (day[1:] != day[:-1]) | (line_item[1:] != line_item[:-1])
    line_org, line_item, day, seconds = line_org[uniq], line_item[uniq], day[uniq], seconds[uniq]
    quantity = 1 + rng.poisson(2.0, size=len(line_org))

    start_us = int((dt.datetime(cfg.start.year, cfg.start.month, cfg.start.day, tzinfo=dt.UTC)
                    - _UTC_EPOCH).total_seconds()) * 1_000_000
    occurred = start_us + day * _DAY_US + seconds * 1_000_000
    lines = pl.DataFrame({
        "org": orgs[line_org].tolist(),
        "order_id": [f"{o}-{d:04d}" for o, d in zip(orgs[line_org].tolist(), day.tolist(), strict=True)],
        "occurred_at": pl.Series(occurred, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
        "sku": skus[line_item].tolist(),
        "category": cats[product_cat[line_item]].tolist(),
        "quantity": quantity.astype(np.int64),
        "value_minor": (quantity * price[line_item]).astype(np.int64),
    }, schema=SCHEMAS["order_lines"])
    organizations = pl.DataFrame({
        "org": orgs.tolist(), "name": [f"Company {o}" for o in orgs.tolist()], "kind": ["customer"] * n,
        "parent": [None] * n, "segment": [seg_names[s] for s in segment], "country": ["DE"] * n,
        "status": ["active"] * n, "joined_on": [cfg.start] * n, "left_on": [None] * n,
    }, schema=SCHEMAS["organizations"])
    bundles_of: dict[str, list[int]] = {str(o): [] for o in orgs.tolist()}
    for r, b in zip(b_rows.tolist(), b_cols.tolist(), strict=True):
        bundles_of[str(orgs[r])].append(int(b))
    return CoPurchaseWorld(
        cfg, lines, organizations, {str(o): seg_names[s] for o, s in zip(orgs.tolist(), segment, strict=True)},
        [[str(skus[i]) for i in b] for b in bundles], bundles_of,
        {str(skus[i]): str(cats[product_cat[i]]) for i in range(p)})
