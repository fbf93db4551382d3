"""Pure tier logic: windows, qualification, progress, benefits by role, reviews and discount cards.

Nothing here reads a clock or a database: every function takes the totals and times it needs,
so the same code answers an event (upgrade at once), the review job (downgrade at period end,
after the grace period) and the "how far to the next tier" question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from allegiance.tiers.model import (
    Benefit,
    CardKind,
    Criterion,
    DiscountCard,
    Ladder,
    Period,
    Window,
    WindowKind,
)

MeasureKey = tuple[str, Window | None]  # (criterion signature, its own window or None = the ladder's)


def key_of(criterion: Criterion) -> MeasureKey:
    return criterion.signature(), criterion.window


# -- windows and periods -------------------------------------------------------------------------
def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def period_start(period: Period | WindowKind, day: date) -> date:
    """First day of the calendar month, quarter or year containing ``day``."""
    kind = period.value
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return _quarter_start(day)
    if kind == "year":
        return date(day.year, 1, 1)
    raise ValueError(f"{kind} is not a calendar period")


def window_days(window: Window, day: date) -> tuple[date | None, date]:
    """The days (first, last; both included) a window covers when evaluated on ``day``; None = since ever."""
    if window.kind is WindowKind.LIFETIME:
        return None, day
    if window.kind is WindowKind.ROLLING:
        assert window.days is not None
        return day - timedelta(days=window.days - 1), day
    return period_start(window.kind, day), day


def last_boundary(period: Period, at: datetime) -> datetime:
    """The most recent period boundary at or before ``at`` (midnight UTC opening the current period)."""
    start = period_start(period, utc_day(at))
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


def utc_day(at: datetime) -> date:
    """The UTC day a moment falls on: daily totals are kept per UTC day, whatever offset an event was sent with."""
    return at.astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- qualification -------------------------------------------------------------------------------
def met(criterion: Criterion, values: Mapping[MeasureKey, int]) -> bool:
    return values.get(key_of(criterion), 0) >= criterion.at_least


def qualify(ladder: Ladder, values: Mapping[MeasureKey, int]) -> int:
    """The rank (0 = lowest) of the highest tier whose every criterion is met; -1 if none is.

    Monotone: raising any total never lowers the result, because a tier met stays met."""
    best = -1
    for rank, tier in enumerate(ladder.tiers):
        if all(met(c, values) for c in tier.requires):
            best = rank
    return best


@dataclass(frozen=True)
class Gap:
    measure: str
    event_types: tuple[str, ...]
    roles: tuple[str, ...]
    required: int
    current: int
    remaining: int


@dataclass(frozen=True)
class Progress:
    tier: str
    name: str
    criteria: tuple[Gap, ...]


def progress(ladder: Ladder, values: Mapping[MeasureKey, int], rank: int) -> Progress | None:
    """What the next tier above ``rank`` asks for, criterion by criterion, and how far each is."""
    if rank + 1 >= len(ladder.tiers):
        return None
    tier = ladder.tiers[rank + 1]
    gaps = []
    for criterion in tier.requires:
        current = values.get(key_of(criterion), 0)
        gaps.append(Gap(criterion.measure.value, tuple(criterion.event_types), tuple(criterion.roles),
                        criterion.at_least, current, max(0, criterion.at_least - current)))
    return Progress(tier.code, tier.name, tuple(gaps))


# -- benefits ------------------------------------------------------------------------------------
def benefits_at(ladder: Ladder, rank: int) -> list[Benefit]:
    """A tier's benefits; with ``inherit_benefits`` also those of the tiers below (a higher tier's
    benefit of the same code replaces the lower one, so only an explicit change removes one)."""
    if rank < 0:
        return []
    tiers = ladder.tiers[: rank + 1] if ladder.inherit_benefits else [ladder.tiers[rank]]
    chosen: dict[str, Benefit] = {}
    for tier in tiers:
        for benefit in tier.benefits:
            chosen[benefit.code] = benefit
    return list(chosen.values())


def visible_to(benefits: Sequence[Benefit], role: str | None, *, everything: bool = False) -> list[Benefit]:
    """The benefits a person of ``role`` may see; ``everything`` for operators and org-wide views."""
    if everything:
        return list(benefits)
    return [b for b in benefits if not b.roles or (role is not None and role in b.roles)]


# -- reviews: downgrades only at period end, after the grace period -------------------------------
class Verdict(StrEnum):
    KEEP = "keep"
    UPGRADE = "upgrade"
    WARN = "warn"  # failed the period's review: will fall to ``target`` at ``due`` unless it requalifies
    DOWNGRADE = "downgrade"


@dataclass(frozen=True)
class Review:
    verdict: Verdict
    target: int
    due: datetime | None = None
    reviewed_through: datetime | None = None


@dataclass(frozen=True)
class StatusFacts:
    rank: int
    since: datetime
    reviewed_through: datetime | None = None
    pending_due: datetime | None = None


def review(facts: StatusFacts, *, now: datetime, boundary: datetime, qualified_now: int, qualified_at_end: int,
           grace_days: int) -> Review:
    """Decide one status at ``now``; ``boundary`` is the latest period end, ``qualified_at_end``
    the tier the period that ended there earned.

    Upgrades happen at once. A tier is only lost at a period end it was held across, when the
    period just ended did not earn it; it is kept ``grace_days`` after that end (a warning is
    due), and requalifying meanwhile cancels the downgrade. Running it again changes nothing."""
    if qualified_now > facts.rank:
        return Review(Verdict.UPGRADE, qualified_now)
    if qualified_now >= facts.rank or facts.since >= boundary:
        return Review(Verdict.KEEP, facts.rank, reviewed_through=boundary if facts.since < boundary else None)
    if facts.reviewed_through is not None and facts.reviewed_through >= boundary and facts.pending_due is None:
        return Review(Verdict.KEEP, facts.rank)
    if qualified_at_end >= facts.rank:
        return Review(Verdict.KEEP, facts.rank, reviewed_through=boundary)
    target = max(qualified_at_end, qualified_now)
    due = boundary + timedelta(days=grace_days)
    if now >= due:
        return Review(Verdict.DOWNGRADE, target, due, reviewed_through=boundary)
    return Review(Verdict.WARN, target, due)


# -- discount cards ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Discount:
    """The discount an organization gets now, where it comes from, and the next step of its card."""

    percent: Decimal
    source: str | None  # "card" | "tier" | None
    tier: str | None = None
    card_kind: str | None = None
    cumulative: int | None = None  # cumulative purchases counted by the card (minor units)
    next_percent: Decimal | None = None
    next_at: int | None = None  # cumulative amount at which the next step applies
    remaining: int | None = None  # how much more to buy to reach it
    steps: list[dict[str, str | int]] = field(default_factory=list)


def card_valid(card: DiscountCard, day: date) -> bool:
    if card.valid_from and day.isoformat() < card.valid_from:
        return False
    return not (card.valid_until and day.isoformat() > card.valid_until)


def card_percent(card: DiscountCard, cumulative: int) -> tuple[Decimal, Decimal | None, int | None]:
    """(current %, next step %, amount at which it applies) for a card and cumulative purchases."""
    if card.kind is CardKind.FIXED:
        assert card.percent is not None
        return card.percent, None, None
    current = Decimal(0)
    for step in card.steps:
        if cumulative >= step.from_amount:
            current = step.percent
        else:
            return current, step.percent, step.from_amount
    return current, None, None


def discount(card: DiscountCard | None, cumulative: int, day: date, tier_code: str | None,
             tier_percent: Decimal) -> Discount:
    """The better of the organization's card and its tier's discount (they do not stack)."""
    card_now, next_percent, next_at = (Decimal(0), None, None)
    active = card is not None and card_valid(card, day)
    if card is not None and active:
        card_now, next_percent, next_at = card_percent(card, cumulative)
    steps = [{"from_amount": s.from_amount, "percent": str(s.percent)} for s in card.steps] if card else []
    common = {"tier": tier_code, "card_kind": card.kind.value if card and active else None,
              "cumulative": cumulative if card and active and card.kind is CardKind.CUMULATIVE else None,
              "next_percent": next_percent, "next_at": next_at,
              "remaining": None if next_at is None else next_at - cumulative, "steps": steps}
    if active and card_now >= tier_percent and card_now > 0:
        return Discount(card_now, "card", **common)  # type: ignore[arg-type]
    if tier_percent > 0:
        return Discount(tier_percent, "tier", **common)  # type: ignore[arg-type]
    return Discount(card_now, "card" if active else None, **common)  # type: ignore[arg-type]


def read_amount(payload: Mapping[str, object], path: str) -> int | None:
    """An integer at ``payload.a.b`` of an event, or None if absent or not an integer."""
    node: object = {"payload": payload}
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | str):
        return None
    try:
        return int(node)
    except ValueError:
        return None
