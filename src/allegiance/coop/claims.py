"""The claim state machine, pure: which move is allowed from which state, and what it does to the
fund reservation (a ledger hold taken at approval).

    draft ──submit──▶ submitted ──approve──▶ approved ──settle──▶ settled   (hold posted)
                          │                     │
                          └──reject──▶ rejected ◀┘ reject                  (hold voided)

Final states never move again, so a hold is resolved at most once.
"""

from __future__ import annotations

from enum import StrEnum

from allegiance.coop.errors import InvalidClaimTransition
from allegiance.coop.model import ClaimStatus as S


class Move(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    SETTLE = "settle"


class HoldEffect(StrEnum):
    NONE = "none"
    RESERVE = "reserve"
    POST = "post"
    VOID = "void"


_MOVES: dict[tuple[S, Move], tuple[S, HoldEffect]] = {
    (S.DRAFT, Move.SUBMIT): (S.SUBMITTED, HoldEffect.NONE),
    (S.SUBMITTED, Move.APPROVE): (S.APPROVED, HoldEffect.RESERVE),
    (S.SUBMITTED, Move.REJECT): (S.REJECTED, HoldEffect.NONE),
    (S.APPROVED, Move.REJECT): (S.REJECTED, HoldEffect.VOID),
    (S.APPROVED, Move.SETTLE): (S.SETTLED, HoldEffect.POST),
}
FINAL = frozenset({S.SETTLED, S.REJECTED})
_PAST = {Move.SUBMIT: "submitted", Move.APPROVE: "approved", Move.REJECT: "rejected", Move.SETTLE: "settled"}


def apply(status: S, move: Move) -> tuple[S, HoldEffect]:
    """The next state and the hold effect; ``InvalidClaimTransition`` when the state forbids it."""
    target = _MOVES.get((status, move))
    if target is None:
        raise InvalidClaimTransition(f"a {status.value} claim cannot be {_PAST[move]}", state=status.value)
    return target


def counts_against_budget(status: S) -> bool:
    return status in (S.APPROVED, S.SETTLED)
