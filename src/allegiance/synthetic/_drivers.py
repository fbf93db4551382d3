"""Latent churn drivers: why a drifting customer leaves, and the signals that give it away.

Every customer that drifts away (has a ``drift_start`` and a ``left_on``) gets one planted primary
driver, stored as ``LatentProfile.churn_driver``:

- ``champion_left``: the champion's departure that precedes the drift (decided by the world when
  the people were drawn; reused here, so every drifting customer whose champion left has it);
- ``satisfaction``: NPS answers (``survey.answered``) drift from the customer's usual 8-10 down to
  0-6 in the months before and during the drift;
- ``complaints``: ``complaint.opened`` events become frequent and more severe before the drift;
- ``competitor_price``: ``price.objection`` and ``quote.lost`` events naming a competitor and a
  price gap multiply before the drift.

Every customer, churning or not, also gets background noise of the same events (NPS answers
around its own baseline, occasional complaints and price objections, and for a few loyal
customers a short burst of complaints or competitor pressure that does not end in churn), so
a signal is evidence, not proof.

The driver is drawn from its own random stream, seeded by (seed, customer), and the signals by new
sub-generators with their own streams, so adding them leaves every existing event and record of
the world unchanged. Order values are left as they are for the same reason: the price driver
shows in lost quotes (with their amounts) and in the drift's fading orders, not in smaller orders.
"""

from __future__ import annotations

import math
from random import Random
from typing import Any

from .context import NEVER, OrgContext
from .model import CHURN_DRIVERS, EventRecord, LatentProfile
from .timeline import poisson

DAYS_PER_MONTH = 365.25 / 12
SURVEYS_PER_MONTH = 0.4  # relationship-NPS answers per customer and month
SURVEYS_PER_MONTH_UNHAPPY = 0.8  # unhappy customers answer more readily
COMPLAINTS_PER_YEAR = 0.6  # background, at size 1 (grows with size ** 0.25, at most 2 a year)
OBJECTIONS_PER_YEAR = 0.5
QUOTES_LOST_PER_YEAR = 0.3
NOISE_EPISODE_SHARE = 0.05  # loyal customers with a burst of complaints or competitor pressure
COMPLAINT_CATEGORIES = ("delivery", "product_quality", "billing", "service", "documentation")
SEVERITIES = ("low", "medium", "high", "critical")
_SEVERITY_CUM_CALM = (0.5, 0.85, 0.98, 1.0)
_SEVERITY_CUM_ANGRY = (0.1, 0.4, 0.8, 1.0)
COMPETITORS = ("PrintWell", "TonerMax", "OfficeDirect", "CopyCentral", "InkHub")
COMMENTS_HAPPY = ("Reliable deliveries.", "Great service from our account manager.", "Good value.")
COMMENTS_UNHAPPY = ("Deliveries are late again.", "Support does not call back.",
                    "Quality has dropped.", "We are reconsidering the contract.")
_SIGNERS = ("purchasing_manager", "owner", "accountant")


def churn_driver(seed: int, profile: LatentProfile) -> str | None:
    """The planted primary driver of a drifting customer, or None for one that stays.

    A customer whose champion left before its drift always gets ``champion_left`` (that departure is
    already in the data); the others draw one of the remaining drivers uniformly.
    """
    if profile.drift_start is None:
        return None
    if profile.champion_external_id is not None:
        return "champion_left"
    rng = Random(f"allegiance-synthetic/{seed}/churn-driver/{profile.external_id}")
    return rng.choice([d for d in CHURN_DRIVERS if d != "champion_left"])


def _onset(ctx: OrgContext, rng: Random) -> int:
    """First day of the driver's signal: 30-150 days before the orders start fading."""
    return max(ctx.first_day, ctx.drift_day - rng.randint(30, 150))


def _signal_days(ctx: OrgContext, rng: Random, per_day: float, lo: int, hi: int) -> list[int]:
    """Seasonal Poisson days in lo..hi (not thinned by drift: unhappy customers keep talking)."""
    if hi < lo or per_day <= 0:
        return []
    tl = ctx.timeline
    return tl.sample_days(rng, lo, hi, poisson(rng, per_day * tl.weight_between(lo, hi)))


def _ramp_days(ctx: OrgContext, rng: Random, peak_per_day: float, lo: int, hi: int) -> list[int]:
    """Days whose rate rises linearly from 0 at `lo` to `peak_per_day` at `hi` (thinning)."""
    span = max(1, hi - lo)
    return [d for d in _signal_days(ctx, rng, peak_per_day, lo, hi) if rng.random() < (d - lo + 1) / span]


def _episode(ctx: OrgContext, rng: Random) -> tuple[int, int] | None:
    """A 30-90 day burst for a few loyal customers: noise that looks like a driver but is not."""
    if ctx.drift_day != NEVER or rng.random() >= NOISE_EPISODE_SHARE or ctx.last_day - ctx.first_day < 120:
        return None
    length = rng.randint(30, 90)
    start = rng.randint(ctx.first_day, ctx.last_day - length)
    return start, start + length


def _pick(rng: Random, names: tuple[str, ...], cum: tuple[float, ...]) -> str:
    u = rng.random()
    return next(n for n, c in zip(names, cum, strict=True) if u < c)


def surveys(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """survey.answered with an NPS score 0..10, falling for customers driven away by satisfaction."""
    profile = ctx.profile
    if profile is None:
        return []
    ext = ctx.org.external_id
    baseline = min(9.8, max(4.0, rng.gauss(8.5, 0.9)))
    unhappy = profile.churn_driver == "satisfaction" and ctx.drift_day != NEVER
    onset, floor = NEVER, baseline
    if unhappy:
        onset = _onset(ctx, rng)
        floor = rng.uniform(1.0, 3.5)
    end = max(onset + 1, ctx.last_day)
    days = _signal_days(ctx, rng, SURVEYS_PER_MONTH / DAYS_PER_MONTH, ctx.first_day, min(ctx.last_day, onset - 1))
    if unhappy:
        days += _signal_days(ctx, rng, SURVEYS_PER_MONTH_UNHAPPY / DAYS_PER_MONTH, onset, ctx.last_day)
    out = []
    for k, day in enumerate(days, start=1):
        respondent = ctx.anyone(rng, day)
        if respondent is None:
            continue
        mean = baseline if day < onset else baseline + (floor - baseline) * (day - onset) / (end - onset)
        nps = min(10, max(0, round(rng.gauss(mean, 1.0))))
        payload: dict[str, Any] = {"survey_id": f"NPS-{ctx.timeline.midnight[day]:%Y-%m}", "nps": nps}
        if rng.random() < 0.3:
            payload["comment"] = rng.choice(COMMENTS_HAPPY if nps >= 7 else COMMENTS_UNHAPPY)
        out.append(EventRecord(f"nps-{ext}-{k:04d}", "survey.answered", ext, respondent,
                               ctx.timeline.local_time(rng, day, ctx.utc_offset), payload))
    return out


def complaints(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """complaint.opened: rare and mild for most customers, frequent and severe before a complaints churn."""
    profile = ctx.profile
    if profile is None:
        return []
    ext = ctx.org.external_id
    rate = min(2.0, COMPLAINTS_PER_YEAR * profile.size ** 0.25) / 365.25
    calm = _signal_days(ctx, rng, rate, ctx.first_day, ctx.last_day)
    angry: list[int] = []
    if profile.churn_driver == "complaints" and ctx.drift_day != NEVER:
        angry = _ramp_days(ctx, rng, rng.uniform(1.2, 2.5) / DAYS_PER_MONTH, _onset(ctx, rng), ctx.last_day)
    elif (episode := _episode(ctx, rng)) is not None:
        angry = _signal_days(ctx, rng, 1.5 / DAYS_PER_MONTH, *episode)
    days = sorted([(d, False) for d in calm] + [(d, True) for d in angry])
    out = []
    for k, (day, is_angry) in enumerate(days, start=1):
        severity = _pick(rng, SEVERITIES, _SEVERITY_CUM_ANGRY if is_angry else _SEVERITY_CUM_CALM)
        out.append(EventRecord(f"cmp-{ext}-{k:04d}", "complaint.opened", ext, ctx.anyone(rng, day),
                               ctx.timeline.local_time(rng, day, ctx.utc_offset),
                               {"complaint_id": f"CMP-{ext}-{k:04d}", "category": rng.choice(COMPLAINT_CATEGORIES),
                                "severity": severity}))
    return out


def quotes(ctx: OrgContext, rng: Random) -> list[EventRecord]:
    """price.objection and quote.lost naming a competitor and its price gap."""
    profile = ctx.profile
    if profile is None:
        return []
    ext = ctx.org.external_id
    lo, hi = ctx.first_day, ctx.last_day
    objections = _signal_days(ctx, rng, OBJECTIONS_PER_YEAR / 365.25, lo, hi)
    lost = _signal_days(ctx, rng, QUOTES_LOST_PER_YEAR / 365.25, lo, hi)
    pressured: set[int] = set()
    if profile.churn_driver == "competitor_price" and ctx.drift_day != NEVER:
        onset = _onset(ctx, rng)
        more_objections = _ramp_days(ctx, rng, rng.uniform(0.8, 1.6) / DAYS_PER_MONTH, onset, hi)
        more_lost = _ramp_days(ctx, rng, rng.uniform(0.6, 1.2) / DAYS_PER_MONTH, onset, hi)
    elif (episode := _episode(ctx, rng)) is not None:
        more_objections = _signal_days(ctx, rng, 1.0 / DAYS_PER_MONTH, *episode)
        more_lost = _signal_days(ctx, rng, 0.5 / DAYS_PER_MONTH, *episode)
    else:
        more_objections, more_lost = [], []
    pressured.update(more_objections)
    pressured.update(more_lost)
    rival = rng.choice(COMPETITORS)
    typical_order = 15_000 * profile.value_multiplier
    items = sorted([(d, "price.objection") for d in objections + more_objections]
                   + [(d, "quote.lost") for d in lost + more_lost])
    out = []
    for k, (day, kind) in enumerate(items, start=1):
        hot = day in pressured
        competitor = rival if hot else rng.choice(COMPETITORS)
        gap = round(rng.uniform(8.0, 25.0) if hot else rng.uniform(1.0, 12.0), 1)
        at = ctx.timeline.local_time(rng, day, ctx.utc_offset)
        person = ctx.person(day, _SIGNERS)
        if kind == "price.objection":
            out.append(EventRecord(f"obj-{ext}-{k:04d}", kind, ext, person, at,
                                   {"competitor": competitor, "price_gap_pct": gap}))
        else:
            amount = max(100, round(typical_order * math.exp(rng.gauss(0.0, 0.6))))
            out.append(EventRecord(f"qlost-{ext}-{k:04d}", kind, ext, person, at,
                                   {"quote_id": f"Q-{ext}-{k:04d}", "competitor": competitor,
                                    "price_gap_pct": gap, "amount_minor": amount}))
    return out
