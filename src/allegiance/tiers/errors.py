"""Tier and store-credit errors with stable codes."""

from __future__ import annotations

from allegiance.kernel.errors import Conflict, ValidationFailed


class LadderInvalid(ValidationFailed):
    code = "tier_ladder_invalid"


class DuplicateLadder(Conflict):
    """A ladder code is taken, or the program already has a ladder at that level."""

    code = "duplicate_tier_ladder"


class DiscountCardInvalid(ValidationFailed):
    code = "discount_card_invalid"


class OrderCapExceeded(ValidationFailed):
    """Applying this much store credit would take the order past the unit's ``max_per_order``."""

    code = "store_credit_order_cap"
