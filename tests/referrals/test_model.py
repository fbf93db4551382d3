"""Referral codes and fraud flags — pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from allegiance.referrals.model import (
    CODE,
    ReferralSettings,
    amount_of,
    fraud_flags,
    new_code,
    normalized_code,
)

SETTINGS = ReferralSettings(burst_max=3)


def flags(**overrides: object) -> list[str]:
    values: dict[str, object] = {"referrer_organization_id": 1, "referred_organization_id": 2,
                                 "referrer_email": "ann@aqua.example", "contact_email": "bob@new.example",
                                 "recent_from_code": 0, "recent_from_source": 0, "settings": SETTINGS}
    return fraud_flags(**{**values, **overrides})  # type: ignore[arg-type]


def test_codes_are_unguessable_and_forgiving_to_type() -> None:
    codes = {new_code() for _ in range(2_000)}
    assert len(codes) == 2_000 and all(CODE.match(c) for c in codes)
    assert not any(ch in "".join(codes) for ch in "01OIL")
    code = new_code()
    assert normalized_code(f" {code[:5].lower()}-{code[5:]} ") == code


def test_a_clean_referral_has_no_flags() -> None:
    assert flags() == []


def test_self_referral_by_organization_or_email_domain() -> None:
    assert flags(referred_organization_id=1) == ["self_referral:same_organization"]
    assert flags(contact_email="boss@AQUA.example") == ["self_referral:same_email_domain"]
    assert flags(referrer_email="ann@gmail.com", contact_email="bob@gmail.com") == [], "free mail is no sign"
    off = ReferralSettings(check_email_domain=False)
    assert flags(contact_email="boss@aqua.example", settings=off) == []


@given(recent=st.integers(0, 50), burst_max=st.integers(1, 20))
def test_a_burst_is_more_than_burst_max_within_the_window(recent: int, burst_max: int) -> None:
    settings = ReferralSettings(burst_max=burst_max)
    flagged = flags(recent_from_code=recent, recent_from_source=recent, settings=settings)
    assert ("burst:code" in flagged) == (recent + 1 > burst_max)
    assert ("burst:source" in flagged) == (recent + 1 > burst_max)


def test_settings_refuse_referral_events_as_the_qualifying_event() -> None:
    with pytest.raises(ValidationError):
        ReferralSettings(qualifying_event="referral.converted")


def test_amounts_are_read_from_nested_payload_fields() -> None:
    assert amount_of({"totals": {"net": 1200}}, "totals.net") == 1200
    assert amount_of({"amount_minor": "12"}, "amount_minor") is None
    assert amount_of({"amount_minor": True}, "amount_minor") is None
    assert amount_of({}, "amount_minor") is None
