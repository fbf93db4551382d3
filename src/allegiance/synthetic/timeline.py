"""The program's calendar: which days buyers are busy, and how to draw event times from it.

Seasonality lives in one table of day weights so every sub-generator shares the same rhythm (Q4
peak, August dip, quiet weekends) and a count over any span of days is one Poisson draw, which
keeps generation cost proportional to the number of events rather than organizations x days.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from itertools import accumulate
from random import Random
from statistics import NormalDist

UTC = dt.UTC

# Relative demand by month (Jan..Dec): year-end budget spending, summer holidays in August.
MONTH_WEIGHT = (0.9, 0.95, 1.05, 1.0, 1.0, 0.95, 0.85, 0.6, 1.05, 1.15, 1.25, 1.3)
# Mon..Sun: B2B buyers rarely order at weekends.
WEEKDAY_WEIGHT = (1.1, 1.15, 1.1, 1.05, 0.9, 0.06, 0.03)
# Local hour of day 0..23 for office activity.
_HOUR_WEIGHT = (0, 0, 0, 0, 0, 0, 0.05, 0.3, 0.8, 1.2, 1.3, 1.2, 0.6, 0.9, 1.2, 1.1, 0.9, 0.5,
                0.2, 0.1, 0.1, 0.05, 0.02, 0)
_HOUR_CUM = list(accumulate(_HOUR_WEIGHT))
_HOUR_TOTAL = _HOUR_CUM[-1]


def _lognormal_quantiles(sigma: float, n: int) -> tuple[float, ...]:
    dist = NormalDist(0.0, sigma)
    return tuple(math.exp(dist.inv_cdf((i + 0.5) / n)) for i in range(n))


# Lognormal(0, 0.6) by table lookup: a quarter of the cost of lognormvariate in the order loop,
# and indistinguishable at 2,048 quantiles.
LOGNORMAL_06 = _lognormal_quantiles(0.6, 2048)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    return dt.date(day.year + index // 12, index % 12 + 1, 1)


def poisson(rng: Random, lam: float) -> int:
    """Poisson draw; stdlib has none before 3.12. Normal approximation where it is accurate."""
    if lam <= 0:
        return 0
    if lam > 40:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class Timeline:
    """Days of the generation window, indexed 0..n-1, with cumulative seasonal weights.

    Weights are normalised so that one "weighted day" is an average weekday-and-season day:
    a rate per day times the weight of a span gives the expected count over that span.
    """

    def __init__(self, start: dt.date, months: int) -> None:
        self.start = start
        self.end = add_months(start, months) - dt.timedelta(days=1)
        self.n_days = (self.end - start).days + 1
        days = [start + dt.timedelta(days=i) for i in range(self.n_days)]
        raw = [MONTH_WEIGHT[d.month - 1] * WEEKDAY_WEIGHT[d.weekday()] for d in days]
        mean = sum(raw) / len(raw)
        self.weights = [w / mean for w in raw]
        self.cum = list(accumulate(self.weights))
        self.midnight = [dt.datetime(d.year, d.month, d.day, tzinfo=UTC) for d in days]
        # Epoch seconds of each midnight: hot loops do integer arithmetic and build one datetime.
        self.midnight_ts = [int(m.timestamp()) for m in self.midnight]

    def index(self, day: dt.date) -> int:
        return (day - self.start).days

    def weight_between(self, lo: int, hi: int) -> float:
        """Total weight of days lo..hi inclusive."""
        return self.cum[hi] - (self.cum[lo - 1] if lo > 0 else 0.0)

    def sample_days(self, rng: Random, lo: int, hi: int, k: int) -> list[int]:
        """k day indices in lo..hi inclusive, drawn in proportion to the day weights, sorted."""
        cum = self.cum
        base = cum[lo - 1] if lo > 0 else 0.0
        span = cum[hi] - base
        rand = rng.random
        out = [min(hi, bisect_right(cum, base + rand() * span, lo, hi + 1)) for _ in range(k)]
        out.sort()
        return out

    def local_ts(self, rng: Random, day: int, utc_offset_hours: int) -> int:
        """Epoch seconds of an office-hours moment on `day` in a place `utc_offset_hours` east."""
        return self.moments(rng, [day], utc_offset_hours)[0][0]

    def moments(self, rng: Random, days: list[int], utc_offset_hours: int,
                ) -> list[tuple[int, int]]:
        """(epoch seconds, day) of an office-hours moment on each of `days`, in time order."""
        rand, midnight, cum, weight = rng.random, self.midnight_ts, _HOUR_CUM, _HOUR_WEIGHT
        shift = -utc_offset_hours * 3600
        out = []
        for day in days:
            u = rand() * _HOUR_TOTAL
            hour = bisect_right(cum, u)
            # Reuse the draw for the second within the hour: one random call per moment.
            second = int((u - (cum[hour - 1] if hour else 0.0)) / weight[hour] * 3600)
            out.append((midnight[day] + shift + hour * 3600 + (second if second < 3600 else 3599),
                        day))
        out.sort()
        return out

    def local_time(self, rng: Random, day: int, utc_offset_hours: int) -> dt.datetime:
        """An office-hours moment on `day` in a place `utc_offset_hours` east of UTC, as UTC."""
        return dt.datetime.fromtimestamp(self.local_ts(rng, day, utc_offset_hours), UTC)
