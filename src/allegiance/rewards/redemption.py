"""The redemption state machine, pure: which move is allowed from which state, and what it does
to the ledger hold taken when the redemption was requested.

    requested ──▶ pending_approval ──▶ approved ──▶ fulfilled      (hold posted)
        │               │    ▲  │          │
        │               │    └──┘ partial  ├──▶ cancelled          (hold voided)
        └──────────────────────────────────┤──▶ expired            (hold voided, as expiry)
                        ├──▶ rejected      │                       (hold voided)
                        ├──▶ cancelled     │
                        └──▶ expired ◀─────┘

``requested`` is where every redemption starts; in the same transaction it moves on to
``pending_approval`` (some approval is outstanding) or straight to ``approved``. Final states never
move again, so a hold is resolved at most once, and only by a final state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from allegiance.rewards.errors import InvalidTransition
from allegiance.rewards.model import RedemptionStatus as S
from allegiance.rewards.model import Step


class Move(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    EXPIRE = "expire"
    FULFIL = "fulfil"


class HoldEffect(StrEnum):
    NONE = "none"
    POST = "post"
    VOID = "void"
    EXPIRE = "expire"  # a void recorded as expiry in the ledger


_TARGETS: dict[tuple[S, Move], S] = {
    (S.PENDING_APPROVAL, Move.REJECT): S.REJECTED,
    (S.PENDING_APPROVAL, Move.CANCEL): S.CANCELLED,
    (S.PENDING_APPROVAL, Move.EXPIRE): S.EXPIRED,
    (S.APPROVED, Move.CANCEL): S.CANCELLED,
    (S.APPROVED, Move.EXPIRE): S.EXPIRED,
    (S.APPROVED, Move.FULFIL): S.FULFILLED,
}
_EFFECTS = {S.FULFILLED: HoldEffect.POST, S.CANCELLED: HoldEffect.VOID, S.REJECTED: HoldEffect.VOID,
            S.EXPIRED: HoldEffect.EXPIRE}


@dataclass(frozen=True)
class Transition:
    status: S
    outstanding: frozenset[Step]
    hold: HoldEffect
    granted: frozenset[Step] = frozenset()


def initial(required: frozenset[Step]) -> Transition:
    """Where a new redemption goes once its hold is taken."""
    if required:
        return Transition(S.PENDING_APPROVAL, required, HoldEffect.NONE)
    return Transition(S.APPROVED, frozenset(), HoldEffect.NONE)


def apply(status: S, move: Move, outstanding: frozenset[Step] = frozenset(),
          grants: frozenset[Step] = frozenset()) -> Transition:
    """The next state for ``move``; raises ``InvalidTransition`` when the state does not allow it.

    An approval grants the steps its approver may give (an org admin: manager; an operator: all);
    the redemption stays pending until nothing is outstanding. An approval that grants nothing
    outstanding is refused rather than silently accepted.
    """
    if move is Move.APPROVE:
        if status is not S.PENDING_APPROVAL:
            raise InvalidTransition(f"a {status.value} redemption cannot be approved", state=status.value)
        granted = outstanding & grants
        if not granted:
            waiting = ", ".join(sorted(s.value for s in outstanding))
            raise InvalidTransition(f"this redemption waits for {waiting} approval, which you cannot give",
                                    state=status.value)
        left = outstanding - granted
        return Transition(S.PENDING_APPROVAL if left else S.APPROVED, left, HoldEffect.NONE, granted)
    target = _TARGETS.get((status, move))
    if target is None:
        raise InvalidTransition(f"a {status.value} redemption cannot be {_PAST[move]}", state=status.value)
    return Transition(target, frozenset(), _EFFECTS[target])


_PAST = {Move.REJECT: "rejected", Move.CANCEL: "cancelled", Move.EXPIRE: "expired", Move.FULFIL: "fulfilled",
         Move.APPROVE: "approved"}
