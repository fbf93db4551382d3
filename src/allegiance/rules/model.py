"""Earning rules as validated data: what an operator writes (YAML, JSON, API) and what is stored.

A *rule set* is the whole earning policy of a program at one version. It is edited as a draft,
validated on save (unknown fields and operators are refused with the path of the bad field),
and activated as one audited act; events are always evaluated against the active version, and
every award records the version and rule that produced it, so a later change never rewrites
history.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from allegiance.ledger.policy import AwardSplit

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
# Where a condition or formula may read: the event payload, the organization, the participant,
# the current line item, or the event itself.
FIELD = re.compile(r"^(payload|organization|participant|line|event)(\.[A-Za-z0-9_]+)+$")
ROOTS_OUTSIDE_LINES = ("payload.", "organization.", "participant.", "event.")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EXISTS = "exists"
    CONTAINS = "contains"  # a list field contains the value, or a string contains the substring


class Condition(Strict):
    """``field op value``: e.g. ``{field: payload.channel, op: eq, value: online}``."""

    field: str
    op: Op
    value: Any = None

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        if not FIELD.match(value):
            raise ValueError("must be a dotted path starting with payload., organization., participant., line. "
                             "or event.")
        return value

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in (Op.IN, Op.NOT_IN) and not isinstance(self.value, list):
            raise ValueError(f"op {self.op.value} needs a list value")
        if self.op in (Op.GT, Op.GTE, Op.LT, Op.LTE) and (
                isinstance(self.value, bool) or not isinstance(self.value, int | float | Decimal | str)):
            raise ValueError(f"op {self.op.value} needs a number (or an ISO date string)")
        if self.op is Op.EXISTS and not isinstance(self.value, bool | None):
            raise ValueError("op exists takes true/false (default true)")
        if self.op not in (Op.EXISTS,) and self.value is None:
            raise ValueError(f"op {self.op.value} needs a value")
        return self


class Lines(Strict):
    """Evaluate the action once per line item of ``path`` (a list in the payload) that matches."""

    path: str = "payload.lines"
    conditions: list[Condition] = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("payload.") or not FIELD.match(value):
            raise ValueError("must be a payload path, e.g. payload.lines")
        return value


# -- actions ("get B") ------------------------------------------------------------------------

class Rounding(StrEnum):
    DOWN = "down"
    HALF_UP = "half_up"


class _Award(Strict):
    unit: str | None = Field(default=None, description="unit code; default: the program's default unit")
    rounding: Rounding = Rounding.DOWN


class Fixed(_Award):
    kind: Literal["fixed"]
    amount: int = Field(gt=0)


class Percent(_Award):
    """``percent`` of a money field, converted to the award unit by ``rate`` (award units per
    money minor unit; 1 when the award unit is the same currency, e.g. store credit)."""

    kind: Literal["percent"]
    percent: Decimal = Field(gt=0, le=1000)
    of: str = "payload.amount_minor"
    rate: Decimal = Field(default=Decimal(1), gt=0)

    @field_validator("of")
    @classmethod
    def _of(cls, value: str) -> str:
        if not FIELD.match(value):
            raise ValueError("must be a field path, e.g. payload.amount_minor or line.amount_minor")
        return value


class PerUnit(_Award):
    """``amount`` for every unit of a quantity field: $1 per recycled cartridge."""

    kind: Literal["per_unit"]
    amount: int = Field(gt=0)
    per: str = "payload.quantity"

    @field_validator("per")
    @classmethod
    def _per(cls, value: str) -> str:
        if not FIELD.match(value):
            raise ValueError("must be a field path, e.g. payload.quantity or line.quantity")
        return value


class Step(Strict):
    from_quantity: int = Field(ge=0)
    amount: int = Field(gt=0, description="per unit, from this cumulative quantity on")


class Stepped(_Award):
    """Per-unit amounts that rise with the cumulative quantity of the period (per organization)."""

    kind: Literal["stepped"]
    per: str = "payload.quantity"
    period: Literal["month", "quarter", "year", "lifetime"] = "year"
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Stepped:
        starts = [s.from_quantity for s in self.steps]
        if starts != sorted(set(starts)) or starts[0] != 0:
            raise ValueError("steps must start at from_quantity 0 and rise strictly")
        return self


class Multiplier(Strict):
    """Multiplies what the other (non-multiplier) rules award for the same event: double points."""

    kind: Literal["multiplier"]
    factor: Decimal = Field(gt=0, le=100)
    units: list[str] = Field(default_factory=list, description="empty = every unit")


class TierCredit(Strict):
    """Tier-qualifying credit: counts towards tier status, is not spendable."""

    kind: Literal["tier_credit"]
    amount: int | None = Field(default=None, gt=0)
    percent: Decimal | None = Field(default=None, gt=0)
    of: str = "payload.amount_minor"

    @model_validator(mode="after")
    def _one(self) -> TierCredit:
        if (self.amount is None) == (self.percent is None):
            raise ValueError("give exactly one of amount or percent")
        return self


class Benefit(Strict):
    """A non-monetary benefit: a free extra service, concierge access, an entitlement to pass on."""

    kind: Literal["benefit"]
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")
    description: str = Field(min_length=1, max_length=300)
    quantity: int = Field(default=1, gt=0)
    valid_days: int | None = Field(default=None, gt=0)


class Clawback(Strict):
    """On a return or cancellation: take back, proportionally, what ``rules`` awarded for the
    original event identified by the same ``key`` (never more than was awarded)."""

    kind: Literal["clawback"]
    rules: list[str] = Field(min_length=1)
    key: str = "payload.order_id"
    amount: str | None = Field(default="payload.amount_minor",
                               description="the returned amount; null = cancel everything")


Action = Annotated[Fixed | Percent | PerUnit | Stepped | Multiplier | TierCredit | Benefit | Clawback,
                   Field(discriminator="kind")]
AWARDING = ("fixed", "percent", "per_unit", "stepped")


# -- limits ------------------------------------------------------------------------------------

class CapScope(StrEnum):
    PARTICIPANT = "participant"
    ORGANIZATION = "organization"
    RULE = "rule"  # the rule's whole budget across the program


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    LIFETIME = "lifetime"


class Cap(Strict):
    """At most ``max_amount`` (in ``unit``) and/or ``max_count`` awards per subject and period.

    A cap named in the rule set applies to the rules it lists (empty = every awarding rule of
    its unit). An award is cut down to what the cap still allows (the cut is reported as capped);
    a count cap refuses the award once reached. Enforced under a row lock, never count-then-insert."""

    code: str
    scope: CapScope = CapScope.PARTICIPANT
    period: Period = Period.MONTH
    unit: str | None = None
    max_amount: int | None = Field(default=None, gt=0)
    max_count: int | None = Field(default=None, gt=0)
    rules: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Cap:
        if self.max_amount is None and self.max_count is None:
            raise ValueError("give max_amount and/or max_count")
        if not CODE.match(self.code):
            raise ValueError("code: lower-case letters, digits, _ . -")
        return self


class Recipient(StrEnum):
    SPLIT = "split"  # the program's (or the rule's) award split between company pool and person
    ORGANIZATION = "organization"
    PARTICIPANT = "participant"


class Timing(Strict):
    """Immediate (default), or pending until a later event with the same key or a number of days."""

    until_event: str | None = Field(default=None, description="event type that releases it, e.g. invoice.paid")
    key: str = Field(default="payload.order_id", description="field identifying the original in both events")
    after_days: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Timing:
        if self.until_event is not None and self.after_days is not None:
            raise ValueError("give until_event or after_days, not both")
        return self

    @property
    def immediate(self) -> bool:
        return self.until_event is None and self.after_days is None


class Goal(Strict):
    """Why the rule exists: required to activate (a rule nobody can evaluate is a cost)."""

    behavior: str = Field(min_length=3, max_length=300)
    metric: str = Field(min_length=2, max_length=200)
    expected_uplift: str = Field(min_length=1, max_length=100)


class Rule(Strict):
    code: str
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    trigger: str = Field(description="event type, e.g. order.placed")
    conditions: list[Condition] = Field(default_factory=list)
    lines: Lines | None = None
    action: Action
    recipient: Recipient = Recipient.SPLIT
    split: AwardSplit | None = Field(default=None, description="overrides the program's award split")
    caps: list[str] = Field(default_factory=list, description="codes of rule-set caps that apply")
    priority: int = Field(default=100, description="lower runs first")
    group: str | None = Field(default=None, description="rules of one exclusive group: only the first that fires")
    exclusive: bool = Field(default=False, description="stop evaluating its group after this rule fires")
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    timing: Timing = Field(default_factory=Timing)
    key: str | None = Field(default=None, description="field identifying the event for clawbacks, e.g. "
                                                       "payload.order_id")
    tier_multiplier: bool = Field(default=True, description="apply the organization's tier earn multiplier")
    enabled: bool = True
    goal: Goal | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError("lower-case letters, digits, _ . - (max 80)")
        return value

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", value):
            raise ValueError("an event type, e.g. order.placed")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        for where, value in (("valid_from", self.valid_from), ("valid_to", self.valid_to)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{where} must include a time zone offset")
        uses_line = any(c.field.startswith("line.") for c in self.conditions) or any(
            getattr(self.action, name, "").startswith("line.") for name in ("of", "per"))
        if uses_line and self.lines is None:
            raise ValueError("line.* fields need a `lines` section")
        if self.action.kind in ("multiplier", "clawback", "benefit") and self.caps:
            raise ValueError(f"caps apply to awards, not to a {self.action.kind} action")
        if self.action.kind == "stepped" and self.lines is not None:
            raise ValueError("a stepped action counts the event's quantity; use per: payload.<field>")
        return self


class Measure(Strict):
    """What a contest ranks by: the sum of a payload field (or the number) of some events."""

    event_types: list[str] = Field(min_length=1)
    field: str | None = Field(default="payload.amount_minor", description="null = count the events")

    @field_validator("field")
    @classmethod
    def _field(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("payload.") or not FIELD.match(value)):
            raise ValueError("must be a payload path, e.g. payload.amount_minor")
        return value


Prize = Annotated[Fixed | Benefit, Field(discriminator="kind")]


class Contest(Strict):
    """Rank organizations over a period and reward the top N when the period closes (Allbiz:
    the quarter's 10 best dealers get ad packages and ranking boosts to resell)."""

    code: str
    name: str = Field(min_length=1, max_length=200)
    period: Literal["week", "month", "quarter", "year"] = "quarter"
    measure: Measure
    conditions: list[Condition] = Field(default_factory=list, description="who competes (organization fields)")
    top: int = Field(gt=0, le=10_000)
    prizes: list[Prize] = Field(min_length=1)
    goal: Goal | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError("lower-case letters, digits, _ . - (max 80)")
        return value


class RuleSet(Strict):
    """A program's whole earning policy. ``version`` is assigned by the store."""

    rules: list[Rule] = Field(default_factory=list)
    caps: list[Cap] = Field(default_factory=list)
    contests: list[Contest] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> RuleSet:
        codes = [r.code for r in self.rules]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"rule codes must be unique: {duplicates}")
        cap_codes = [c.code for c in self.caps]
        if len(set(cap_codes)) != len(cap_codes):
            raise ValueError("cap codes must be unique")
        contest_codes = [c.code for c in self.contests]
        if len(set(contest_codes)) != len(contest_codes):
            raise ValueError("contest codes must be unique")
        known = set(codes)
        for cap in self.caps:
            unknown = set(cap.rules) - known
            if unknown:
                raise ValueError(f"cap {cap.code!r} names unknown rules {sorted(unknown)}")
        for rule in self.rules:
            missing = set(rule.caps) - set(cap_codes)
            if missing:
                raise ValueError(f"rule {rule.code!r} names unknown caps {sorted(missing)}")
            if rule.action.kind == "clawback":
                unknown = set(rule.action.rules) - known
                if unknown:
                    raise ValueError(f"rule {rule.code!r} claws back unknown rules {sorted(unknown)}")
        return self

    def rule(self, code: str) -> Rule | None:
        return next((r for r in self.rules if r.code == code), None)

    def contest(self, code: str) -> Contest | None:
        return next((c for c in self.contests if c.code == code), None)


def parse_rule_set(document: dict[str, Any]) -> RuleSet:
    """Validate a rule-set document; raises pydantic's ValidationError (callers name the path)."""
    return RuleSet.model_validate(document)
