"""What an event sub-generator is given, and the contract it fulfils.

Sub-generators are functions of (one organization's context, a private random stream) so they can
be written, tested and added one at a time: surveys or support tickets later become new entries
in the source list without touching orders or the world.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from random import Random

from .model import EventRecord, LatentProfile, OrganizationRecord, ParticipantRecord
from .timeline import Timeline

NEVER = 1 << 30  # day index standing for "has not left"


@dataclass(frozen=True, slots=True)
class OrgContext:
    """What a sub-generator may know about one organization; day bounds are inclusive."""

    org: OrganizationRecord
    profile: LatentProfile | None
    people: list[ParticipantRecord]
    timeline: Timeline
    first_day: int
    last_day: int
    utc_offset: int
    joined_day: int  # may be negative: joined before the window
    drift_day: int  # NEVER unless the organization drifts away
    until: list[int]  # per person: first day index they no longer act (their leaving day)
    _steps: dict[tuple[str, ...], tuple[list[int], list[str | None]]] = field(
        default_factory=dict, repr=False, compare=False)

    @property
    def bounds_ts(self) -> tuple[int, int]:
        """[lower, upper) epoch seconds an event may occupy; the stream drops anything outside.

        A sub-generator must keep causes (an order) inside, or their effects (its invoice) would
        survive the cut without them; effects may spill past the end and are then dropped.
        """
        midnight = self.timeline.midnight_ts
        return midnight[self.first_day], midnight[self.last_day] + 86_400

    def activity(self, day: int) -> float:
        """Drift factor in (0, 1]: engagement fades exponentially from drift start to leaving."""
        if day <= self.drift_day:
            return 1.0
        return math.exp(-3.0 * (day - self.drift_day) / max(1, self.last_day - self.drift_day))

    def person(self, day: int, roles: tuple[str, ...]) -> str | None:
        """First person still present on `day` holding one of `roles`, in order of preference.

        The answer only changes on leaving days, so it is precomputed per role list as a step
        function and looked up by bisection: orders ask this once per event.
        """
        breaks, answers = self.person_steps(roles)
        return answers[bisect_right(breaks, day)]

    def person_steps(self, roles: tuple[str, ...]) -> tuple[list[int], list[str | None]]:
        """`person` as (breaks, answers): answers[bisect_right(breaks, day)], for hot loops."""
        steps = self._steps.get(roles)
        if steps is not None:
            return steps
        breaks = sorted({u for u in self.until if u != NEVER})
        answers: list[str | None] = []
        for day in [-1, *breaks]:
            answers.append(next((p.external_id for role in roles
                                 for p, until in zip(self.people, self.until, strict=True)
                                 if p.role == role and day < until), None))
        self._steps[roles] = breaks, answers
        return breaks, answers

    def anyone(self, rng: Random, day: int) -> str | None:
        present = [p.external_id for p, u in zip(self.people, self.until, strict=True) if day < u]
        return rng.choice(present) if present else None


EventFn = Callable[[OrgContext, Random], Iterable[EventRecord]]


@dataclass(frozen=True, slots=True)
class EventSource:
    """A named sub-generator; the name seeds its random stream, so keep names stable."""

    name: str
    generate: EventFn

