"""Request and response models. Requests forbid unknown fields, so a client can never set a
balance, a tier, a status it may not set, or another organization's id by adding a field."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field

from allegiance.access.model import KeyRole
from allegiance.programs.model import Channel, OrganizationKind, OrganizationStatus

Name = Annotated[str, Field(min_length=1, max_length=300)]
ExternalId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\s].*$")]
Amount = Annotated[int, Field(gt=0, le=10**15, description="Integer in the unit's minor scale")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
Locale = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=20)]
Memo = Annotated[str, Field(max_length=500)]
MAX_ID = 2**63 - 1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganizationCreate(Strict):
    external_id: ExternalId
    name: Name
    kind: OrganizationKind = OrganizationKind.CUSTOMER
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    segment: str | None = Field(default=None, max_length=60)
    country: Country | None = None
    locale: Locale | None = None
    joined_on: date | None = None
    account_manager_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    attributes: dict[str, Any] = Field(default_factory=dict)


class OrganizationUpdate(Strict):
    name: Name | None = None
    kind: OrganizationKind | None = None
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    segment: str | None = Field(default=None, max_length=60)
    country: Country | None = None
    locale: Locale | None = None
    status: OrganizationStatus | None = None
    joined_on: date | None = None
    left_on: date | None = None
    account_manager_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    attributes: dict[str, Any] | None = None


class ParticipantCreate(Strict):
    organization_id: int = Field(ge=1, le=MAX_ID)
    external_id: ExternalId
    name: Name
    email: EmailStr | None = None
    role: str = Field(min_length=1, max_length=40)
    is_org_admin: bool = False
    locale: Locale | None = None
    time_zone: str | None = Field(default=None, max_length=60)
    birthday: date | None = None
    preferred_channel: Channel | None = None
    consents: dict[Channel, bool] = Field(default_factory=dict)


class ParticipantUpdate(Strict):
    name: Name | None = None
    email: EmailStr | None = None
    role: str | None = Field(default=None, min_length=1, max_length=40)
    is_org_admin: bool | None = None
    locale: Locale | None = None
    time_zone: str | None = Field(default=None, max_length=60)
    birthday: date | None = None
    preferred_channel: Channel | None = None
    consents: dict[Channel, bool] | None = None


class ParticipantLeave(Strict):
    reason: Memo = ""


class AwardRequest(Strict):
    organization_id: int = Field(ge=1, le=MAX_ID)
    participant_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    amount: Amount
    unit: str | None = Field(default=None, max_length=16)
    memo: Memo = ""


class SpendRequest(Strict):
    account_id: int = Field(ge=1, le=MAX_ID)
    amount: Amount
    memo: Memo = ""
    channel: str | None = Field(default=None, max_length=60,
                                description="where it is spent; units with spend_channels require one of them")
    reference: str | None = Field(default=None, max_length=200, description="the order or invoice it pays")


class AdjustRequest(Strict):
    account_id: int = Field(ge=1, le=MAX_ID)
    amount: int = Field(ge=-(10**15), le=10**15, description="Signed; non-zero")
    memo: Memo = Field(min_length=1)


class TransferRequest(Strict):
    from_account_id: int = Field(ge=1, le=MAX_ID)
    to_account_id: int = Field(ge=1, le=MAX_ID)
    amount: Amount
    memo: Memo = ""


class ReverseRequest(Strict):
    memo: Memo = Field(min_length=1)


class HoldCreate(Strict):
    account_id: int = Field(ge=1, le=MAX_ID)
    amount: Amount
    memo: Memo = ""
    channel: str | None = Field(default=None, max_length=60,
                                description="where it is spent; units with spend_channels require one of them")
    ttl_hours: int | None = Field(default=None, ge=1, le=24 * 365)


class HoldPost(Strict):
    amount: Amount | None = None


class EventIn(Strict):
    source_id: str = Field(min_length=1, max_length=200, description="The source system's id: the dedupe key")
    type: str = Field(min_length=1, max_length=100)
    occurred_at: AwareDatetime
    organization_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    organization_external_id: str | None = Field(default=None, max_length=100)
    participant_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    participant_external_id: str | None = Field(default=None, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1)


class EventTypeIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)
    payload_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    role: KeyRole
    organization_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    participant_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class Balance(BaseModel):
    account_id: int
    address: str
    unit: str
    kind: str
    balance: int
    held: int
    available: int
    as_of: datetime
