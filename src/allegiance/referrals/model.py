"""Referrals as validated data and pure checks: the program's referral settings, unguessable codes,
and the fraud flags that send a referral to review instead of converting it.

A referral links a referrer (a participant and their organization, through the participant's code)
to a referred organization. It *converts* on the referred organization's first qualifying order;
the conversion is recorded as derived events (``referral.converted``) that go through the event
pipeline like any other, so the program's rules — not this module — decide what each side gets.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

# No 0/O, 1/I/L: codes are read aloud and typed from paper. 31^10 ≈ 8·10^14 codes.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10
CODE = re.compile(rf"^[{ALPHABET}]{{{CODE_LENGTH}}}$")
EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
JOINED, CONVERTED = "referral.joined", "referral.converted"
DERIVED_SCHEMA = {
    "type": "object",
    "required": ["referral_id", "side", "referrer_participant_id", "referrer_organization_id",
                 "referred_organization_id"],
    "properties": {"referral_id": {"type": "integer"}, "side": {"enum": ["referrer", "referred"]},
                   "referrer_participant_id": {"type": "integer"}, "referrer_organization_id": {"type": "integer"},
                   "referred_organization_id": {"type": "integer"}, "code": {"type": "string"},
                   "qualifying_event_id": {"type": ["integer", "null"]}},
}
FREE_MAIL = ("gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com", "icloud.com",
             "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de", "mail.ru", "yandex.ru", "aol.com")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalized_code(value: str) -> str:
    """What people type: lower case, spaces, dashes — all forgiven."""
    return re.sub(r"[\s\-]", "", value).upper()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferralSettings(Strict):
    """A program's referral scheme (``PUT /api/v1/referrals/settings``). Rewards are rules on the
    derived events, off until an operator writes them (req. 123: optional, off by default)."""

    qualifying_event: str = Field(default="order.placed", description="the event type of a first order")
    amount_field: str = Field(default="amount_minor", description="payload field holding the order amount")
    min_amount: int = Field(default=0, ge=0, description="smallest qualifying amount (minor units)")
    burst_max: int = Field(default=5, ge=1, le=10_000,
                           description="more referrals than this from one code or source within the window "
                                       "are held for review")
    burst_window_hours: int = Field(default=24, ge=1, le=24 * 90)
    check_email_domain: bool = Field(default=True, description="same e-mail domain on both sides = self-referral")
    free_mail_domains: list[str] = Field(default_factory=lambda: list(FREE_MAIL),
                                         description="domains shared by strangers, never a self-referral sign")
    link_base: str = Field(default="https://example.com/signup?ref=", max_length=200,
                           description="a participant's link is this followed by their code")

    @field_validator("qualifying_event")
    @classmethod
    def _event(cls, value: str) -> str:
        if not EVENT.match(value) or value.startswith("referral."):
            raise ValueError("an event type such as order.placed (not a referral.* event)")
        return value

    @field_validator("amount_field")
    @classmethod
    def _field(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", value):
            raise ValueError("a payload field path, e.g. amount_minor or totals.net")
        return value

    @field_validator("free_mail_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower() for d in value if d.strip()]


class ReferralStatus(StrEnum):
    REGISTERED = "registered"  # waiting for the first qualifying order
    HELD = "held"  # qualified, but flagged: waiting for an operator
    CONVERTED = "converted"
    REJECTED = "rejected"


class RegisterReferral(Strict):
    code: str = Field(min_length=4, max_length=40)
    organization_id: int = Field(ge=1, description="the referred organization, once it exists in the program")
    contact_email: EmailStr | None = Field(default=None, description="who signed up for it")
    source: str | None = Field(default=None, max_length=100,
                               description="where the signup came from (campaign, IP range...), for burst checks")


class CodeRequest(Strict):
    participant_id: int | None = Field(default=None, ge=1, description="operators and org admins: for whom")


class Review(Strict):
    note: str = Field(default="", max_length=2000)


def domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def fraud_flags(*, referrer_organization_id: int, referred_organization_id: int, referrer_email: str | None,
                contact_email: str | None, recent_from_code: int, recent_from_source: int,
                settings: ReferralSettings) -> list[str]:
    """Why a referral should be held for review; empty = convert on the first qualifying order.

    ``recent_from_*`` count the referrals already registered in the window (this one excluded)."""
    flags = []
    if referrer_organization_id == referred_organization_id:
        flags.append("self_referral:same_organization")
    mine, theirs = domain(referrer_email), domain(contact_email)
    if (settings.check_email_domain and mine and mine == theirs and mine not in settings.free_mail_domains):
        flags.append("self_referral:same_email_domain")
    if recent_from_code + 1 > settings.burst_max:
        flags.append("burst:code")
    if recent_from_source + 1 > settings.burst_max:
        flags.append("burst:source")
    return flags


def window_start(now: datetime, settings: ReferralSettings) -> datetime:
    return now - timedelta(hours=settings.burst_window_hours)


def amount_of(payload: dict[str, object], path: str) -> int | None:
    value: object = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
