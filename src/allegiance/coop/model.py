"""Co-op marketing funds (MDF) as validated data: the program's co-op settings, claims and plans.

The fund itself is no new concept: it is the partner organization's pool account in the co-op unit
the program declares (e.g. ``MDF``, kind ``coop_fund``). Rules accrue into it (a ``percent`` action
with that unit and ``recipient: organization``), operators allocate into it, and settled claims are
paid out of it — every movement a ledger transaction.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

UNIT = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
ACTIVITY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_PROOF_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/webp")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- reimbursement formulas ---------------------------------------------------------------------

class FixedShare(Strict):
    """The same share of the cost whatever the material shows."""

    kind: Literal["fixed_share"]
    percent: Decimal = Field(gt=0, le=100)


class SharePerBrand(Strict):
    """BWT: ``percent`` when only our brand is shown, divided by the number of brands shown."""

    kind: Literal["share_per_brand"]
    percent: Decimal = Field(gt=0, le=100)


class BrandRow(Strict):
    brands: int = Field(ge=1, le=100, description="from this many brands shown on")
    percent: Decimal = Field(ge=0, le=100)


class BrandTable(Strict):
    """A share per number of brands shown: the row with the largest ``brands`` not above the count."""

    kind: Literal["brand_table"]
    rows: list[BrandRow] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> BrandTable:
        counts = [r.brands for r in self.rows]
        if counts != sorted(set(counts)) or counts[0] != 1:
            raise ValueError("rows must start at brands 1 and rise strictly")
        return self


Formula = Annotated[FixedShare | SharePerBrand | BrandTable, Field(discriminator="kind")]


class OverLimit(StrEnum):
    REFUSE = "refuse"  # a claim past the yearly budget or the fund balance is refused with the reason
    CAP = "cap"  # it is paid what is left (and refused only when nothing is left)


class CoopSettings(Strict):
    """A program's co-op terms, set by an operator (``PUT /api/v1/coop/settings``)."""

    unit: str = Field(description="the co-op fund unit, one of the program's units, e.g. MDF")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="currency of claimed costs, e.g. EUR")
    rate: Decimal = Field(default=Decimal(1), gt=0,
                          description="fund minor units per currency minor unit (1 when the fund is in that currency)")
    formula: Formula
    own_brands: list[str] = Field(default_factory=list, description="our brands; a claim must show one of them")
    yearly_budget: int | None = Field(default=None, gt=0,
                                      description="per organization and calendar year of the activity, in fund "
                                                  "minor units: approved plus settled reimbursements")
    over_limit: OverLimit = OverLimit.REFUSE
    require_plan: bool = Field(default=False, description="a claim must name a pre-approved plan")
    activity_types: list[str] = Field(default_factory=lambda: ["outdoor", "print", "online", "exhibition",
                                                               "local_campaign"], min_length=1)
    hold_days: int = Field(default=365, ge=1, le=3 * 365, description="how long an approval reserves the fund")
    proof_max_bytes: int = Field(default=1_000_000, ge=1_000, le=1_400_000)
    proof_types: list[str] = Field(default_factory=lambda: list(DEFAULT_PROOF_TYPES), min_length=1)
    max_proofs: int = Field(default=10, ge=1, le=50)

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        if not UNIT.match(value):
            raise ValueError("an upper-case unit code, e.g. MDF")
        return value

    @field_validator("activity_types")
    @classmethod
    def _activities(cls, value: list[str]) -> list[str]:
        for item in value:
            if not ACTIVITY.match(item):
                raise ValueError(f"{item!r}: lower-case letters, digits and _")
        return value

    @field_validator("own_brands")
    @classmethod
    def _brands(cls, value: list[str]) -> list[str]:
        return normalized_brands(value)


def normalized_brands(brands: list[str]) -> list[str]:
    """Brands as shown, stripped, each once (compared without case): ``["BWT", "bwt "]`` is one brand."""
    seen: dict[str, str] = {}
    for brand in brands:
        name = " ".join(brand.split())
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())


def invoice_key(number: str) -> str:
    """What makes two invoice numbers the same: case, spaces and separators do not count."""
    return re.sub(r"[\s\-_/.]", "", number).upper()


# -- claims and plans -----------------------------------------------------------------------------

class ClaimStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    SETTLED = "settled"
    REJECTED = "rejected"


class PlanStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class ClaimCreate(Strict):
    organization_id: int | None = Field(default=None, ge=1, description="default: the caller's organization")
    activity_type: str
    description: str = Field(default="", max_length=2000)
    cost: int = Field(gt=0, lt=10**13, description="the activity's cost in minor units of the currency")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    activity_date: date
    invoice_number: str = Field(min_length=1, max_length=60)
    brands: list[str] = Field(min_length=1, max_length=50, description="every manufacturer shown in the material")
    plan_id: int | None = Field(default=None, ge=1)
    draft: bool = Field(default=False, description="keep it as a draft (attach proofs, submit later)")

    @field_validator("brands")
    @classmethod
    def _brands(cls, value: list[str]) -> list[str]:
        for brand in value:
            if not brand.strip() or len(brand) > 100:
                raise ValueError("each brand is 1-100 characters")
        return value

    @field_validator("invoice_number")
    @classmethod
    def _invoice(cls, value: str) -> str:
        if not invoice_key(value):
            raise ValueError("must contain letters or digits")
        return value.strip()


class PlanCreate(Strict):
    organization_id: int | None = Field(default=None, ge=1)
    activity_type: str
    description: str = Field(min_length=1, max_length=2000)
    planned_cost: int = Field(gt=0, lt=10**13)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    planned_date: date


class ProofUpload(Strict):
    """A proof file (the ad layout, a photo, the invoice) as base64 in JSON, so every write of the API
    stays one JSON body with an Idempotency-Key."""

    filename: str = Field(min_length=1, max_length=200)
    content_type: str = Field(min_length=3, max_length=100)
    content_base64: str = Field(min_length=4, max_length=2_000_000)

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        name = value.replace("\\", "/").rsplit("/", 1)[-1].strip()
        if not name or name in (".", "..") or any(ord(c) < 32 for c in name):
            raise ValueError("a plain file name")
        return name
