"""Recording events: validate → store append-only → rules → ledger postings → outbox, in the
caller's single transaction.

A batch is all-or-nothing: the first invalid event refuses the whole batch, naming its index and
field (``events[3].payload.amount_minor``). Raises ``ValidationFailed`` subclasses and
``EventConflict`` (same source id, different content).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from allegiance.events.model import IncomingEvent, Outcome, Recorded
from allegiance.events.ports import EventsPort
from allegiance.events.schemas import UnknownEventType, check_schema, validate_payload
from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import AllegianceError, Conflict, ValidationFailed
from allegiance.ledger.service import LedgerService
from allegiance.programs.ports import ProgramsPort
from allegiance.programs.service import ProgramsService
from allegiance.rules.engine import EventContext, RuleEngine

EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class EventConflict(Conflict):
    code = "event_source_id_conflict"


class SourceIdTaken(Exception):
    """Raised by ``EventsPort.insert_event`` when the program already stored that source id: the
    insert wrote nothing, and the stored event decides between duplicate and conflict."""


class EventObserver(Protocol):
    """A domain that reacts to every recorded event inside its transaction (tiers re-qualify,
    referrals convert...). It runs after the rules, sees what they posted, and may raise to refuse
    the event — then nothing of it is written."""

    def after_event(self, event: EventContext, transaction_ids: Sequence[int]) -> None: ...

    def is_idle(self, program_id: int) -> bool:
        """True when this program has nothing for the observer to do, so bulk imports may skip it."""


class RuleBook(Protocol):
    """The program's earning rules as data (``rules.service.RulesService``), run on every event."""

    def is_idle(self, program_id: int) -> bool: ...

    def apply(self, context: EventContext) -> list[int]: ...


class EventsService:
    def __init__(self, port: EventsPort, programs: ProgramsPort, ledger: LedgerService, rules: RuleEngine,
                 clock: Clock, observers: Sequence[EventObserver] = (), rule_book: RuleBook | None = None) -> None:
        self.port = port
        self.programs = programs
        self.ledger = ledger
        self.rules = rules
        self.clock = clock
        self.observers = list(observers)
        self.rule_book = rule_book

    def pipeline_idle(self, program_id: int) -> bool:
        """True when no rule and no observer reacts to this program's events."""
        return (self.rules.is_idle(program_id) and (self.rule_book is None or self.rule_book.is_idle(program_id))
                and all(o.is_idle(program_id) for o in self.observers))

    def declare_type(self, program_id: int, name: str, schema: dict[str, Any], description: str = "") -> None:
        """Declare (or replace) an event type's payload schema; a schema that does not compile is refused."""
        if not EVENT_TYPE.match(name):
            raise ValidationFailed("use lower-case words separated by dots or underscores, e.g. order.placed",
                                   field="name")
        check_schema(schema)
        self.port.upsert_event_type(program_id, name, description, schema)
        self.port.emit(program_id, "event_type.declared", {"name": name}, None)

    def record(self, program_id: int, batch: Sequence[IncomingEvent], *, prefix: str = "events") -> list[Recorded]:
        results = []
        for index, event in enumerate(batch):
            where = f"{prefix}[{index}]" if prefix else ""
            try:
                results.append(self.record_one(program_id, event))
            except AllegianceError as exc:
                if where:
                    exc.field = f"{where}.{exc.field}" if exc.field else where
                raise
        return results

    def _subject(self, program_id: int, event: IncomingEvent) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        org = None
        if event.organization_id is not None:
            org = self.programs.organization(program_id, event.organization_id)
            if org is None:
                raise ValidationFailed(f"organization {event.organization_id} does not exist",
                                       field="organization_id")
        elif event.organization_external_id is not None:
            org = self.programs.organization_by_external_id(program_id, event.organization_external_id)
            if org is None:
                raise ValidationFailed(f"no organization with external_id {event.organization_external_id!r}",
                                       field="organization_external_id")
        person = None
        if event.participant_id is not None:
            person = self.programs.participant(program_id, event.participant_id)
            if person is None:
                raise ValidationFailed(f"participant {event.participant_id} does not exist", field="participant_id")
        elif event.participant_external_id is not None:
            person = self.programs.participant_by_external_id(program_id, event.participant_external_id)
            if person is None:
                raise ValidationFailed(f"no participant with external_id {event.participant_external_id!r}",
                                       field="participant_external_id")
        if person is not None:
            if org is None:
                org = self.programs.organization(program_id, person["organization_id"])
            elif person["organization_id"] != org["id"]:
                raise ValidationFailed("the participant does not belong to that organization",
                                       field="participant_id")
        return org, person

    def record_one(self, program_id: int, event: IncomingEvent) -> Recorded:
        """Validate, then insert; a source id already stored makes it a duplicate (same content) or
        an ``EventConflict``. A stored event wins over validation too: a retry of an accepted event
        is a duplicate even if its type or schema has changed since (or 409 if its content differs)."""
        fingerprint = event.fingerprint()
        try:
            if event.occurred_at.tzinfo is None:
                raise ValidationFailed("must include a time zone offset", field="occurred_at")
            schema = self.port.event_type_schema(program_id, event.type)
            if schema is None:
                raise UnknownEventType(f"event type {event.type!r} is not declared in this program", field="type")
            validate_payload(schema, event.payload)
            org, person = self._subject(program_id, event)
        except ValidationFailed:
            stored = self._stored(program_id, event, fingerprint)
            if stored is None:
                raise
            return stored
        try:
            event_id = self.port.insert_event({
                "program_id": program_id, "source_id": event.source_id, "type": event.type,
                "organization_id": org["id"] if org else None, "participant_id": person["id"] if person else None,
                "occurred_at": event.occurred_at, "payload": event.payload, "payload_hash": fingerprint,
                "received_at": self.clock.now(),
            })
        except SourceIdTaken:
            stored = self._stored(program_id, event, fingerprint)
            if stored is None:  # the port said taken but nothing is stored: a bug, not a client error
                raise
            return stored
        transactions = self.process(program_id, event_id, event, org, person)
        return Recorded(event_id, event.source_id, Outcome.ACCEPTED, tuple(transactions))

    def process(self, program_id: int, event_id: int, event: IncomingEvent, org: dict[str, Any] | None,
                person: dict[str, Any] | None) -> list[int]:
        """Everything that follows storing a new event, in its transaction: the rule engine, the
        rule book, the observers, then the event's ``event.recorded`` outbox row. Separate from
        ``record_one`` so the bulk importer (``storage.bulk_rules``), which stores a chunk's events
        in one statement, runs exactly the same steps for each of them."""
        transactions = self.apply_rules(program_id, event_id, event, org, person)
        context = EventContext(program_id, event_id, event.type, event.occurred_at, event.payload, org, person)
        if self.rule_book is not None:
            transactions.extend(self.rule_book.apply(context))
        if self.observers:
            for observer in self.observers:
                observer.after_event(context, transactions)
        self.port.emit(program_id, "event.recorded", {"event_id": event_id, "type": event.type,
                                                      "source_id": event.source_id},
                       org["id"] if org else None)
        return transactions

    def _stored(self, program_id: int, event: IncomingEvent, fingerprint: str) -> Recorded | None:
        """The answer for a source id already recorded: a duplicate, or ``EventConflict``; None if new."""
        existing = self.port.existing_event(program_id, event.source_id)
        if existing is None:
            return None
        event_id, stored = existing
        if stored != fingerprint:
            raise EventConflict(f"source_id {event.source_id!r} was already recorded with other content",
                                field="source_id")
        return Recorded(event_id, event.source_id, Outcome.DUPLICATE, tuple(self.port.transactions_of_event(event_id)))

    def apply_rules(self, program_id: int, event_id: int, event: IncomingEvent,
                    org: dict[str, Any] | None, person: dict[str, Any] | None) -> list[int]:
        if self.rules.is_idle(program_id):
            return []
        intents = self.rules.evaluate(EventContext(program_id, event_id, event.type, event.occurred_at,
                                                   event.payload, org, person))
        if not intents:
            return []
        settings = ProgramsService(self.programs, self.ledger, self.clock).settings(program_id)
        posted = []
        for intent in intents:
            result = self.ledger.award(
                program_id, intent.unit, intent.amount, organization_id=intent.organization_id,
                participant_id=intent.participant_id, split=settings.award_split,
                expiry=settings.expiry_for(intent.unit), earned_at=event.occurred_at,
                memo=intent.reason, event_id=event_id,
                metadata={"rule": intent.rule, "inputs": intent.inputs, "source_id": event.source_id},
            )
            posted.append(result.transaction_id)
        return posted
