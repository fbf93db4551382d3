"""The composition root: the only module that wires adapters to domains.

API, web pages, CLI and tests all call :func:`build`; nothing connects to a database at import.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection

from allegiance.analytics.results import ProgramMoney
from allegiance.analytics.service import AnalyticsService
from allegiance.config import Settings
from allegiance.coop.service import CoopService
from allegiance.events.service import EventsService
from allegiance.finance.service import FinanceService
from allegiance.kernel.clock import Clock, SystemClock
from allegiance.ledger.service import LedgerService
from allegiance.partners.service import PartnersService
from allegiance.programs.service import ProgramsService
from allegiance.referrals.service import ReferralsService
from allegiance.rewards.concierge import ConciergeService
from allegiance.rewards.service import RewardsService
from allegiance.rules.contests import ContestsService
from allegiance.rules.engine import NoRules, RuleEngine
from allegiance.rules.service import RulesService
from allegiance.storage.access_repo import SqlAccess
from allegiance.storage.analytics_repo import SqlAnalytics
from allegiance.storage.coop_repo import SqlCoop
from allegiance.storage.database import Database
from allegiance.storage.events_repo import SqlEvents
from allegiance.storage.finance_repo import SqlFinance
from allegiance.storage.ledger_repo import SqlLedger
from allegiance.storage.partners_repo import SqlPartners
from allegiance.storage.programs_repo import SqlPrograms
from allegiance.storage.referrals_repo import SqlReferrals
from allegiance.storage.rewards_repo import SqlRewards
from allegiance.storage.rules_repo import SqlRules
from allegiance.storage.tiers_repo import SqlTiers
from allegiance.tiers.model import Level
from allegiance.tiers.service import TiersService
from allegiance.tiers.store_credit import StoreCreditService


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
    tiers: TiersService
    tier_store: SqlTiers
    store_credit: StoreCreditService
    rewards: RewardsService
    concierge: ConciergeService
    reward_store: SqlRewards
    coop: CoopService
    coop_store: SqlCoop
    referrals: ReferralsService
    referral_store: SqlReferrals
    partners: PartnersService
    partner_store: SqlPartners
    finance: FinanceService
    analytics_store: SqlAnalytics
    analytics: AnalyticsService


class AnalyticsContext:
    """What analytics reads from the other domains: the program's liability and point value
    (finance, program settings) and each organization's distance to its next tier."""

    def __init__(self, store: SqlAnalytics, programs: ProgramsService, finance: FinanceService,
                 tiers: TiersService) -> None:
        self.store, self.programs, self.finance, self.tiers = store, programs, finance, tiers

    def money(self, program_id: int) -> ProgramMoney:
        settings = self.programs.settings(program_id)
        unit = settings.unit(settings.default_unit)
        cost = unit.cost_per_point if unit else None
        liability = sum(int(line["value"]["amount_minor"]) for line in self.finance.liability(program_id)["units"]
                        if line["value"] is not None)
        return ProgramMoney(liability, cost.minor / cost.per_points if cost else None)

    def tier_progress(self, program_id: int) -> pl.DataFrame | None:
        if self.tiers.ladder_at(program_id, Level.ORGANIZATION) is None:
            return None
        rows = []
        for org_id, external_id in self.store.organization_keys(program_id).items():
            standing = self.tiers.standing(program_id, org_id, history=0)
            ahead = standing.get("progress")
            if not ahead or not ahead["criteria"]:
                continue
            binding = max(ahead["criteria"], key=lambda g: g["remaining"] / max(g["required"], 1))
            rows.append((external_id, standing["tier"] or "none", ahead["tier"], float(binding["current"]),
                         float(binding["required"])))
        return pl.DataFrame(rows, schema={"org": pl.String(), "tier": pl.String(), "next_tier": pl.String(),
                                          "progress_value": pl.Float64(), "next_threshold": pl.Float64()},
                            orient="row")


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
        tier_parts = self._tiers(conn, ledger, programs, program_store, rule_store)
        rule_book = RulesService(rule_store, ledger, programs.settings, self.clock, tiers=tier_parts["tiers"],
                                 declared_types=rule_store.declared_types)
        referral_parts = self._referrals(conn, programs)
        uow = UnitOfWork(
            conn=conn,
            ledger=ledger,
            programs=programs,
            events=EventsService(event_store, program_store, ledger, self.rules, self.clock, rule_book=rule_book,
                                 observers=[tier_parts["tiers"], referral_parts["referrals"]]),
            access=SqlAccess(conn, self.clock),
            program_store=program_store,
            event_store=event_store,
            ledger_store=ledger_store,
            rules=rule_book,
            rule_store=rule_store,
            contests=ContestsService(rule_store, ledger, programs.settings, self.clock),
            **tier_parts,
            **self._rewards(conn, ledger, programs, tier_parts["tiers"].tier_code),
            **self._coop(conn, ledger, programs),
            **referral_parts,
            **self._partners(conn, ledger, programs),
            **self._finance(conn, programs),
            **self._analytics(conn, programs, tier_parts["tiers"]),
        )
        uow.referrals.bind(uow.events)
        return uow

    def _tiers(self, conn: Connection, ledger: LedgerService, programs: ProgramsService, program_store: SqlPrograms,
               rule_store: SqlRules) -> dict[str, Any]:
        store = SqlTiers(conn, self.clock)
        tiers = TiersService(store, programs, program_store, self.clock, declared_types=rule_store.declared_types)
        return {"tiers": tiers, "tier_store": store,
                "store_credit": StoreCreditService(store, ledger, programs, self.clock)}

    def _rewards(self, conn: Connection, ledger: LedgerService, programs: ProgramsService,
                 tier_of: Callable[[int, int], str | None]) -> dict[str, Any]:
        store = SqlRewards(conn, self.clock)
        rewards = RewardsService(store, ledger, programs, self.clock, tier_of=tier_of)
        return {"rewards": rewards, "concierge": ConciergeService(store, rewards, self.clock), "reward_store": store}

    def _referrals(self, conn: Connection, programs: ProgramsService) -> dict[str, Any]:
        store = SqlReferrals(conn, self.clock)
        return {"referrals": ReferralsService(store, programs, self.clock), "referral_store": store}

    def _coop(self, conn: Connection, ledger: LedgerService, programs: ProgramsService) -> dict[str, Any]:
        store = SqlCoop(conn, self.clock)
        return {"coop": CoopService(store, ledger, programs, self.clock), "coop_store": store}

    def _partners(self, conn: Connection, ledger: LedgerService, programs: ProgramsService) -> dict[str, Any]:
        store = SqlPartners(conn, self.clock)
        return {"partners": PartnersService(store, ledger, programs, self.clock), "partner_store": store}

    def _analytics(self, conn: Connection, programs: ProgramsService, tiers: TiersService) -> dict[str, Any]:
        store = SqlAnalytics(conn, self.clock)
        finance = FinanceService(SqlFinance(conn, self.clock), programs, self.clock)
        context = AnalyticsContext(store, programs, finance, tiers)
        return {"analytics_store": store, "analytics": AnalyticsService(store, self.clock, context)}

    def _finance(self, conn: Connection, programs: ProgramsService) -> dict[str, Any]:
        return {"finance": FinanceService(SqlFinance(conn, self.clock), programs, self.clock)}

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
