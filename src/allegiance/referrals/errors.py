"""Referral errors with stable codes."""

from __future__ import annotations

from allegiance.kernel.errors import Conflict


class ReferralsNotConfigured(Conflict):
    code = "referrals_not_configured"


class AlreadyReferred(Conflict):
    """An organization is referred once: the first registered referral keeps it."""

    code = "already_referred"


class InvalidReferralTransition(Conflict):
    code = "invalid_transition"
