"""Engagement beyond buying: contracts, training, recycling, and people leaving.

These are the signals a loyalty program rewards besides spend, and the ones that fade first when
a customer drifts away, so each is thinned by the same drift curve as orders.
"""

from __future__ import annotations

import datetime as dt
import math
from random import Random

from .context import OrgContext
from .model import EventRecord
from .people import leave_reason
from .products import COURSES
from .timeline import poisson

CONTRACTS_PER_YEAR_AT_SIZE_1 = 0.04
TRAININGS_PER_YEAR = {"distributor": 2.0, "dealer": 3.0, "customer": 0.8}
RECYCLING_PER_ORDER = 0.3
_TRAINEES = ("engineer", "sales_rep")
_SIGNERS = ("owner", "purchasing_manager")


def _days(ctx: OrgContext, rng: Random, per_day: float, lo: int, hi: int) -> list[int]:
    """Seasonal Poisson day draws in lo..hi, thinned by drift."""
    if hi < lo or per_day <= 0:
        return []
    tl = ctx.timeline
    days = tl.sample_days(rng, lo, hi, poisson(rng, per_day * tl.weight_between(lo, hi)))
    return [d for d in days if d <= ctx.drift_day or rng.random() < ctx.activity(d)]


def contracts(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """Occasional service/supply contracts; their rate grows with customer size."""
    profile = ctx.profile
    if profile is None:
        return []
    ext = ctx.org.external_id
    rate = CONTRACTS_PER_YEAR_AT_SIZE_1 * math.sqrt(profile.size) / 365.25
    monthly_fee = 15_000 * math.sqrt(profile.size)
    out = []
    for k, day in enumerate(_days(ctx, rng, rate, ctx.first_day, ctx.last_day), start=1):
        months = rng.choice((12, 24, 36))
        value = round(months * monthly_fee * rng.lognormvariate(0.0, 0.4))
        out.append(EventRecord(
            f"ctr-{ext}-{k:04d}", "contract.signed", ext, ctx.person(day, _SIGNERS),
            ctx.timeline.local_time(rng, day, ctx.utc_offset),
            {"contract_id": f"C-{ext}-{k:04d}", "value_minor": value, "months": months}))
    return out


def training(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """Courses completed by engineers and sales reps while they are with the organization."""
    out = []
    base = TRAININGS_PER_YEAR[ctx.org.kind] / 365.25
    for person, until in zip(ctx.people, ctx.until, strict=True):
        if person.role not in _TRAINEES:
            continue
        per_day = base * rng.lognormvariate(0.0, 0.5)
        hi = min(ctx.last_day, until - 1)
        for k, day in enumerate(_days(ctx, rng, per_day, ctx.first_day, hi), start=1):
            course = rng.choice(COURSES)
            score = min(100, max(0, round(rng.gauss(78, 12))))
            out.append(EventRecord(
                f"trn-{person.external_id}-{k:04d}", "training.completed", ctx.org.external_id,
                person.external_id, ctx.timeline.local_time(rng, day, ctx.utc_offset),
                {"course_id": course.course_id, "modules": course.modules, "score": score}))
    return out


def recycling(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """Returned empty cartridges, by customers that take part in the recycling scheme."""
    profile = ctx.profile
    if profile is None or not profile.recycles:
        return []
    ext = ctx.org.external_id
    per_day = RECYCLING_PER_ORDER * min(profile.orders_per_month, 10.0) / (365.25 / 12)
    out = []
    for k, day in enumerate(_days(ctx, rng, per_day, ctx.first_day, ctx.last_day), start=1):
        quantity = max(1, round(rng.lognormvariate(math.log(4 * profile.value_multiplier), 0.6)))
        out.append(EventRecord(
            f"rcy-{ext}-{k:05d}", "cartridge.recycled", ext, ctx.anyone(rng, day),
            ctx.timeline.local_time(rng, day, ctx.utc_offset), {"quantity": quantity}))
    return out


def departures(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """participant.left on the leaving day.

    Placed at 09:00-15:00 UTC so that, in every time zone of the program, it falls on the UTC
    date of `left_on` and after anything the person did on their last working day.
    """
    out = []
    for person, until in zip(ctx.people, ctx.until, strict=True):
        if person.left_on is None or not ctx.first_day <= until <= ctx.last_day:
            continue
        at = ctx.timeline.midnight[until] + dt.timedelta(seconds=rng.randrange(9 * 3600, 15 * 3600))
        out.append(EventRecord(f"left-{person.external_id}", "participant.left",
                               ctx.org.external_id, person.external_id, at,
                               {"reason": leave_reason(rng)}))
    return out
