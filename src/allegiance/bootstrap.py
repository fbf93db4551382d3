"""The composition root: the only module that wires adapters to domains.

API, web pages, CLI and tests all call :func:`build`; nothing connects to a database at import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

from allegiance.config import Settings
from allegiance.events.service import EventsService
from allegiance.kernel.clock import Clock, SystemClock
from allegiance.ledger.service import LedgerService
from allegiance.programs.service import ProgramsService
from allegiance.rules.contests import ContestsService
from allegiance.rules.engine import NoRules, RuleEngine
from allegiance.rules.service import RulesService
from allegiance.storage.access_repo import SqlAccess
from allegiance.storage.database import Database
from allegiance.storage.events_repo import SqlEvents
from allegiance.storage.ledger_repo import SqlLedger
from allegiance.storage.programs_repo import SqlPrograms
from allegiance.storage.rules_repo import SqlRules


@dataclass
class UnitOfWork:
    """Everything one use case needs, bound to one open database transaction."""

    conn: Connection
    ledger: LedgerService
    programs: ProgramsService
    events: EventsService
    access: SqlAccess
    program_store: SqlPrograms
    event_store: SqlEvents
    ledger_store: SqlLedger
    rules: RulesService
    rule_store: SqlRules
    contests: ContestsService


class Allegiance:
    def __init__(self, settings: Settings, db: Database, clock: Clock, rules: RuleEngine) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.rules = rules

    def _bind(self, conn: Connection) -> UnitOfWork:
        ledger_store = SqlLedger(conn, self.clock)
        program_store = SqlPrograms(conn, self.clock)
        event_store = SqlEvents(conn, self.clock)
        ledger = LedgerService(ledger_store, self.clock)
        programs = ProgramsService(program_store, ledger, self.clock)
        rule_store = SqlRules(conn, self.clock)
        rule_book = RulesService(rule_store, ledger, programs.settings, self.clock,
                                 declared_types=rule_store.declared_types)
        return UnitOfWork(
            conn=conn,
            ledger=ledger,
            programs=programs,
            events=EventsService(event_store, program_store, ledger, self.rules, self.clock, rule_book=rule_book),
            access=SqlAccess(conn, self.clock),
            program_store=program_store,
            event_store=event_store,
            ledger_store=ledger_store,
            rules=rule_book,
            rule_store=rule_store,
            contests=ContestsService(rule_store, ledger, programs.settings, self.clock),
        )

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """One transaction: commits if the block returns, rolls back if it raises."""
        with self.db.write() as conn:
            yield self._bind(conn)

    @contextmanager
    def read(self) -> Iterator[UnitOfWork]:
        with self.db.read() as conn:
            yield self._bind(conn)

    def close(self) -> None:
        self.db.dispose()


def build(
    settings: Settings | None = None, *, clock: Clock | None = None, rules: RuleEngine | None = None
) -> Allegiance:
    settings = settings or Settings()
    logging.getLogger("allegiance").setLevel(settings.log_level)
    db = Database(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous,
                  pool_size=settings.db_pool_size, cache_seconds=settings.cache_seconds)
    return Allegiance(settings, db, clock or SystemClock(), rules or NoRules())
