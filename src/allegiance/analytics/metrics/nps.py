"""Net Promoter Score with a confidence interval, overall, per period and per segment or role.

NPS = 100 * (promoters - detractors) / respondents, where promoters answered 9-10, passives 7-8
and detractors 0-6. Promoter and detractor shares come from one trinomial sample, so the
variance of their difference is (p_P + p_D - (p_P - p_D)^2) / n, not the sum of two independent
binomial variances.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal

import polars as pl

from ._common import Period, attach, group_columns, in_window, period_expr, utc_times

NpsMethod = Literal["wald", "adjusted_wald"]


def nps_interval(promoters: int, passives: int, detractors: int, *, method: NpsMethod = "wald",
                 confidence: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """(score, low, high) on the -100..100 scale for one sample; all None when there are no answers.

    ``wald``: score ± z * sqrt((p_P + p_D - (p_P - p_D)^2) / n), clipped to [-100, 100]. Simple,
    and it always contains the score, but it collapses to zero width when every answer is in one
    category (n promoters out of n gives [100, 100]) and under-covers for small n.

    ``adjusted_wald`` (Rocks 2016, "Interval Estimation for the Net Promoter Score", The American
    Statistician): the same formula on counts with 3/4 added to promoters and detractors and 3
    to n (so 3/2 to passives), which pulls the centre towards 0 and keeps a non-zero width; it
    had the best coverage among the closed-form methods compared there. Neither method needs
    resampling. The adjusted interval is centred on the adjusted estimate, so for tiny extreme
    samples it may not contain the raw score (1 promoter of 1: score 100, interval ≈ [-48, 98]).
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if min(promoters, passives, detractors) < 0:
        raise ValueError("counts must be >= 0")
    n = promoters + passives + detractors
    if n == 0:
        return None, None, None
    score = 100.0 * (promoters - detractors) / n
    if method == "wald":
        p_p, p_d, m = promoters / n, detractors / n, float(n)
    elif method == "adjusted_wald":
        m = n + 3.0
        p_p, p_d = (promoters + 0.75) / m, (detractors + 0.75) / m
    else:
        raise ValueError(f"method must be 'wald' or 'adjusted_wald', not {method!r}")
    centre = p_p - p_d
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(max(p_p + p_d - centre * centre, 0.0) / m)
    return score, 100.0 * max(-1.0, centre - half), 100.0 * min(1.0, centre + half)


def nps(responses: pl.DataFrame, *, start: dt.date | dt.datetime | None = None,
        end: dt.date | dt.datetime | None = None, period: Period | None = None,
        by: str | Sequence[str] | None = None, organizations: pl.DataFrame | None = None,
        people: pl.DataFrame | None = None, method: NpsMethod = "wald", confidence: float = 0.95,
        latest_per_respondent: bool = False) -> pl.DataFrame:
    """NPS of the ``responses`` frame (org, participant, occurred_at, score 0..10) in ``[start, end)``.

    `period` splits by UTC calendar period; `by` groups by columns found on the responses, then
    on ``organizations`` (joined on org: segment, country, kind) or ``people`` (joined on
    participant: role). With `latest_per_respondent`, only each respondent's last answer in the
    period counts (a respondent is the participant, or the organization for anonymous answers),
    so a keen customer answering every week does not outweigh the rest. Scores outside 0..10 are
    dropped as invalid. See `nps_interval` for the two interval methods.

    Returns: period (Date; only when `period` is given), *by, n, promoters, passives,
    detractors (Int64), score, ci_low, ci_high (Float64, -100..100). Ungrouped, there is always
    one row; with n = 0 its score and interval are null.
    """
    keys = group_columns(by)
    rows = in_window(utc_times(responses), start, end).filter(pl.col("score").is_between(0, 10))
    group = list(keys)
    if period is not None:
        rows = rows.with_columns(period_expr("occurred_at", period).alias("period"))
        group = ["period", *keys]
    if latest_per_respondent:
        who = pl.coalesce(pl.col("participant"), pl.lit("org:") + pl.col("org")).alias("_who")
        rows = rows.with_columns(who).sort("occurred_at").unique(
            ["_who", *(["period"] if period is not None else [])], keep="last").drop("_who")
    rows = attach(rows, keys, organizations, people)
    score = pl.col("score")
    aggs = [
        pl.len().cast(pl.Int64).alias("n"),
        (score >= 9).sum().cast(pl.Int64).alias("promoters"),
        score.is_between(7, 8).sum().cast(pl.Int64).alias("passives"),
        (score <= 6).sum().cast(pl.Int64).alias("detractors"),
    ]
    counts = rows.group_by(group).agg(aggs).sort(group, nulls_last=True) if group else rows.select(aggs)
    intervals = [nps_interval(p, q, d, method=method, confidence=confidence)
                 for p, q, d in counts.select("promoters", "passives", "detractors").iter_rows()]
    return counts.with_columns(
        pl.Series("score", [i[0] for i in intervals], dtype=pl.Float64()),
        pl.Series("ci_low", [i[1] for i in intervals], dtype=pl.Float64()),
        pl.Series("ci_high", [i[2] for i in intervals], dtype=pl.Float64()),
    )


__all__ = ["NpsMethod", "nps", "nps_interval"]
