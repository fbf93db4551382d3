"""Backtest use cases of ``RulesService``: replay stored events through a draft, writing nothing.

A mixin, because they share the service's port, settings and tiers; the arithmetic is in
``rules/simulate.py``, the second process of a long backtest in ``storage/backtest_feed.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any

from allegiance.kernel.collector import rare_collections
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.programs.model import ProgramSettings
from allegiance.rules.backtest_events import Draft, Evaluated, Evaluator, Feed
from allegiance.rules.evaluate import compile_rule_set
from allegiance.rules.ports import RulesPort, TierView
from allegiance.rules.simulate import Simulation, SimulationReport, Subjects, merged
from allegiance.rules.validation import validated

SIMULATION_CHUNK = 5_000  # events per query and per subject look-up in a backtest


class Backtesting:
    port: RulesPort
    settings_of: Callable[[int], ProgramSettings]
    declared_types: Callable[[int], set[str]] | None
    tiers: TierView

    def simulate(self, program_id: int, document_or_version: dict[str, Any] | int | Draft, start: datetime,
                 end: datetime, *, tiers: Any = None, feed: Feed | None = None) -> SimulationReport:
        """Backtest: replay the stored events of ``[start, end)`` through a draft (a document or a
        saved version) and report what it would have issued — writing nothing (see ``simulate``).
        ``tiers``, when it offers ``simulate_moves(program_id, credits_by_organization, at)``, turns
        the simulated qualifying credits into tier moves. ``feed`` gives the evaluated events from
        elsewhere (``storage.backtest_feed``: another process, as ``evaluations`` would). A ``Draft``
        already made by ``draft`` for this period is used as it is."""
        draft = document_or_version if isinstance(document_or_version, Draft) else \
            self.draft(program_id, document_or_version, start, end)
        settings = self.settings_of(program_id)
        simulation = Simulation(draft.compiled, settings, SimulationReport(program_id, draft.version, start, end))
        with rare_collections():  # millions of short-lived tuples, no cycles
            for event in (feed or self.evaluations)(program_id, draft, start, end):
                simulation.apply(event)
        report = simulation.report()
        forecast = getattr(tiers, "simulate_moves", None)
        if callable(forecast):
            report.tier_moves = list(forecast(program_id, simulation.credits_by_organization(), end))
        return report

    def draft(self, program_id: int, document_or_version: dict[str, Any] | int, start: datetime,
              end: datetime) -> Draft:
        """A backtest's draft, validated and compiled; the period checked. Raises
        ``ValidationFailed`` / ``RuleSetInvalid`` naming the field, ``NotFound`` for a version."""
        for where, value in (("from", start), ("to", end)):
            if value.tzinfo is None:
                raise ValidationFailed("must include a time zone offset", field=where)
        if end <= start:
            raise ValidationFailed("must be after from", field="to")
        version: int | None = None
        document: Any = document_or_version
        if isinstance(document_or_version, int) and not isinstance(document_or_version, bool):
            stored = self.port.version(program_id, document_or_version)
            if stored is None:
                raise NotFound(f"rule set version {document_or_version} not found", field="version")
            version, document = document_or_version, stored["document"]
        settings = self.settings_of(program_id)
        types = self.declared_types(program_id) if self.declared_types else None
        return Draft(compile_rule_set(validated(document, settings, types), version or 0), version, document)

    def replay_size(self, program_id: int, draft: Draft, start: datetime, end: datetime) -> int:
        """How many stored events a backtest of the draft would read."""
        kinds = draft.event_types
        return self.port.count_events(program_id, kinds, start, end) if kinds else 0

    def evaluations(self, program_id: int, draft: Draft, start: datetime, end: datetime) -> Iterator[Evaluated]:
        """The stored events of ``[start, end)`` that the draft triggers on or releases with, in
        (occurred_at, id) order, each evaluated against it — the stateless half of a backtest."""
        events = merged(self.port.stream_events(program_id, kind, start, end, SIMULATION_CHUNK)
                        for kind in draft.event_types)
        subjects = Subjects(lambda orgs, people: self.port.subjects(program_id, orgs, people),
                            lambda org_id, row: self.tiers.tier_of(program_id, org_id, organization=row))
        evaluator = Evaluator(draft.compiled, self.settings_of(program_id).default_unit)
        while batch := list(islice(events, SIMULATION_CHUNK)):
            subjects.prepare(batch)
            for event in batch:
                org, person, multiplier = subjects.of(event)
                yield evaluator.stored(event[2], event[0], event[1], event[5], org, person, multiplier)
