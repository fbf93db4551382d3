"""Program configuration and the vocabulary of organizations and participants.

A program is the tenant boundary: every row and every query carries its ``program_id``.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from allegiance.ledger.model import UnitKind
from allegiance.ledger.policy import AwardSplit, ExpiryPolicy, LeaverPolicy, PoolSpenders

DEFAULT_ROLES: tuple[tuple[str, str], ...] = (
    ("owner", "Owner / decision maker"),
    ("purchasing_manager", "Purchasing manager"),
    ("sales_rep", "Sales representative"),
    ("engineer", "Engineer / technician"),
    ("accountant", "Accountant"),
    ("other", "Other"),
)

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")


class OrganizationKind(StrEnum):
    CUSTOMER = "customer"
    DEALER = "dealer"
    DISTRIBUTOR = "distributor"
    RESELLER = "reseller"
    OTHER = "other"


class OrganizationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEFT = "left"


class ParticipantStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    LEFT = "left"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    MESSENGER = "messenger"
    PUSH = "push"
    PHONE = "phone"
    POST = "post"


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=80)


class PointCost(BaseModel):
    """What ``per_points`` units cost the operator in money minor units (``minor`` cents for 100
    points: ``{currency: EUR, minor: 50, per_points: 100}``). Integers only: finance values the
    liability with it (see docs/finance.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    scale: int = Field(default=2, ge=0, le=6, description="digits after the decimal point of the currency")
    minor: int = Field(ge=0, description="money minor units ...")
    per_points: int = Field(default=1, ge=1, description="... per this many of the unit's minor units")


class UnitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(description="Upper-case unit code, e.g. PTS, EUR, MILES")
    name: str = Field(min_length=1, max_length=80)
    scale: int = Field(default=0, ge=0, le=6)
    kind: UnitKind = UnitKind.POINTS
    expiry: ExpiryPolicy | None = Field(default=None, description="this unit's own expiry (e.g. store credit); "
                                                                  "null = the program's")
    spend_channels: list[str] | None = Field(
        default=None, description="Where this unit may be spent (e.g. [\"online_store\"] for store credit that "
                                  "is spendable only where it was earned); null = anywhere")
    max_per_order: int | None = Field(
        default=None, ge=1, le=10**15, description="store credit: the most that may be applied to one order or "
                                                   "invoice (minor units); null = no cap")
    cost_per_point: PointCost | None = Field(
        default=None, description="What the unit costs the operator, to value the outstanding liability in money")

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not CODE.match(value):
            raise ValueError("must be 1-16 upper-case letters, digits or _ starting with a letter")
        return value


class ProgramSettings(BaseModel):
    """Everything an operator tunes without code. Validated on save; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    units: list[UnitConfig] = Field(default_factory=lambda: [UnitConfig(code="PTS", name="Points")], min_length=1)
    default_unit: str = "PTS"
    roles: list[Role] = Field(default_factory=lambda: [Role(code=c, label=label) for c, label in DEFAULT_ROLES])
    award_split: AwardSplit = Field(default_factory=AwardSplit)
    pool_spenders: PoolSpenders = PoolSpenders.ORG_ADMINS
    leaver_policy: LeaverPolicy = LeaverPolicy.SWEEP_TO_POOL
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    hold_ttl_hours: int = Field(default=72, ge=1, le=24 * 365)

    @model_validator(mode="after")
    def _consistent(self) -> ProgramSettings:
        codes = [u.code for u in self.units]
        if len(set(codes)) != len(codes):
            raise ValueError("unit codes must be unique")
        if self.default_unit not in codes:
            raise ValueError(f"default_unit {self.default_unit!r} is not one of the units {codes}")
        roles = [r.code for r in self.roles]
        if len(set(roles)) != len(roles):
            raise ValueError("role codes must be unique")
        return self

    def unit(self, code: str) -> UnitConfig | None:
        return next((u for u in self.units if u.code == code), None)

    def expiry_for(self, unit: str) -> ExpiryPolicy:
        config = self.unit(unit)
        return config.expiry if config is not None and config.expiry is not None else self.expiry

    def check_spend_channel(self, unit: str, channel: str | None, field: str = "channel") -> None:
        """Store credit may be limited to the operator's own channels: refuse a spend elsewhere."""
        config = self.unit(unit)
        if config is None or config.spend_channels is None:
            return
        if channel not in config.spend_channels:
            from allegiance.kernel.errors import ValidationFailed

            where = f"channel {channel!r}" if channel else "a spend without a channel"
            raise ValidationFailed(f"{config.code} can only be spent in {config.spend_channels}; {where} is refused",
                                   field=field)

    def role_codes(self) -> set[str]:
        return {r.code for r in self.roles}
