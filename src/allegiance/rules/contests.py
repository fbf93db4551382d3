"""Contests and entitlements: rank organizations over a period, reward the top N once the
period has closed, and let a winner hand its entitlements on to its own end clients.

Scores are counters fed by the event pipeline (``RulesService.apply``), so closing a quarter
reads one row per competitor instead of re-scanning its events. Closing is exactly once per
contest and period: a ``closed:<code>`` counter row is locked and flipped in the same
transaction that grants the prizes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import Conflict, NotFound, ValidationFailed
from allegiance.ledger.policy import AwardSplit, SplitMode
from allegiance.ledger.service import LedgerService
from allegiance.programs.model import ProgramSettings
from allegiance.rules.model import Benefit, Contest, Fixed
from allegiance.rules.ports import RulesPort
from allegiance.rules.settle import CounterKey, period_key

PERIOD_FORMS = {"week": r"^\d{4}-W\d{2}$", "month": r"^\d{4}-\d{2}$", "quarter": r"^\d{4}-Q[1-4]$",
                "year": r"^\d{4}$"}


class ContestAlreadyClosed(Conflict):
    code = "contest_already_closed"


class NotEnoughLeft(Conflict):
    code = "benefit_exhausted"


def score_key(contest: Contest, organization_id: int, period: str) -> CounterKey:
    return CounterKey(f"contest:{contest.code}", f"o:{organization_id}", period)


class ContestsService:
    def __init__(self, port: RulesPort, ledger: LedgerService, settings_of: Callable[[int], ProgramSettings],
                 clock: Clock) -> None:
        self.port = port
        self.ledger = ledger
        self.settings_of = settings_of
        self.clock = clock

    def _contest(self, program_id: int, code: str) -> tuple[Contest, int]:
        compiled = self.port.active(program_id)
        contest = compiled.rule_set.contest(code) if compiled else None
        if contest is None or compiled is None:
            raise NotFound(f"no active contest {code!r}", field="code")
        return contest, compiled.version

    def standings(self, program_id: int, code: str, period: str | None = None) -> dict[str, Any]:
        contest, _ = self._contest(program_id, code)
        period = period or period_key(contest.period, self.clock.now())
        scores = self.port.contest_scores(program_id, f"contest:{code}", period)
        return {"contest": code, "name": contest.name, "period": period, "top": contest.top,
                "ranking": [{"rank": i, "organization_id": org, "score": score, "in_prizes": i <= contest.top}
                            for i, (org, score) in enumerate(scores, 1)]}

    def close(self, program_id: int, code: str, period: str, *, by: str) -> dict[str, Any]:
        """Grant the prizes of a finished period to its top N, exactly once."""
        contest, version = self._contest(program_id, code)
        if not re.match(PERIOD_FORMS[contest.period], period):
            raise ValidationFailed(f"a {contest.period} period looks like "
                                   f"{period_key(contest.period, self.clock.now())}", field="period")
        if period >= period_key(contest.period, self.clock.now()):
            raise ValidationFailed(f"period {period} has not ended yet", field="period")
        counters = self.port.counters(program_id)
        marker = CounterKey(f"closed:{code}", "all", period)
        if counters.lock([marker])[marker][1] > 0:
            raise ContestAlreadyClosed(f"contest {code!r} was already closed for {period}", field="period")
        counters.add(marker, 0, 1)
        settings = self.settings_of(program_id)
        winners = [(org, score) for org, score in self.port.contest_scores(program_id, f"contest:{code}", period)
                   if score > 0][: contest.top]
        at = self.clock.now()
        for rank, (org_id, score) in enumerate(winners, 1):
            for prize in contest.prizes:
                self._grant(program_id, version, contest, prize, org_id, rank, score, period, at, settings)
        self.port.emit(program_id, "contest.closed", {"contest": code, "period": period, "by": by,
                                                      "winners": [org for org, _ in winners]}, None)
        result = self.standings(program_id, code, period)
        result["winners"] = [org for org, _ in winners]
        return result

    def _grant(self, program_id: int, version: int, contest: Contest, prize: Fixed | Benefit, org_id: int, rank: int,
               score: int, period: str, at: Any, settings: ProgramSettings) -> None:
        inputs = {"rank": rank, "score": score, "period": period}
        base = {"program_id": program_id, "rule_set_version": version, "rule_code": contest.code, "event_id": None,
                "occurred_at": at, "organization_id": org_id, "participant_id": None, "basis": score,
                "match_key": period, "inputs": inputs}
        if isinstance(prize, Benefit):
            award_id = self.port.insert_award({**base, "kind": "benefit", "unit": None, "amount": prize.quantity,
                                               "status": "granted", "reason": prize.description[:500],
                                               "inputs": {**inputs, "benefit": prize.code}})
            self.port.emit(program_id, "benefit.granted", {
                "rule": contest.code, "benefit": prize.code, "quantity": prize.quantity, "award_id": award_id,
                "organization_id": org_id, "description": prize.description}, org_id)
            return
        unit = prize.unit or settings.default_unit
        reason = f"#{rank} in {contest.name} ({period})"
        award_id = self.port.insert_award({**base, "kind": "award", "unit": unit, "amount": prize.amount,
                                           "status": "posted", "reason": reason})
        posted = self.ledger.award(program_id, unit, prize.amount, organization_id=org_id, participant_id=None,
                                   split=AwardSplit(mode=SplitMode.ORGANIZATION), expiry=settings.expiry_for(unit),
                                   memo=reason, metadata={"rule": contest.code, "rule_set_version": version,
                                                          "inputs": inputs, "reason": reason, "award_id": award_id})
        self.port.update_award(award_id, {"transaction_id": posted.transaction_id})

    # -- entitlements ---------------------------------------------------------------------------
    def assign(self, program_id: int, award_id: int, quantity: int, assignee_ref: str, assignee_name: str, *,
               by: str, note: str = "", visible: Callable[[int], bool] = lambda _org: True) -> dict[str, Any]:
        """Pass part of a benefit on to one of the holder's own end clients (logged, never more
        than is left: the benefit row is locked while the remainder is checked)."""
        if quantity <= 0:
            raise ValidationFailed("must be a positive number", field="quantity")
        benefit = self.port.benefit(program_id, award_id, lock=True)
        if benefit is None or not visible(benefit["organization_id"]):
            raise NotFound(f"benefit {award_id} not found")
        if quantity > benefit["remaining"]:
            raise NotEnoughLeft(f"only {benefit['remaining']} left of this benefit", field="quantity")
        assignment_id = self.port.insert_assignment({
            "program_id": program_id, "award_id": award_id, "organization_id": benefit["organization_id"],
            "quantity": quantity, "assignee_ref": assignee_ref, "assignee_name": assignee_name, "note": note,
            "created_by": by})
        self.port.emit(program_id, "benefit.assigned", {
            "award_id": award_id, "assignment_id": assignment_id, "benefit": benefit["inputs"].get("benefit"),
            "quantity": quantity, "assignee_ref": assignee_ref, "organization_id": benefit["organization_id"]},
            benefit["organization_id"])
        updated = self.port.benefit(program_id, award_id)
        assert updated is not None
        return updated
