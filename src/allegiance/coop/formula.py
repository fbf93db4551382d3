"""How much a claim is reimbursed, and how the yearly budget and the fund balance limit it. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from allegiance.coop.model import BrandTable, CoopSettings, FixedShare, Formula, OverLimit, SharePerBrand


def share_percent(formula: Formula, brands: int) -> Decimal:
    """The share of the cost paid when ``brands`` manufacturers are shown (≥ 1)."""
    if brands < 1:
        raise ValueError("at least one brand is shown")
    if isinstance(formula, FixedShare):
        return formula.percent
    if isinstance(formula, SharePerBrand):
        return formula.percent / brands
    assert isinstance(formula, BrandTable)
    return [row for row in formula.rows if row.brands <= brands][-1].percent


def reimbursement(settings: CoopSettings, cost: int, brands: int) -> int:
    """Cost (currency minor units) × share, converted to fund minor units, rounded down — never
    more than the terms say: €4,000 BWT-only at 50 % → 200,000; €3,000 with 3 brands → 50,000."""
    exact = Decimal(cost) * share_percent(settings.formula, brands) / 100 * settings.rate
    return int(exact.to_integral_value(rounding=ROUND_DOWN))


@dataclass(frozen=True)
class Limited:
    """What may be paid, and why it is less than asked (``None`` = nothing cut)."""

    amount: int
    limit: str | None = None  # "yearly_budget" | "fund_balance"
    reason: str | None = None


def limit(requested: int, *, over_limit: OverLimit, budget_left: int | None, fund_available: int | None,
          unit: str, year: int) -> Limited:
    """Apply the yearly budget (first) and then the fund balance to a reimbursement.

    ``amount == 0`` with a ``limit`` means refused: in ``refuse`` mode whenever anything would be
    cut, in ``cap`` mode only when nothing is left."""
    amount = requested
    cut: tuple[str, str] | None = None
    for name, left, what in (("yearly_budget", budget_left, f"the {year} co-op budget"),
                             ("fund_balance", fund_available, "the co-op fund balance")):
        if left is None or amount <= left:
            continue
        if over_limit is OverLimit.REFUSE or left <= 0:
            return Limited(0, name, f"{amount} {unit} would pass {what}: {max(left, 0)} {unit} left")
        amount = left
        cut = (name, f"capped to {what}: {left} {unit} left")
    return Limited(amount, *cut) if cut else Limited(amount)
