"""Exact money for points: a rate is an integer ``minor`` per ``per_points`` (no floats anywhere).

Sums are kept as fractions and rounded once, half up, at the end, so a report's money does not
depend on how many transactions it was made of or in which order they are added.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction


def value(points: int, minor: int, per_points: int) -> Fraction:
    """The exact money value of ``points`` at ``minor`` per ``per_points`` (signed)."""
    if per_points <= 0:
        raise ValueError("per_points must be positive")
    return Fraction(points * minor, per_points)


def round_half_up(amount: Fraction | int) -> int:
    """Round to whole minor units, halves away from zero (what an invoice does)."""
    amount = Fraction(amount)
    sign = -1 if amount < 0 else 1
    magnitude = abs(amount)
    whole, rest = divmod(magnitude.numerator, magnitude.denominator)
    if 2 * rest >= magnitude.denominator:
        whole += 1
    return sign * whole


def total(values: Iterable[Fraction]) -> int:
    return round_half_up(sum(values, Fraction(0)))
