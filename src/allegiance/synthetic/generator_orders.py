"""Orders and what follows them: invoice payments and returns.

Order times come from a non-homogeneous Poisson process: one Poisson draw over the customer's
active span at its peak rate, placed on days by seasonal weight, then thinned by the customer's
growth, onboarding ramp and drift. That is exact for any rate curve and costs O(orders), which is
what keeps whales and 100,000-customer programs fast.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from itertools import accumulate
from random import Random
from typing import Any

from .context import OrgContext
from .model import CURRENCY, ORDER_CHANNELS, EventRecord
from .products import PRODUCT_CATEGORY_INDEX, PRODUCT_SHARE_IN_CATEGORY, PRODUCTS
from .timeline import LOGNORMAL_06, UTC, poisson

DAYS_PER_MONTH = 365.25 / 12
PAID_SHARE = 0.93
PAID_SHARE_DRIFTING = 0.8  # customers on their way out pay less reliably
RETURN_SHARE = 0.03
ONBOARDING_DAYS = 60
_BUYERS = ("purchasing_manager", "owner", "accountant", "engineer", "sales_rep", "other")
_PAYERS = ("accountant", "purchasing_manager", "owner")
_N_PRODUCTS = len(PRODUCTS)
_SKU = [p.sku for p in PRODUCTS]
_CATEGORY = [p.category for p in PRODUCTS]
_PRICE = [p.unit_price_minor for p in PRODUCTS]
_TYPICAL = [p.typical_quantity for p in PRODUCTS]


def _order_days(ctx: OrgContext, rng: Random) -> list[int]:
    profile = ctx.profile
    assert profile is not None
    tl, lo, hi = ctx.timeline, ctx.first_day, ctx.last_day
    growth = profile.growth_per_year / 365.25
    peak = math.exp(growth * (hi if growth > 0 else lo))
    lam = profile.orders_per_month / DAYS_PER_MONTH * tl.weight_between(lo, hi) * peak
    candidates = tl.sample_days(rng, lo, hi, poisson(rng, lam))
    joined, drift_day = ctx.joined_day, ctx.drift_day
    rand, exp = rng.random, math.exp
    days = []
    for d in candidates:
        f = exp(growth * d) / peak
        if d - joined < ONBOARDING_DAYS:
            f *= 0.4 + 0.6 * (d - joined) / ONBOARDING_DAYS
        if d > drift_day:
            f *= ctx.activity(d)
        if rand() < f:
            days.append(d)
    return days


def orders(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """order.placed, invoice.paid and order.returned events of one customer."""
    profile = ctx.profile
    if profile is None:
        return []
    ext, rand = ctx.org.external_id, rng.random
    prefix = ext + "-"
    lower, upper = ctx.bounds_ts
    moments = [m for m in ctx.timeline.moments(rng, _order_days(ctx, rng), ctx.utc_offset)
               if lower <= m[0] < upper]
    # Per-customer tables, so the per-line work is lookups: product choice, size, discount.
    affinity = profile.category_affinity
    product_cum = list(accumulate(affinity[c] * share for c, share in
                                  zip(PRODUCT_CATEGORY_INDEX, PRODUCT_SHARE_IN_CATEGORY, strict=True)))
    product_total = product_cum[-1]
    quantity_scale = [t * profile.value_multiplier for t in _TYPICAL]
    keep = 1.0 - profile.discount
    prices = [int(p * keep + 0.5) for p in _PRICE]
    channel_cum = list(accumulate(profile.channel_weights))
    paid_share = PAID_SHARE if ctx.drift_day > ctx.last_day else PAID_SHARE_DRIFTING
    buyer_breaks, buyers = ctx.person_steps(_BUYERS)
    payer_breaks, payers = ctx.person_steps(_PAYERS)
    at_ts, log, lognormal = dt.datetime.fromtimestamp, math.log, LOGNORMAL_06
    n_lognormal = len(lognormal)
    out: list[EventRecord] = []
    append = out.append
    for number, (ts, day) in enumerate(moments, start=1):
        lines: list[dict[str, Any]] = []
        seen: list[int] = []
        amount = 0
        n_lines = int(-log(1.0 - rand()) / 0.9)
        for _ in range(1 + (n_lines if n_lines < 5 else 5)):
            i = bisect_right(product_cum, rand() * product_total)
            if i >= _N_PRODUCTS:  # rand() * total rounded up to the last boundary
                i = _N_PRODUCTS - 1
            if i in seen:  # merge repeats into one line per SKU
                continue
            seen.append(i)
            quantity = int(quantity_scale[i] * lognormal[int(rand() * n_lognormal)]) or 1
            price = prices[i]
            amount += quantity * price
            lines.append({"sku": _SKU[i], "category": _CATEGORY[i], "quantity": quantity,
                          "unit_price_minor": price})
        key = prefix + str(number).zfill(6)
        order_id = "O-" + key
        u = rand() * channel_cum[-1]
        channel = ORDER_CHANNELS[0 if u < channel_cum[0] else 1 if u < channel_cum[1] else 2]
        append(EventRecord("ord-" + key, "order.placed", ext,
                           buyers[bisect_right(buyer_breaks, day)], at_ts(ts, UTC), {
                               "order_id": order_id, "currency": CURRENCY,
                               "amount_minor": amount, "channel": channel, "lines": lines}))
        if rand() < paid_share:
            delay = 10 + int(rand() * 51)
            paid = ts + delay * 86_400 + int(rand() * 21_600) - 10_800
            weekday = (paid // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
            if weekday >= 5:  # banks book on working days
                paid += (7 - weekday) * 86_400
                delay += 7 - weekday
            # The payer must still be there the day after (the UTC date can run a day ahead).
            append(EventRecord("inv-" + key, "invoice.paid", ext,
                               payers[bisect_right(payer_breaks, day + delay + 1)],
                               at_ts(paid, UTC), {"invoice_id": "I-" + key, "order_id": order_id,
                                                  "amount_minor": amount}))
        if rand() < RETURN_SHARE:
            line = lines[int(rand() * len(lines))]
            quantity = 1 + int(rand() * line["quantity"])
            returned = amount if rand() < 0.4 else quantity * line["unit_price_minor"]
            delay = 3 + int(rand() * 28)
            returned_at = ts + delay * 86_400 + int(rand() * 14_400) - 7_200
            append(EventRecord("ret-" + key, "order.returned", ext,
                               buyers[bisect_right(buyer_breaks, day + delay + 1)],
                               at_ts(returned_at, UTC), {"order_id": order_id,
                                                         "return_id": "R-" + key,
                                                         "amount_minor": returned}))
    return out
