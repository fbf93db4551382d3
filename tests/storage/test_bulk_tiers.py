"""Bulk import of a program with tier ladders and a discount card: the chunked path (running totals
in ``chunk_tiers.BufferedTiers``) must leave exactly the rows event by event leaves — statuses,
history, daily totals, participant marks, and the awards an upgrade's multiplier changed mid-chunk
— on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, select

from allegiance.bootstrap import Allegiance
from allegiance.storage import tables as t
from allegiance.storage.tables_tiers import tier_history, tier_measures, tier_participant_marks, tier_status
from tests.storage.overlap import import_at_once, overlapping_halves
from tests.storage.test_bulk_rules import (
    TABLES,
    assert_same,
    import_twice_both_ways,
    prepared,
    with_trouble,
)

TIER_TABLES: list[Table] = [*TABLES, tier_measures, tier_participant_marks, tier_status, tier_history]


def organization_ladder() -> dict[str, Any]:
    """Rolled up over a group, shared with its subsidiaries; every kind of measure; multipliers
    that change what the rules award once a tier is reached."""
    value = {"measure": "value", "event_types": ["order.placed"], "field": "payload.amount_minor"}
    return {"code": "partner", "name": "Partner status", "tiers": [
        {"code": "member", "name": "Member"},
        {"code": "silver", "name": "Silver", "earn_multiplier": "1.5",
         "requires": [{**value, "at_least": 150_000}, {"measure": "count", "event_types": ["order.placed"],
                                                         "at_least": 3}]},
        {"code": "gold", "name": "Gold", "earn_multiplier": "2",
         "requires": [{**value, "at_least": 700_000}, {"measure": "credits", "at_least": 50},
                      {"measure": "participants", "event_types": ["training.completed"], "at_least": 2}]},
        {"code": "platinum", "name": "Platinum", "earn_multiplier": "3",
         "requires": [{**value, "at_least": 1_800_000, "window": {"kind": "rolling", "days": 45}}]},
    ]}


def person_ladder() -> dict[str, Any]:
    return {"code": "buyers", "name": "Buyer status", "level": "participant", "tiers": [
        {"code": "buyer", "name": "Buyer",
         "requires": [{"measure": "volume", "event_types": ["cartridge.recycled"], "field": "payload.quantity",
                       "at_least": 8}]},
        {"code": "top-buyer", "name": "Top buyer",
         "requires": [{"measure": "value", "event_types": ["order.placed"], "field": "payload.amount_minor",
                       "at_least": 250_000}, {"measure": "credits", "at_least": 25}]},
    ]}


def with_tiers(app: Allegiance, program_id: int) -> None:
    """A group above the first two organizations, both ladders, and a cumulative card on one."""
    with app.write() as uow:
        orgs = [row.id for row in uow.conn.execute(select(t.organizations.c.id).where(
            t.organizations.c.program_id == program_id).order_by(t.organizations.c.id))]
        group = uow.programs.create_organization(program_id, {"external_id": "group", "name": "Group",
                                                              "kind": "customer"})["id"]
        for org in orgs[:2]:
            uow.programs.update_organization(program_id, org, {"parent_id": group})
        uow.tiers.save_ladder(program_id, organization_ladder(), by="test")
        uow.tiers.save_ladder(program_id, person_ladder(), by="test")
        uow.tiers.set_card(program_id, orgs[2], {"kind": "cumulative", "event_types": ["order.placed"], "steps": [
            {"from_amount": 0, "percent": "1"}, {"from_amount": 300_000, "percent": "4"}]}, by="test")


@pytest.mark.parametrize(("seed", "count", "chunk_size"), [(11, 160, 7), (5, 150, 50), (23, 140, 1000)])
def test_a_ladder_program_imports_in_bulk_as_event_by_event(db_url: str, second_url: str, seed: int, count: int,
                                                            chunk_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    chunked, program_id, rows = prepared(db_url, count, seed)
    reference, other_id, _ = prepared(second_url, count, seed)
    with_tiers(chunked, program_id)
    with_tiers(reference, other_id)
    file = with_trouble(rows)
    try:
        import_twice_both_ways(chunked, program_id, reference, other_id, file, chunk_size, monkeypatch)
        with chunked.read() as uow:  # the ladders did move: the group, an organization and people went up
            moves = uow.conn.execute(select(tier_history.c.subject, tier_history.c.to_tier)).all()
            card_days = uow.conn.execute(select(tier_measures.c.day).where(
                tier_measures.c.scope.like("card:%"))).all()
        reached = {tier for _, tier in moves}
        assert {"silver", "gold"} <= reached and "top-buyer" in reached, moves
        assert any(subject.startswith("p:") for subject, _ in moves) and card_days
        assert_same(chunked, reference, TIER_TABLES)
    finally:
        chunked.close()
        reference.close()


def test_two_importers_of_a_ladder_program_count_every_event_once(db_url: str) -> None:
    """Overlapping files imported at once into a ladder program: the running totals equal a rebuild
    from the stored events, and each upgrade is written once (on PostgreSQL the importers overlap)."""
    app, program_id, rows = prepared(db_url, 150, 5)
    with_tiers(app, program_id)
    def totals() -> list[tuple[Any, ...]]:
        with app.read() as uow:
            return sorted(tuple(row) for row in uow.conn.execute(select(
                tier_measures.c.scope, tier_measures.c.measure, tier_measures.c.subject, tier_measures.c.day,
                tier_measures.c.amount, tier_measures.c.count)))

    try:
        results = import_at_once(app, program_id, overlapping_halves(list(enumerate(rows, start=2))), 15)
        assert len(results) == 2, "an importer raised"
        assert sum(s.accepted for s in results) == len(rows)
        imported = totals()
        with app.write() as uow:
            for stored in uow.tiers.ladders(program_id):
                uow.tiers.measurer.rebuild(program_id, stored)
        assert imported and imported == totals()  # (a rebuild replays the ladders' events; cards stay)
        with app.read() as uow:
            ups = uow.conn.execute(select(tier_history.c.ladder_id, tier_history.c.subject, tier_history.c.to_tier)
                                   .where(tier_history.c.direction == "up")).all()
        assert ups and len(ups) == len(set(ups))
    finally:
        app.close()
