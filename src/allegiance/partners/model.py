"""Partner documents (validated on input; unknown fields refused) and what the service returns."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,59}$")


class Operation(StrEnum):
    EARN = "earn"  # the partner issued points to a participant (it pays the operator)
    REDEEM = "redeem"  # a participant spent points with the partner (the operator pays it)


class Rate(BaseModel):
    """``minor`` money minor units per ``per_points`` of the unit's minor units: exact, no floats."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minor: int = Field(ge=0, le=10**12)
    per_points: int = Field(default=1, ge=1, le=10**12)


class PartnerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE.pattern, description="unique in the program: lower-case, digits, _ . -")
    name: str = Field(min_length=1, max_length=200)
    unit: str | None = Field(default=None, description="the program unit it deals in; default: the program's")
    issues_points: bool = Field(default=True, description="participants earn points when buying from it")
    accepts_points: bool = Field(default=True, description="participants can pay it with points")
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$", description="settlement currency")
    currency_scale: int = Field(default=2, ge=0, le=6)
    issue_rate: Rate = Field(default_factory=lambda: Rate(minor=0),
                             description="what the partner pays the operator per point it issues")
    redeem_rate: Rate = Field(default_factory=lambda: Rate(minor=0),
                              description="what the operator pays the partner per point redeemed with it")
    active: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)


class PartnerUpdate(BaseModel):
    """Only the fields sent change. A rate change applies to later operations only: each operation
    keeps the rate it was posted at (in its transaction), so settlements of the past never move."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    issues_points: bool | None = None
    accepts_points: bool | None = None
    issue_rate: Rate | None = None
    redeem_rate: Rate | None = None
    active: bool | None = None
    attributes: dict[str, Any] | None = None


class PartnerOperation(BaseModel):
    """A purchase reported by a partner (earn) or points spent with it (redeem)."""

    model_config = ConfigDict(extra="forbid")

    reference: str = Field(min_length=1, max_length=200, description="the partner's receipt id: one effect each")
    organization_id: int = Field(ge=1, le=2**63 - 1)
    participant_id: int | None = Field(default=None, ge=1, le=2**63 - 1,
                                       description="the person; none = the organization's pool")
    points: int = Field(ge=1, le=10**15, description="in the unit's minor scale")
    purchase_amount_minor: int | None = Field(default=None, ge=0, le=10**15,
                                              description="what was bought, for the record (currency minor)")
    memo: str = Field(default="", max_length=500)


class ReverseOperation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memo: str = Field(min_length=1, max_length=500, description="why (a return, a cancelled purchase)")


@dataclass(frozen=True)
class Partner:
    id: int
    program_id: int
    code: str
    name: str
    unit: str
    account_id: int
    issues_points: bool
    accepts_points: bool
    currency: str
    currency_scale: int
    issue_rate: Rate
    redeem_rate: Rate
    active: bool

    def rate_for(self, operation: Operation) -> Rate:
        return self.issue_rate if operation is Operation.EARN else self.redeem_rate

    def metadata(self, operation: Operation, reference: str, extra: dict[str, Any]) -> dict[str, Any]:
        """What each partner transaction records: enough to settle it later without the partner row."""
        rate = self.rate_for(operation)
        return {"partner_id": self.id, "partner_code": self.code, "partner_operation": operation.value,
                "reference": reference, "rate": {"minor": rate.minor, "per_points": rate.per_points,
                                                 "currency": self.currency}, **extra}


def settlement_address(partner_id: int, unit: str) -> str:
    return f"partner:{partner_id}:{unit}"
