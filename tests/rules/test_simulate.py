"""Backtest: a simulation of a draft over stored events must say exactly what activating that draft
and importing the same events does — issued, clawed back, liability, caps hit, capped, pending,
benefits, tier credits, who is affected, top earners — and must write nothing. Both databases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent
from allegiance.kernel.errors import NotFound, ValidationFailed
from allegiance.programs.model import ProgramSettings, UnitConfig
from allegiance.rules.service import RuleSetInvalid
from allegiance.rules.simulate import Simulation, SimulationReport, merged
from allegiance.storage import tables as t
from allegiance.storage import tables_rules as r
from allegiance.storage.bulk_events import import_rows
from tests import factories as f
from tests.conftest import ProgramFixture

GOAL = {"behavior": "order more often", "metric": "repeat customer rate", "expected_uplift": "+5 %"}
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
TYPES = ("order.placed", "invoice.paid", "order.returned", "cartridge.recycled", "training.completed")


def draft() -> dict[str, Any]:
    """Every kind of effect a backtest adds up: percent with a cap, per line, a volume ladder, a
    multiplier with a window, pending until payment, a proportional clawback, a benefit, tier
    credits, a count cap, a rule that never fires."""
    return {
        "rules": [
            {"code": "cashback", "name": "3 % back", "trigger": "order.placed", "key": "payload.order_id",
             "action": {"kind": "percent", "percent": "3", "of": "payload.amount_minor", "unit": "USD"},
             "caps": ["monthly-usd"], "goal": GOAL},
            {"code": "toner-lines", "name": "10 PTS per toner unit", "trigger": "order.placed",
             "key": "payload.order_id", "lines": {"path": "payload.lines", "conditions": [
                 {"field": "line.category", "op": "eq", "value": "toner"}]},
             "action": {"kind": "per_unit", "amount": 10, "per": "line.quantity"}, "goal": GOAL},
            {"code": "paid-bonus", "name": "1 PTS per 10 USD once paid", "trigger": "order.placed",
             "key": "payload.order_id", "timing": {"until_event": "invoice.paid", "key": "payload.order_id"},
             "action": {"kind": "percent", "percent": "0.1", "of": "payload.amount_minor"},
             "caps": ["weekly-count"], "goal": GOAL},
            {"code": "winter-double", "name": "Double points in February", "trigger": "order.placed",
             "action": {"kind": "multiplier", "factor": "2", "units": ["PTS"]},
             "valid_from": "2026-02-01T00:00:00Z", "valid_to": "2026-03-01T00:00:00Z"},
            {"code": "recycling", "name": "Ladder per cartridge", "trigger": "cartridge.recycled",
             "action": {"kind": "stepped", "per": "payload.quantity", "period": "quarter",
                        "steps": [{"from_quantity": 0, "amount": 5}, {"from_quantity": 20, "amount": 9}]},
             "goal": GOAL},
            {"code": "returns", "name": "Returns take back", "trigger": "order.returned",
             "action": {"kind": "clawback", "rules": ["cashback", "toner-lines", "paid-bonus"],
                        "key": "payload.order_id", "amount": "payload.amount_minor"}},
            {"code": "course-pass", "name": "Course certificate", "trigger": "training.completed",
             "conditions": [{"field": "payload.score", "op": "gte", "value": 80}],
             "action": {"kind": "benefit", "code": "certificate", "description": "A certificate"}},
            {"code": "course-credit", "name": "Qualifying credits", "trigger": "training.completed",
             "action": {"kind": "tier_credit", "amount": 25}},
            {"code": "never", "name": "Huge orders only", "trigger": "order.placed",
             "conditions": [{"field": "payload.amount_minor", "op": "gt", "value": 10**12}],
             "action": {"kind": "fixed", "amount": 1}, "goal": GOAL},
        ],
        "caps": [
            {"code": "monthly-usd", "scope": "participant", "period": "month", "unit": "USD", "max_amount": 4_000},
            {"code": "weekly-count", "scope": "organization", "period": "week", "max_count": 2},
        ],
    }


def program_with_history(app: Allegiance, program: ProgramFixture, count: int, seed: int = 11
                         ) -> list[dict[str, Any]]:
    """A program (PTS + USD store credit, awards to the person) and ``count`` events in time order."""
    with app.write() as uow:
        settings = uow.programs.settings(program.id)
        uow.programs.configure(program.id, ProgramSettings(**{
            **settings.model_dump(), "units": [*settings.units, UnitConfig(code="USD", name="Store dollars", scale=2,
                                                                          kind="store_credit")],
            "award_split": {"mode": "participant"}}))
        for name in TYPES:
            uow.events.declare_type(program.id, name, {"type": "object"})
    rng = random.Random(seed)
    people = []
    for _ in range(3):
        org = f.organization(app, program.id)
        people += [(org["id"], f.participant(app, program.id, org["id"])["id"]) for _ in range(2)]
    events: list[dict[str, Any]] = []
    orders: list[tuple[str, int, int, int]] = []
    at = START + timedelta(hours=1)
    for index in range(count):
        at += timedelta(minutes=rng.randint(30, 1400))
        org_id, person_id = rng.choice(people)
        roll = rng.random()
        if roll < 0.45 or not orders:
            order_id, amount = f"o{index}", rng.randint(1_000, 90_000)
            orders.append((order_id, amount, org_id, person_id))
            lines = [{"sku": "t1", "category": rng.choice(["toner", "paper"]), "quantity": rng.randint(1, 4)}]
            kind, payload = "order.placed", {"order_id": order_id, "amount_minor": amount, "lines": lines}
        elif roll < 0.65:
            order_id, amount, org_id, person_id = rng.choice(orders)
            kind, payload = "invoice.paid", {"order_id": order_id, "amount_minor": amount}
        elif roll < 0.78:
            order_id, amount, org_id, person_id = rng.choice(orders)
            kind, payload = "order.returned", {"order_id": order_id, "amount_minor": rng.randint(1, amount // 2)}
        elif roll < 0.9:
            kind, payload = "cartridge.recycled", {"quantity": rng.randint(1, 12)}
        else:
            kind, payload = "training.completed", {"course_id": "c1", "score": rng.randint(50, 100)}
        events.append({"type": kind, "occurred_at": at, "organization_id": org_id, "participant_id": person_id,
                       "payload": payload})
    assert at < END
    return events


def record_all(app: Allegiance, program_id: int, events: list[dict[str, Any]], prefix: str) -> None:
    with app.write() as uow:
        for index, event in enumerate(events):
            uow.events.record_one(program_id, IncomingEvent(source_id=f"{prefix}-{index}", **event))


def row_counts(app: Allegiance) -> dict[str, int]:
    with app.read() as uow:
        existing = set(inspect(uow.conn).get_table_names())  # every migrated table, whoever owns it
        return {table.name: int(uow.conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in t.metadata.sorted_tables if table.name in existing}


def live_outcome(app: Allegiance, program_id: int, version: int) -> dict[str, Any]:
    """What the activated rules actually did, read back from the award log and the ledger."""
    a = r.rule_awards
    with app.read() as uow:
        rows = [dict(row._mapping) for row in uow.conn.execute(
            select(a).where(a.c.program_id == program_id, a.c.rule_set_version == version))]
        balances = dict(uow.conn.execute(
            select(t.accounts.c.unit, func.sum(t.accounts.c.balance)).where(
                t.accounts.c.program_id == program_id, t.accounts.c.organization_id.is_not(None))
            .group_by(t.accounts.c.unit)).all())
        per_org = uow.conn.execute(
            select(t.accounts.c.unit, t.accounts.c.organization_id, func.sum(t.accounts.c.balance)).where(
                t.accounts.c.program_id == program_id, t.accounts.c.organization_id.is_not(None))
            .group_by(t.accounts.c.unit, t.accounts.c.organization_id)).all()
    posted = [row for row in rows if row["kind"] == "award" and row["status"] == "posted"]
    pending = [row for row in rows if row["kind"] == "award" and row["status"] == "pending"]
    out: dict[str, Any] = {"issued": {}, "clawed_back": {}, "capped": {}, "caps_hit": {}, "pending": {},
                           "net_by_org": {}}
    for row in posted:
        unit = row["unit"] or "PTS"
        out["issued"][unit] = out["issued"].get(unit, 0) + row["amount"]
        if row["capped"]:
            out["capped"][unit] = out["capped"].get(unit, 0) + row["capped"]
        for code in row["caps_hit"]:
            out["caps_hit"][code] = out["caps_hit"].get(code, 0) + 1
    for unit, org_id, total in per_org:
        if total:
            out["net_by_org"].setdefault(unit, {})[org_id] = int(total)
    for row in pending:
        entry = out["pending"].setdefault(row["unit"] or "PTS", {"count": 0, "amount": 0})
        entry["count"] += 1
        entry["amount"] += row["amount"]
    out["liability"] = {unit: int(total) for unit, total in balances.items() if total}
    # what clawbacks took from holders (a row's `clawed` also counts what lowered it while pending)
    out["clawed_back"] = {unit: issued - out["liability"].get(unit, 0) for unit, issued in out["issued"].items()}
    out["benefits"] = sum(row["amount"] for row in rows if row["kind"] == "benefit")
    out["tier_credits"] = sum(row["amount"] for row in rows if row["kind"] == "tier_credit")
    affected = [row for row in rows if row["kind"] == "benefit" or row in pending
                or (row in posted and row["amount"] > 0)]
    out["organizations"] = len({row["organization_id"] for row in affected})
    out["participants"] = len({row["participant_id"] for row in affected if row["participant_id"]})
    out["awards"] = len(posted)
    return out


@pytest.mark.parametrize("count", [160])
def test_a_backtest_says_what_activation_and_import_then_do(allegiance: Allegiance, program: ProgramFixture,
                                                            count: int) -> None:
    events = program_with_history(allegiance, program, count)
    record_all(allegiance, program.id, events, "history")  # no rules active: stored, nothing earned
    with allegiance.write() as uow:
        version = int(uow.rules.save(program.id, draft(), by="test")["version"])
    before = row_counts(allegiance)
    with allegiance.read() as uow:
        report = uow.rules.simulate(program.id, version, START, END)
    assert row_counts(allegiance) == before  # nothing written: no posting, counter, award or outbox row

    with allegiance.write() as uow:  # now for real: activate the same draft, import the same events
        uow.rules.activate(program.id, version, by="test")
    rows = [{"source_id": f"live-{i}", "type": e["type"], "occurred_at": e["occurred_at"].isoformat(),
             "organization_id": e["organization_id"], "participant_id": e["participant_id"],
             "payload": e["payload"]} for i, e in enumerate(events)]
    summary = import_rows(allegiance, program.id, ((n + 1, row) for n, row in enumerate(rows)), chunk_size=50)
    assert summary.accepted == count
    live = live_outcome(allegiance, program.id, version)

    assert report.events_read == count
    assert report.issued == live["issued"]
    assert {u: v for u, v in report.clawed_back.items() if v} == {u: v for u, v in live["clawed_back"].items() if v}
    assert {u: v for u, v in report.liability.items() if v} == live["liability"]
    assert report.capped == live["capped"]
    assert report.awards == live["awards"]
    assert report.caps_hit == live["caps_hit"]
    assert report.caps_hit["monthly-usd"] > 0 and report.caps_hit["weekly-count"] > 0  # the caps really bit
    assert report.pending == live["pending"]
    assert report.benefits.get("certificate", 0) == live["benefits"] > 0
    assert report.tier_credits == live["tier_credits"] > 0
    assert report.organizations_affected == live["organizations"]
    assert report.participants_affected == live["participants"]
    assert report.clawed_back.get("USD", 0) > 0 and report.liability["USD"] < report.issued["USD"]
    for unit, top in report.top_organizations.items():
        expected = sorted(live["net_by_org"][unit].items(), key=lambda item: (-item[1], item[0]))[:len(top)]
        assert [(row["organization_id"], row["amount"]) for row in top] == expected
    assert report.never_fired == ["never"]
    assert report.rules["cashback"]["fired"] > 0 and report.rules["winter-double"]["fired"] > 0
    assert report.counters_seeded_from == "nothing"


def test_a_draft_document_is_simulated_without_being_saved(allegiance: Allegiance, program: ProgramFixture) -> None:
    events = program_with_history(allegiance, program, 40, seed=3)
    record_all(allegiance, program.id, events, "h")
    before = row_counts(allegiance)
    with allegiance.read() as uow:
        report = uow.rules.simulate(program.id, draft(), START, END)
        middle = uow.rules.simulate(program.id, draft(), START + timedelta(days=20), START + timedelta(days=40))
    assert row_counts(allegiance) == before
    assert report.rule_set_version is None and report.events_read == 40
    inside = [e for e in events if START + timedelta(days=20) <= e["occurred_at"] < START + timedelta(days=40)]
    assert middle.events_read == len(inside) < 40  # only the period, [from, to)
    assert report.as_dict()["liability"] == report.liability


def test_bad_input_names_the_field(allegiance: Allegiance, program: ProgramFixture) -> None:
    program_with_history(allegiance, program, 1)
    bad = draft()
    bad["rules"][0]["action"]["percent"] = "-1"
    with allegiance.read() as uow:
        with pytest.raises(RuleSetInvalid) as invalid:
            uow.rules.simulate(program.id, bad, START, END)
        assert invalid.value.field == "rules[0].action.percent"
        with pytest.raises(NotFound) as missing:
            uow.rules.simulate(program.id, 999, START, END)
        assert missing.value.field == "version"
        with pytest.raises(ValidationFailed) as backwards:
            uow.rules.simulate(program.id, draft(), END, START)
        assert backwards.value.field == "to"


def test_memory_limit_forgets_the_oldest_keys_and_says_so() -> None:
    """Bounded memory: past ``key_limit`` match keys the oldest are dropped, counted and noted."""
    from allegiance.rules.engine import EventContext
    from allegiance.rules.evaluate import compile_rule_set
    from allegiance.rules.model import parse_rule_set

    settings = ProgramSettings(units=[UnitConfig(code="PTS", name="Points"),
                                      UnitConfig(code="USD", name="Store dollars", scale=2, kind="store_credit")],
                               award_split={"mode": "participant"})
    compiled = compile_rule_set(parse_rule_set(draft()), 0)
    simulation = Simulation(compiled, settings, SimulationReport(1, None, START, END), key_limit=5)
    org = {"id": 1, "tier": None}
    for index in range(12):
        simulation.feed(EventContext(1, index, "order.placed", START + timedelta(hours=index),
                                     {"order_id": f"o{index}", "amount_minor": 10_000, "lines": []}, org, {"id": 9}))
    assert len(simulation.keyed) == 5
    report = simulation.report()
    assert report.evicted_keys == 7 and any("memory limit" in note for note in report.notes)


def test_merged_streams_come_out_in_time_then_id_order() -> None:
    at = START
    a = iter([(at, 1, "a", 1, None, {}), (at + timedelta(1), 5, "a", 1, None, {})])
    b = iter([(at, 0, "b", 1, None, {}), (at, 3, "b", 1, None, {}), (at + timedelta(2), 2, "b", 1, None, {})])
    assert [e[1] for e in merged([a, b])] == [0, 1, 3, 5, 2]
