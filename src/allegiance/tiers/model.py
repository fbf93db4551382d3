"""Tier ladders and discount cards as validated data.

A ladder lists tiers from lowest to highest. A tier is held while *all* its ``requires``
criteria are met over the window; the lowest tier may require nothing (everyone's base status).
Criteria measure events (a payload amount summed = value, a quantity summed = volume, events
counted = count), tier-qualifying credits granted by rules (credits), or people: how many active
participants of the organization hold a role and/or have an event of a type (e.g. two staff who
passed certification). Unknown keys are refused; errors name the field path (``tiers[1].requires[0].at_least``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CODE = r"^[a-z0-9][a-z0-9_.-]{0,59}$"
EVENT_TYPE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
FIELD = re.compile(r"^payload(\.[A-Za-z_][A-Za-z0-9_]*)+$")
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]


class Level(StrEnum):
    ORGANIZATION = "organization"
    PARTICIPANT = "participant"


class Measure(StrEnum):
    VALUE = "value"  # Σ a payload amount (minor units) of the chosen event types
    VOLUME = "volume"  # Σ a payload quantity
    COUNT = "count"  # number of events
    CREDITS = "credits"  # Σ tier-qualifying credits from rules
    PARTICIPANTS = "participants"  # active people with a role and/or an event of a type


class WindowKind(StrEnum):
    ROLLING = "rolling"  # the last ``days`` days, today included
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    LIFETIME = "lifetime"


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    kind: WindowKind
    days: int | None = Field(default=None, ge=1, le=3660, description="rolling windows only")

    @model_validator(mode="after")
    def _days(self) -> Window:
        if (self.kind is WindowKind.ROLLING) != (self.days is not None):
            raise ValueError("a rolling window needs days; calendar and lifetime windows take none")
        return self


class Criterion(Strict):
    measure: Measure
    at_least: int = Field(ge=0, le=10**18, description="minor units for value, units for volume, a count else")
    event_types: list[Annotated[str, Field(pattern=EVENT_TYPE, max_length=100)]] = Field(default_factory=list,
                                                                                         max_length=20)
    field: str | None = Field(default=None, max_length=200, description="value/volume: e.g. payload.amount_minor")
    roles: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]] = Field(default_factory=list, max_length=20)
    window: Window | None = Field(default=None, description="overrides the ladder's window")

    @field_validator("field")
    @classmethod
    def _field(cls, value: str | None) -> str | None:
        if value is not None and not FIELD.match(value):
            raise ValueError("must be a payload path such as payload.amount_minor")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Criterion:
        if self.measure in (Measure.VALUE, Measure.VOLUME):
            if self.field is None:
                raise ValueError(f"a {self.measure.value} criterion needs field (e.g. payload.amount_minor)")
            if not self.event_types:
                raise ValueError(f"a {self.measure.value} criterion needs event_types")
        elif self.field is not None:
            raise ValueError(f"a {self.measure.value} criterion takes no field")
        if self.measure is Measure.COUNT and not self.event_types:
            raise ValueError("a count criterion needs event_types")
        if self.measure is Measure.CREDITS and self.event_types:
            raise ValueError("a credits criterion counts rule credits, not event types")
        if self.roles and self.measure is not Measure.PARTICIPANTS:
            raise ValueError("roles apply to participants criteria only")
        return self

    def signature(self) -> str:
        """What is measured, independent of the threshold: tiers sharing it share one running total."""
        return self._signature

    @cached_property
    def _signature(self) -> str:  # read for every criterion of every event a ladder measures: computed once
        types = ",".join(sorted(set(self.event_types)))
        return f"{self.measure.value}|{types}|{self.field or ''}"[:200]


class BenefitKind(StrEnum):
    CATALOG_ACCESS = "catalog_access"
    FREE_SERVICE = "free_service"
    PERSONAL_MANAGER = "personal_manager"
    PRIORITY_SUPPORT = "priority_support"
    OFF_CATALOG_ORDERING = "off_catalog_ordering"
    EVENT_INVITATION = "event_invitation"
    INFORMATION = "information"
    OTHER = "other"


class Benefit(Strict):
    code: str = Field(pattern=CODE)
    kind: BenefitKind
    name: str = Field(min_length=1, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, description="free data shown with it (a URL, a quota...)")
    roles: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]] = Field(
        default_factory=list, max_length=40, description="participant roles that see it; empty = everyone")


class Tier(Strict):
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    requires: list[Criterion] = Field(default_factory=list, max_length=20, description="all must hold")
    earn_multiplier: Decimal = Field(default=Decimal(1), ge=0, le=100, max_digits=7, decimal_places=4)
    discount_percent: Percent = Decimal(0)
    benefits: list[Benefit] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _unique_benefits(self) -> Tier:
        codes = [b.code for b in self.benefits]
        if len(set(codes)) != len(codes):
            raise ValueError("benefit codes must be unique within a tier")
        return self


class Ladder(Strict):
    """A program's status ladder, lowest tier first."""

    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    level: Level = Level.ORGANIZATION
    rollup: bool = Field(default=True, description="organization ladders: count subsidiaries and sites too")
    subsidiaries_share_status: bool = Field(
        default=True, description="a site or subsidiary enjoys the best tier of itself and the groups above it")
    window: Window = Field(default_factory=lambda: Window(kind=WindowKind.YEAR))
    review: Period | None = Field(default=None, description="when downgrades are considered; default: the "
                                                            "window's calendar period, else year")
    grace_days: int = Field(default=0, ge=0, le=366, description="days a tier is kept after a failed review")
    inherit_benefits: bool = Field(default=True, description="a tier also carries the benefits of the tiers "
                                                             "below it (a higher tier never removes them)")
    tiers: list[Tier] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> Ladder:
        codes = [t.code for t in self.tiers]
        if len(set(codes)) != len(codes):
            raise ValueError("tier codes must be unique")
        if self.level is Level.PARTICIPANT:
            for tier in self.tiers:
                if any(c.measure is Measure.PARTICIPANTS for c in tier.requires):
                    raise ValueError("participants criteria apply to organization ladders only")
        return self

    @property
    def review_period(self) -> Period:
        if self.review is not None:
            return self.review
        if self.window.kind.value in Period._value2member_map_:
            return Period(self.window.kind.value)
        return Period.YEAR

    def criteria(self) -> list[Criterion]:
        """Every distinct measure the ladder needs (one per signature and window)."""
        return list(self._criteria)

    @cached_property
    def _criteria(self) -> tuple[Criterion, ...]:  # the model is frozen: computed once per ladder
        seen: dict[tuple[str, Window | None], Criterion] = {}
        for tier in self.tiers:
            for criterion in tier.requires:
                seen.setdefault((criterion.signature(), criterion.window), criterion)
        return tuple(seen.values())

    def rank_of(self, code: str | None) -> int:
        """0-based position of a tier code; -1 for none (or a code no longer in the ladder)."""
        return next((i for i, t in enumerate(self.tiers) if t.code == code), -1)


class CardKind(StrEnum):
    FIXED = "fixed"
    CUMULATIVE = "cumulative"


class CardStep(Strict):
    from_amount: int = Field(ge=0, le=10**18, description="cumulative purchases (minor units) from which it applies")
    percent: Percent


class DiscountCard(Strict):
    """An organization's discount card: a fixed percentage, or one that grows with cumulative purchases."""

    kind: CardKind
    percent: Percent | None = Field(default=None, description="fixed cards")
    steps: list[CardStep] = Field(default_factory=list, max_length=50, description="cumulative cards, ascending")
    event_types: list[Annotated[str, Field(pattern=EVENT_TYPE, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="cumulative cards: the purchases that count")
    field: str = Field(default="payload.amount_minor", max_length=200)
    valid_from: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")
    valid_until: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")
    note: str = Field(default="", max_length=500)

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        if not FIELD.match(value):
            raise ValueError("must be a payload path such as payload.amount_minor")
        return value

    @model_validator(mode="after")
    def _shape(self) -> DiscountCard:
        if self.kind is CardKind.FIXED:
            if self.percent is None:
                raise ValueError("a fixed card needs percent")
            if self.steps:
                raise ValueError("a fixed card takes no steps")
        else:
            if not self.steps:
                raise ValueError("a cumulative card needs steps")
            if not self.event_types:
                raise ValueError("a cumulative card needs event_types (the purchases that count)")
            if self.percent is not None:
                raise ValueError("a cumulative card takes its percent from steps")
            amounts = [s.from_amount for s in self.steps]
            if amounts != sorted(set(amounts)):
                raise ValueError("steps must be in strictly ascending order of from_amount")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self
