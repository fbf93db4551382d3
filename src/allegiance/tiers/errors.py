"""Tier and store-credit errors with stable codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from allegiance.kernel.errors import Conflict, ValidationFailed

M = TypeVar("M", bound=BaseModel)


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


def error_path(loc: Sequence[Any]) -> str:
    """pydantic's location as ``tiers[1].requires[0].at_least`` (validator steps dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith("function-"):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def parse(model: type[M], document: Any, error: type[LadderInvalid] | type[DiscountCardInvalid]) -> M:
    """The document as the model, or ``error`` naming the first field wrong (all of them in ``errors``)."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [{"field": error_path(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        raise error(errors[0]["reason"], field=errors[0]["field"], errors=errors) from None
