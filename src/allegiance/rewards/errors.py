"""Rewards errors with stable codes; each carries the figures a client needs to react."""

from __future__ import annotations

from allegiance.kernel.errors import Conflict, Forbidden, ValidationFailed


class DuplicateItemCode(Conflict):
    code = "duplicate_item_code"


class ItemNotAvailable(ValidationFailed):
    """The item exists but this organization or person may not redeem it (inactive, tier, role...)."""

    code = "item_not_available"


class OutOfStock(Conflict):
    code = "out_of_stock"


class AnnualCapExceeded(Conflict):
    """Gift-policy compliance: the recipient's yearly total would pass the cap."""

    code = "annual_cap_exceeded"


class PoolNotAllowed(Forbidden):
    code = "pool_not_allowed"


class InvalidTransition(Conflict):
    """The redemption (or concierge request) is not in a state that allows this, or was changed
    by someone else at the same moment: re-read it and decide again."""

    code = "invalid_transition"


class QuoteExpired(Conflict):
    code = "quote_expired"
