"""Rewards vocabulary: catalog items, approval policies and the redemption record.

Costs are integers in the unit's minor scale (``PTS/0``: points); a face value (what a charity
receives per item, what a gift is worth in money) is an integer in a currency's minor units.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,59}$")
UNIT = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$", description="One of the program's unit codes")]
LOCALE = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=20)]
MAX_AMOUNT = 10**15


class Category(StrEnum):
    HOBBY_LEISURE = "hobby_leisure"
    BUSINESS_SERVICES = "business_services"
    TRAINING_CONFERENCES = "training_conferences"
    TRAVEL = "travel"
    VOUCHERS = "vouchers"
    CHARITY = "charity"
    FREE_SERVICES = "free_services"
    GOODS = "goods"
    OTHER = "other"


class Source(StrEnum):
    """Whose balance pays: the requester's own account, or the organization's pool."""

    PERSONAL = "personal"
    POOL = "pool"


class Step(StrEnum):
    """An approval a redemption may wait for."""

    MANAGER = "manager"  # the organization's admin
    OPERATOR = "operator"  # the program's operator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaceValue(Strict):
    """Money per item: a charity item's donation, a gift's worth for the register."""

    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217")
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="minor units (cents) per item")


class Availability(Strict):
    """Who may see and redeem an item; an empty list means everyone."""

    tiers: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(default_factory=list, max_length=100)
    roles: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(default_factory=list, max_length=100)
    organization_kinds: list[Annotated[str, Field(min_length=1, max_length=20)]] = Field(
        default_factory=list, max_length=20)
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = Field(default_factory=list, max_length=300)


Names = Annotated[dict[LOCALE, Annotated[str, Field(min_length=1, max_length=300)]],
                  Field(min_length=1, max_length=50, description="locale → name; the first one is the fallback")]
Cost = Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="per item, in the unit's minor scale")]
Stock = Annotated[int, Field(ge=0, le=MAX_AMOUNT, description="items left; null = unlimited")]
ImageUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://\S+$")]
PartnerId = Annotated[int, Field(ge=1, le=2**63 - 1, description="the coalition partner supplying it")]


class CatalogItemCreate(Strict):
    code: str = Field(min_length=1, max_length=60)
    names: Names
    description: str = Field(default="", max_length=4000)
    category: Category
    unit: UNIT | None = Field(default=None, description="null = the program's default unit")
    cost: Cost
    stock: Stock | None = None
    availability: Availability = Field(default_factory=Availability)
    image_url: ImageUrl | None = None
    partner_id: PartnerId | None = None
    face_value: FaceValue | None = None
    active: bool = True

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError("use lower-case letters, digits, '_', '.', '-' (starting with a letter or digit)")
        return value

    @model_validator(mode="after")
    def _charity_has_value(self) -> CatalogItemCreate:
        if self.category is Category.CHARITY and self.face_value is None:
            raise ValueError("a charity item needs face_value: what the cause receives per item")
        return self


class CatalogItemUpdate(Strict):
    """A PATCH: only the fields sent change. The unit is fixed once items may have been redeemed."""

    names: Names | None = None
    description: str | None = Field(default=None, max_length=4000)
    category: Category | None = None
    cost: Cost | None = None
    stock: Stock | None = None
    availability: Availability | None = None
    image_url: ImageUrl | None = None
    partner_id: PartnerId | None = None
    face_value: FaceValue | None = None
    active: bool | None = None


def localized(names: dict[str, str], locale: str | None) -> str:
    """The name in ``locale``, else its language (``de`` for ``de-AT``), else the first one given."""
    if locale:
        if locale in names:
            return names[locale]
        language = locale.split("-")[0]
        if language in names:
            return names[language]
    return next(iter(names.values()))


class ApprovalPolicy(Strict):
    """A program's redemption policy. Thresholds and caps are per unit code, in its minor scale."""

    pool_spenders: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=lambda: ["org_admin"],
        description="who may spend the company pool: 'org_admin' (org admin keys and participants flagged "
                    "is_org_admin) and/or participant role codes; operators always may")
    manager_approval_above: dict[UNIT, Annotated[int, Field(ge=0, le=MAX_AMOUNT)]] = Field(
        default_factory=dict, description="a personal redemption costing more than this needs the org admin")
    approval_categories: list[Category] = Field(default_factory=list,
                                                description="categories that always need the org admin")
    operator_approval: bool = False
    annual_cap: dict[UNIT, Annotated[int, Field(gt=0, le=MAX_AMOUNT)]] = Field(
        default_factory=dict, description="per recipient and calendar year: total value of gifts (not donations)")
    hold_days: int = Field(default=30, ge=1, le=366, description="how long a redemption may wait before it expires")
    quote_days: int = Field(default=14, ge=1, le=366, description="how long a concierge quote stays valid")


class PolicyOverride(Strict):
    """An organization's override: each field given replaces the program's; absent fields inherit."""

    pool_spenders: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = None
    manager_approval_above: dict[UNIT, Annotated[int, Field(ge=0, le=MAX_AMOUNT)]] | None = None
    approval_categories: list[Category] | None = None
    operator_approval: bool | None = None
    annual_cap: dict[UNIT, Annotated[int, Field(gt=0, le=MAX_AMOUNT)]] | None = None


class RedemptionStatus(StrEnum):
    REQUESTED = "requested"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset({RedemptionStatus.FULFILLED, RedemptionStatus.CANCELLED, RedemptionStatus.REJECTED,
                   RedemptionStatus.EXPIRED})


class ConciergeStatus(StrEnum):
    OPEN = "open"
    QUOTED = "quoted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


Id = Annotated[int, Field(ge=1, le=2**63 - 1)]


class RedemptionRequest(Strict):
    item_id: Id
    quantity: int = Field(default=1, ge=1, le=10_000)
    source: Source = Source.PERSONAL
    participant_id: Id | None = Field(default=None, description="personal: whose account (default: the caller)")
    organization_id: Id | None = Field(default=None, description="pool: whose pool (default: the caller's)")
    recipient_participant_id: Id | None = Field(default=None, description="a colleague who receives it")
    delivery: str = Field(default="", max_length=2000, description="where and how to deliver")


class DonationRequest(Strict):
    cause_id: Id = Field(description="a catalog item of category charity")
    points: int = Field(gt=0, le=MAX_AMOUNT, description="a multiple of the cause's cost")
    source: Source = Source.PERSONAL
    participant_id: Id | None = None
    organization_id: Id | None = None


class ConciergeAsk(Strict):
    description: str = Field(min_length=3, max_length=4000)
    source: Source = Source.PERSONAL
    participant_id: Id | None = None
    organization_id: Id | None = None
    recipient_participant_id: Id | None = None
    category: Category = Category.OTHER


class ConciergeQuote(Strict):
    cost: int = Field(gt=0, le=MAX_AMOUNT)
    unit: UNIT | None = None
    category: Category | None = None
    note: str = Field(default="", max_length=2000)
