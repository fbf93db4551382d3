"""Expected breakage from history: the share of issued points that ended up expiring.

Estimator (cohort method). Points carry their expiry wherever they move (transfers, holds,
reversals keep it), so all points expiring on the same day form a **cohort** whose fate can be
followed through the ledger's lots:

* ``issued``  = points credited to holders by issuing transactions (``award``, ``adjust``) minus
  what later corrections took back (``adjust`` debits, reversals of awards and adjustments);
* ``expired`` = points debited from the cohort's lots by ``expire`` transactions;
* a cohort is **closed** when its expiry day is on or before ``as_of`` and none of its lots has
  anything left (the expiry job has run, no hold still reserves part of it).

Only closed cohorts say how much breakage there *was*. The estimate per unit is the issued-weighted
share ``Σ expired / Σ issued`` over closed cohorts (a ratio of sums, so a big cohort weighs more than
a small one), and the **expected breakage** of today's liability is that rate times the points now
outstanding that can expire. Points that never expire have no breakage in this model.

Checked on synthetic histories with a known answer (``tests/finance/test_breakage.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

ISSUING = frozenset({"award", "adjust"})
EXPIRING = "expire"
REVERSAL = "reversal"


@dataclass(frozen=True)
class CohortFlow:
    """Lot movements of one (unit, expiry day) caused by transactions of one kind."""

    unit: str
    expires_on: date
    kind: str
    original_kind: str | None  # for a reversal: the kind of the transaction it reverses
    credited: int  # Σ amounts of lots opened
    debited: int  # Σ amounts taken from lots


@dataclass(frozen=True)
class Cohort:
    unit: str
    expires_on: date
    issued: int
    expired: int
    remaining: int
    closed: bool


@dataclass(frozen=True)
class BreakageEstimate:
    unit: str
    closed_cohorts: int
    issued: int
    expired: int
    rate: Fraction  # 0 when nothing closed yet (no history: no evidence of breakage)

    def rate_text(self, places: int = 6) -> str:
        scaled = self.rate * 10**places
        whole = scaled.numerator * 2 // scaled.denominator
        rounded = (whole + 1) // 2  # half up
        return f"{rounded // 10**places}.{rounded % 10**places:0{places}d}"


def _issuing(flow: CohortFlow) -> bool:
    return flow.kind in ISSUING or (flow.kind == REVERSAL and flow.original_kind in ISSUING)


def cohorts(flows: Iterable[CohortFlow], remaining: dict[tuple[str, date], int], as_of: date) -> list[Cohort]:
    issued: dict[tuple[str, date], int] = defaultdict(int)
    expired: dict[tuple[str, date], int] = defaultdict(int)
    keys: set[tuple[str, date]] = set(remaining)
    for flow in flows:
        key = (flow.unit, flow.expires_on)
        keys.add(key)
        if _issuing(flow):
            issued[key] += flow.credited - flow.debited
        elif flow.kind == EXPIRING:
            expired[key] += flow.debited - flow.credited
    return [
        Cohort(unit, day, issued[(unit, day)], expired[(unit, day)], remaining.get((unit, day), 0),
               closed=day <= as_of and remaining.get((unit, day), 0) == 0)
        for unit, day in sorted(keys)
    ]


def estimate(all_cohorts: Iterable[Cohort]) -> dict[str, BreakageEstimate]:
    closed: dict[str, list[Cohort]] = defaultdict(list)
    for cohort in all_cohorts:
        if cohort.closed and cohort.issued > 0:
            closed[cohort.unit].append(cohort)
    result = {}
    for unit, group in closed.items():
        issued = sum(c.issued for c in group)
        expired = sum(c.expired for c in group)
        result[unit] = BreakageEstimate(unit, len(group), issued, expired, Fraction(expired, issued))
    return result
