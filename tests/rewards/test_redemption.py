"""The redemption state machine, pure: every sequence of moves resolves the hold at most once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allegiance.rewards.errors import InvalidTransition
from allegiance.rewards.model import RedemptionStatus as S
from allegiance.rewards.model import Step
from allegiance.rewards.policy import GRANTS, Requester
from allegiance.rewards.redemption import HoldEffect, Move, apply, initial

STEPS = st.frozensets(st.sampled_from(list(Step)))
MOVES = st.lists(st.tuples(st.sampled_from(list(Move)), st.sampled_from(list(Requester))), max_size=12)


@given(required=STEPS, moves=MOVES)
def test_no_sequence_of_moves_both_posts_and_voids_a_hold(required: frozenset[Step],
                                                          moves: list[tuple[Move, Requester]]) -> None:
    # given a fresh redemption with its hold pending
    state = initial(required)
    status, outstanding, hold = state.status, state.outstanding, "pending"
    approvals_needed = set(required)
    for move, who in moves:
        try:
            moved = apply(status, move, outstanding, GRANTS[who])
        except InvalidTransition:
            continue  # refused moves change nothing
        assert not status.is_final, "a final state moved again"
        if moved.hold is not HoldEffect.NONE:
            assert hold == "pending", f"the hold was already {hold}"
            hold = "posted" if moved.hold is HoldEffect.POST else "voided"
        approvals_needed -= moved.granted
        if moved.status in (S.APPROVED, S.FULFILLED):
            assert not approvals_needed, "approved or delivered with an approval still missing"
        status, outstanding = moved.status, moved.outstanding
    # then the hold matches the state: posted only if fulfilled, voided only if released
    assert (hold == "posted") == (status is S.FULFILLED)
    assert (hold == "voided") == (status in {S.CANCELLED, S.REJECTED, S.EXPIRED})
    assert (hold == "pending") == (not status.is_final)


def test_a_redemption_without_required_approvals_is_approved_at_once() -> None:
    assert initial(frozenset()).status is S.APPROVED
    assert initial(frozenset({Step.MANAGER})).status is S.PENDING_APPROVAL


def test_the_manager_alone_cannot_clear_an_operator_step() -> None:
    both = frozenset({Step.MANAGER, Step.OPERATOR})
    after_manager = apply(S.PENDING_APPROVAL, Move.APPROVE, both, GRANTS[Requester.ORG_ADMIN])
    assert (after_manager.status, after_manager.outstanding) == (S.PENDING_APPROVAL, frozenset({Step.OPERATOR}))
    with pytest.raises(InvalidTransition):
        apply(S.PENDING_APPROVAL, Move.APPROVE, after_manager.outstanding, GRANTS[Requester.ORG_ADMIN])
    done = apply(S.PENDING_APPROVAL, Move.APPROVE, after_manager.outstanding, GRANTS[Requester.OPERATOR])
    assert done.status is S.APPROVED


@pytest.mark.parametrize("move", [Move.FULFIL, Move.APPROVE])
def test_nothing_is_delivered_or_approved_before_its_turn(move: Move) -> None:
    with pytest.raises(InvalidTransition):
        apply(S.PENDING_APPROVAL if move is Move.FULFIL else S.APPROVED, move, frozenset({Step.MANAGER}),
              GRANTS[Requester.OPERATOR])
