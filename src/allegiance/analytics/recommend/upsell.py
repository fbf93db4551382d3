"""Up-sell signals: organizations close to their next tier, and organizations buying below peers.

Two independent signals, both returned as rows of one frame (:data:`UPSELL_SCHEMA`) with a reason:

- ``tier_proximity``: from a tier progress frame (org, tier, next_tier, progress_value,
  next_threshold), organizations whose progress is at least ``(1 - within) × next_threshold``
  but below it; ``gap = next_threshold - progress_value``.
- ``below_peers`` / ``category_gap``: trailing-12-month spend (order line value in the 365 days up
  to ``as_of``) against the median of the organization's peer group, segment × size band. Size
  bands are quantiles within the segment of trailing spend (default) or of headcount (when a
  ``people`` frame is given). An organization is ``below_peers`` when its spend is under
  ``below × median``; a ``category_gap`` is a category where the peer median is at least
  ``category_ratio`` × the organization's spend (or the organization bought none of it), the
  largest ``per_org`` gaps per organization.

Peer groups with fewer than ``min_peers`` organizations flag nobody. Only organizations with
spend in the window are compared (no spend is a churn question, not an up-sell one).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import polars as pl

from .matrix import NO_SEGMENT

UPSELL_SCHEMA: dict[str, pl.DataType] = {
    "org": pl.String(), "signal": pl.String(), "segment": pl.String(), "band": pl.String(),
    "category": pl.String(), "value": pl.Float64(), "benchmark": pl.Float64(), "gap": pl.Float64(),
    "ratio": pl.Float64(), "reason": pl.String(),
}
SizeBy = Literal["spend", "people"]


def _amount(value: float, digits: int) -> str:
    return f"{value / 10 ** digits:,.0f}"


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=UPSELL_SCHEMA)


def tier_proximity(progress: pl.DataFrame, *, within: float = 0.10) -> pl.DataFrame:
    """Organizations within ``within`` (a share, 0.10 = 10 %) of their next tier's threshold.

    ``progress``: org (str), tier (str), next_tier (str|null), progress_value (number),
    next_threshold (number|null), in the units the tier program counts (points or minor units; the
    reason prints them as plain numbers). Rows without a next tier or threshold are ignored.
    Returns :data:`UPSELL_SCHEMA` rows with signal ``"tier_proximity"``: value = progress,
    benchmark = threshold, gap = threshold - progress, ratio = progress / threshold.
    """
    if not 0 < within < 1:
        raise ValueError("within must be in (0, 1)")
    if progress.height == 0:
        return _empty()
    frame = (progress.select(
        pl.col("org").cast(pl.String), pl.col("tier").cast(pl.String), pl.col("next_tier").cast(pl.String),
        pl.col("progress_value").cast(pl.Float64).alias("value"),
        pl.col("next_threshold").cast(pl.Float64).alias("benchmark"))
        .filter(pl.col("next_tier").is_not_null() & pl.col("benchmark").is_not_null() & (pl.col("benchmark") > 0)
                & (pl.col("value") < pl.col("benchmark")) & (pl.col("value") >= (1 - within) * pl.col("benchmark")))
        .with_columns(gap=pl.col("benchmark") - pl.col("value"), ratio=pl.col("value") / pl.col("benchmark")))
    reasons = [
        f"{gap:,.0f} short of {nxt} ({ratio:.0%} of the {bench:,.0f} threshold; now {tier})"
        for gap, nxt, ratio, bench, tier in zip(frame["gap"], frame["next_tier"], frame["ratio"], frame["benchmark"],
                                                frame["tier"], strict=True)]
    return (frame.with_columns(signal=pl.lit("tier_proximity"), segment=pl.lit(None, pl.String),
                               band=pl.lit(None, pl.String), category=pl.lit(None, pl.String),
                               reason=pl.Series(reasons, dtype=pl.String))
            .select(list(UPSELL_SCHEMA)).sort("gap", "org"))


def _as_datetime(value: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def _bands(size: pl.DataFrame, bands: int) -> pl.DataFrame:
    """size: org, segment, size -> + band (1..bands, quantiles of size within the segment; ties share a band)."""
    return size.with_columns(
        band=((pl.col("size").rank("min").over("segment") - 1) * bands
              / pl.len().over("segment")).floor().cast(pl.Int32) + 1)


def peer_gaps(order_lines: pl.DataFrame, organizations: pl.DataFrame, *, as_of: dt.date | dt.datetime | None = None,
              people: pl.DataFrame | None = None, bands: int = 3, below: float = 0.5, category_ratio: float = 2.0,
              min_peers: int = 5, per_org: int = 3, min_gap_minor: float = 0.0,
              currency_digits: int = 2) -> pl.DataFrame:
    """Organizations buying below the median of their segment × size band, overall and per category.

    ``order_lines``, ``organizations`` and (optionally) ``people`` as in ``frames.SCHEMAS``;
    ``as_of`` defaults to the last order line (the window is the 365 days up to it, inclusive).
    Sizes come from trailing spend, or from active headcount when ``people`` is given. Returns
    :data:`UPSELL_SCHEMA` rows: ``below_peers`` (value = the org's spend, benchmark = the peer
    median, gap = median - spend, ratio = spend / median) and ``category_gap`` (per category: value
    = the org's category spend, benchmark = the peers' median category spend, ratio = median / spend,
    inf when the org bought none; gaps under ``min_gap_minor`` are dropped). Money in minor units;
    reasons print major units (``currency_digits`` decimals per major unit).
    """
    if bands < 1 or min_peers < 1 or per_org < 0:
        raise ValueError("bands and min_peers must be >= 1, per_org >= 0")
    if not 0 < below <= 1 or category_ratio <= 1:
        raise ValueError("below must be in (0, 1] and category_ratio > 1")
    if order_lines.height == 0:
        return _empty()
    end = _as_datetime(as_of) if as_of is not None else order_lines.get_column("occurred_at").max()
    assert isinstance(end, dt.datetime)
    start = end - dt.timedelta(days=365)
    window = order_lines.filter((pl.col("occurred_at") > start) & (pl.col("occurred_at") <= end))
    segments = organizations.select(pl.col("org"), pl.col("segment").fill_null(NO_SEGMENT))
    spend = (window.group_by("org").agg(pl.col("value_minor").sum().cast(pl.Float64).alias("spend"))
             .filter(pl.col("spend") > 0)
             .join(segments, on="org", how="left").with_columns(pl.col("segment").fill_null(NO_SEGMENT)))
    if people is not None:
        heads = (people.filter(pl.col("left_on").is_null() & (pl.col("status") != "left"))
                 .group_by("org").agg(pl.len().cast(pl.Float64).alias("size")))
        sized = spend.join(heads, on="org", how="left").with_columns(pl.col("size").fill_null(0.0))
    else:
        sized = spend.with_columns(size=pl.col("spend"))
    groups = _bands(sized, bands).with_columns(
        peers=pl.len().over("segment", "band"),
        median=pl.col("spend").median().over("segment", "band"))
    groups = groups.filter(pl.col("peers") >= min_peers)
    if groups.height == 0:
        return _empty()
    sized_by = "headcount" if people is not None else "spend"
    label = pl.format("{} of {} by {}", pl.col("band"), pl.lit(bands), pl.lit(sized_by))

    low = groups.filter(pl.col("spend") < below * pl.col("median"))
    low_rows = low.with_columns(
        signal=pl.lit("below_peers"), band=label, category=pl.lit(None, pl.String), value=pl.col("spend"),
        benchmark=pl.col("median"), gap=pl.col("median") - pl.col("spend"), ratio=pl.col("spend") / pl.col("median"))
    low_rows = low_rows.with_columns(reason=pl.Series([
        f"you spend {ratio:.0%} of the median of {seg} companies of your size "
        f"({_amount(v, currency_digits)} vs {_amount(b, currency_digits)} in the last 12 months)"
        for ratio, seg, v, b in zip(low_rows["ratio"], low_rows["segment"], low_rows["value"], low_rows["benchmark"],
                                    strict=True)], dtype=pl.String))

    members = groups.select("org", "segment", "band")
    categories = window.select(pl.col("category").unique().sort())
    by_cat = window.group_by("org", "category").agg(pl.col("value_minor").sum().cast(pl.Float64).alias("cat_spend"))
    grid = (members.join(categories, how="cross").join(by_cat, on=["org", "category"], how="left")
            .with_columns(pl.col("cat_spend").fill_null(0.0)))
    grid = grid.with_columns(benchmark=pl.col("cat_spend").median().over("segment", "band", "category"))
    gaps = (grid.filter((pl.col("benchmark") > 0) & (pl.col("benchmark") >= category_ratio * pl.col("cat_spend"))
                        & (pl.col("benchmark") - pl.col("cat_spend") >= min_gap_minor))
            .with_columns(gap=pl.col("benchmark") - pl.col("cat_spend"),
                          ratio=pl.when(pl.col("cat_spend") > 0).then(pl.col("benchmark") / pl.col("cat_spend"))
                          .otherwise(float("inf")))
            .sort(["org", "gap", "category"], descending=[False, True, False])
            .group_by("org", maintain_order=True).head(per_org))
    gap_rows = gaps.with_columns(signal=pl.lit("category_gap"), band=label, value=pl.col("cat_spend"))
    gap_rows = gap_rows.with_columns(reason=pl.Series([
        (f"peers of your size in {seg} spend {ratio:.1f}× more on {cat} "
         f"(median {_amount(b, currency_digits)} vs your {_amount(v, currency_digits)} in the last 12 months)")
        if v > 0 else
        (f"peers of your size in {seg} spend a median {_amount(b, currency_digits)} a year on {cat}; "
         f"you bought none in the last 12 months")
        for seg, cat, ratio, b, v in zip(gap_rows["segment"], gap_rows["category"], gap_rows["ratio"],
                                         gap_rows["benchmark"], gap_rows["value"], strict=True)], dtype=pl.String))
    cols = list(UPSELL_SCHEMA)
    return (pl.concat([low_rows.select(cols), gap_rows.select(cols)])
            .sort(["org", "signal", "gap", "category"], descending=[False, False, True, False], nulls_last=True))


def upsell(order_lines: pl.DataFrame, organizations: pl.DataFrame, *, tier_progress: pl.DataFrame | None = None,
           within: float = 0.10, as_of: dt.date | dt.datetime | None = None, people: pl.DataFrame | None = None,
           bands: int = 3, below: float = 0.5, category_ratio: float = 2.0, min_peers: int = 5,
           per_org: int = 3, min_gap_minor: float = 0.0, currency_digits: int = 2) -> pl.DataFrame:
    """All up-sell signals in one frame (:data:`UPSELL_SCHEMA`): :func:`tier_proximity` when
    ``tier_progress`` is given, then :func:`peer_gaps`. Sorted by org, then signal."""
    parts = [peer_gaps(order_lines, organizations, as_of=as_of, people=people, bands=bands, below=below,
                       category_ratio=category_ratio, min_peers=min_peers, per_org=per_org,
                       min_gap_minor=min_gap_minor, currency_digits=currency_digits)]
    if tier_progress is not None:
        parts.append(tier_proximity(tier_progress, within=within))
    return pl.concat(parts).sort(["org", "signal", "gap", "category"], descending=[False, False, True, False],
                                 nulls_last=True)
