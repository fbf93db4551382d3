"""Compose the world and the event sub-generators into a streaming synthetic program.

Each sub-generator sees one organization at a time and draws from its own random stream, seeded
by (seed, sub-generator name, organization). That gives three properties the rest of the project
relies on: output is identical for the same config; events stream organization by organization,
so memory is bounded by the largest organization, not the dataset; and adding a sub-generator
(surveys, support tickets, latent churn drivers) leaves every existing event unchanged.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from operator import itemgetter
from random import Random

from ._drivers import complaints, quotes, surveys
from .context import NEVER, EventSource, OrgContext
from .generator_activity import contracts, departures, recycling, training
from .generator_orders import orders
from .model import EventRecord, OrganizationRecord, SynthConfig, SyntheticProgram
from .names import COUNTRIES
from .world import World, build_world

_ONE_DAY = dt.timedelta(days=1)


def default_sources() -> tuple[EventSource, ...]:
    """The built-in sub-generators, in the order their events are merged."""
    return (
        EventSource("orders", orders),
        EventSource("contracts", contracts),
        EventSource("training", training),
        EventSource("recycling", recycling),
        EventSource("departures", departures),
        # Latent churn drivers' signals (and their background noise): NPS, complaints, competitors.
        EventSource("surveys", surveys),
        EventSource("complaints", complaints),
        EventSource("quotes", quotes),
    )


def _context(world: World, org: OrganizationRecord) -> OrgContext | None:
    tl = world.timeline
    first = tl.index(max(org.joined_on, tl.start))
    last = tl.index(min(org.left_on or tl.end, tl.end))
    if first > last:
        return None
    profile = world.latent.get(org.external_id)
    drift = profile.drift_start if profile else None
    people = world.members[org.external_id]
    return OrgContext(
        org=org,
        profile=profile,
        people=people,
        timeline=tl,
        first_day=first,
        last_day=last,
        utc_offset=COUNTRIES[org.country][2],
        joined_day=tl.index(org.joined_on),
        drift_day=tl.index(drift) if drift else NEVER,
        until=[tl.index(p.left_on) if p.left_on else NEVER for p in people],
    )


def _stream(world: World, sources: Sequence[EventSource]) -> Iterator[EventRecord]:
    seed = world.config.seed
    midnight = world.timeline.midnight
    by_time = itemgetter(EventRecord._fields.index("occurred_at"))
    for org in world.organizations:
        ctx = _context(world, org)
        if ctx is None:
            continue
        # Sub-generators may place events past the edges (a payment after the customer left, an
        # evening order that is already tomorrow in UTC); the world's bounds win.
        lower, upper = midnight[ctx.first_day], midnight[ctx.last_day] + _ONE_DAY
        batch: list[EventRecord] = []
        for source in sources:
            rng = Random(f"allegiance-synthetic/{seed}/{source.name}/{org.external_id}")
            batch.extend(source.generate(ctx, rng))
        batch.sort(key=by_time)
        if batch and (batch[0].occurred_at < lower or batch[-1].occurred_at >= upper):
            batch = batch[bisect_left(batch, lower, key=by_time):
                          bisect_left(batch, upper, key=by_time)]
        yield from batch


def generate(config: SynthConfig, *, sources: Sequence[EventSource] | None = None,
             ) -> SyntheticProgram:
    """Build the world now; events are generated afresh, lazily, on each `events()` call."""
    world = build_world(config)
    chosen = tuple(sources) if sources is not None else default_sources()
    return SyntheticProgram(
        config=config,
        organizations=world.organizations,
        participants=world.participants,
        latent=world.latent,
        event_source=lambda: _stream(world, chosen),
    )
