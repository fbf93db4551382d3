"""Rules as data through the real event pipeline: save → activate → events → postings, on both
databases. Covers caps, lines, multipliers, exclusivity, pending awards and clawback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from allegiance.events.model import IncomingEvent
from allegiance.kernel.errors import ValidationFailed
from allegiance.programs.model import ProgramSettings, UnitConfig
from allegiance.rules.service import NotActivatable, RuleSetInvalid
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture

GOAL = {"behavior": "order more often", "metric": "repeat customer rate", "expected_uplift": "+5 %"}
MAY = datetime(2026, 5, 10, 12, tzinfo=UTC)
ANY_OBJECT = {"type": "object"}


def declare(app: Allegiance, program_id: int, *types: str) -> None:
    with app.write() as uow:
        for name in types:
            uow.events.declare_type(program_id, name, ANY_OBJECT)


def activate(app: Allegiance, program_id: int, document: dict[str, Any]) -> int:
    with app.write() as uow:
        version = uow.rules.save(program_id, document, by="test")["version"]
        uow.rules.activate(program_id, version, by="test")
    return int(version)


def record(app: Allegiance, program_id: int, type_: str, payload: dict[str, Any], *, org: int,
           person: int | None = None, at: datetime = MAY) -> list[int]:
    with app.write() as uow:
        recorded = uow.events.record_one(program_id, IncomingEvent(
            source_id=f.ref("ev"), type=type_, occurred_at=at, organization_id=org, participant_id=person,
            payload=payload))
    return list(recorded.transactions)


def balance(app: Allegiance, program_id: int, org: int, person: int | None = None, unit: str = "PTS") -> int:
    with app.read() as uow:
        account = uow.ledger.holder_account(program_id, unit, org, person)
        return int(account.balance or 0)


@pytest.fixture
def usd(allegiance: Allegiance, program: ProgramFixture) -> ProgramFixture:
    """MaxPerks-like: store dollars in cents, everything to the person."""
    with allegiance.write() as uow:
        settings = uow.programs.settings(program.id)
        uow.programs.configure(program.id, ProgramSettings(**{
            **settings.model_dump(), "units": [*settings.units, UnitConfig(code="USD", name="Store dollars", scale=2,
                                                                          kind="store_credit")],
            "award_split": {"mode": "participant"}}))
    declare(allegiance, program.id, "order.placed", "cartridge.recycled", "order.returned", "invoice.paid")
    return program


def maxperks(cap_cents: int = 10_000) -> dict[str, Any]:
    return {
        "rules": [
            {"code": "online-cashback", "name": "2 % of online spend", "trigger": "order.placed",
             "conditions": [{"field": "payload.channel", "op": "eq", "value": "online"}],
             "action": {"kind": "percent", "percent": "2", "of": "payload.amount_minor", "unit": "USD"},
             "key": "payload.order_id", "goal": GOAL},
            {"code": "recycling", "name": "$1 per cartridge", "trigger": "cartridge.recycled",
             "action": {"kind": "per_unit", "amount": 100, "per": "payload.quantity", "unit": "USD"}, "goal": GOAL},
        ],
        "caps": [{"code": "monthly", "scope": "participant", "period": "month", "unit": "USD",
                  "max_amount": cap_cents}],
    }


def test_maxperks_cap_applies_to_all_earnings(allegiance: Allegiance, usd: ProgramFixture) -> None:
    activate(allegiance, usd.id, maxperks())
    teacher_org = f.organization(allegiance, usd.id, segment="teacher")
    teacher = f.participant(allegiance, usd.id, teacher_org["id"])
    record(allegiance, usd.id, "order.placed", {"channel": "online", "amount_minor": 200_000, "order_id": "A"},
           org=teacher_org["id"], person=teacher["id"])
    record(allegiance, usd.id, "cartridge.recycled", {"quantity": 15}, org=teacher_org["id"], person=teacher["id"])
    assert balance(allegiance, usd.id, teacher_org["id"], teacher["id"], "USD") == 5_500  # $40 + $15

    business = f.organization(allegiance, usd.id, segment="small_business")
    owner = f.participant(allegiance, usd.id, business["id"])
    record(allegiance, usd.id, "order.placed", {"channel": "online", "amount_minor": 500_000, "order_id": "B"},
           org=business["id"], person=owner["id"])
    record(allegiance, usd.id, "cartridge.recycled", {"quantity": 30}, org=business["id"], person=owner["id"])
    assert balance(allegiance, usd.id, business["id"], owner["id"], "USD") == 10_000  # $100 + $30 → capped at $100
    with allegiance.read() as uow:
        awards = uow.rule_store.awards_of_organization(usd.id, [business["id"]], after=None, limit=10)
    assert sum(a["capped"] for a in awards) == 3_000
    # a new month has a new cap
    record(allegiance, usd.id, "cartridge.recycled", {"quantity": 2}, org=business["id"], person=owner["id"],
           at=MAY + timedelta(days=31))
    assert balance(allegiance, usd.id, business["id"], owner["id"], "USD") == 10_200


def test_offline_order_earns_nothing_and_postings_explain_themselves(allegiance: Allegiance,
                                                                      usd: ProgramFixture) -> None:
    version = activate(allegiance, usd.id, maxperks())
    org = f.organization(allegiance, usd.id)
    person = f.participant(allegiance, usd.id, org["id"])
    assert record(allegiance, usd.id, "order.placed", {"channel": "store", "amount_minor": 100_000},
                  org=org["id"], person=person["id"]) == []
    [tx] = record(allegiance, usd.id, "order.placed", {"channel": "online", "amount_minor": 12_345, "order_id": "C"},
                  org=org["id"], person=person["id"])
    with allegiance.read() as uow:
        header = uow.ledger_store.transaction_header(usd.id, tx)
    assert header is not None
    assert header["metadata"]["rule"] == "online-cashback"
    assert header["metadata"]["rule_set_version"] == version
    assert header["metadata"]["inputs"] == {"payload.amount_minor": 12_345}
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 246  # 2 % of 123.45, rounded down


def test_returns_claw_back_proportionally_and_never_more_than_awarded(allegiance: Allegiance,
                                                                      usd: ProgramFixture) -> None:
    document = maxperks(cap_cents=10**9)
    document["rules"].append({"code": "returns", "name": "Returns", "trigger": "order.returned",
                              "action": {"kind": "clawback", "rules": ["online-cashback"], "key": "payload.order_id",
                                         "amount": "payload.amount_minor"}})
    activate(allegiance, usd.id, document)
    org = f.organization(allegiance, usd.id)
    person = f.participant(allegiance, usd.id, org["id"])
    record(allegiance, usd.id, "order.placed", {"channel": "online", "amount_minor": 100_000, "order_id": "R1"},
           org=org["id"], person=person["id"])
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 2_000
    record(allegiance, usd.id, "order.returned", {"order_id": "R1", "amount_minor": 25_000}, org=org["id"])
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 1_500
    for _ in range(3):  # returning more than was bought takes back at most the whole award
        record(allegiance, usd.id, "order.returned", {"order_id": "R1", "amount_minor": 50_000}, org=org["id"])
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 0
    with allegiance.read() as uow:
        assert verify(uow.conn).problems == []


def test_pending_until_invoice_paid(allegiance: Allegiance, usd: ProgramFixture) -> None:
    document = maxperks(cap_cents=10**9)
    document["rules"][0]["timing"] = {"until_event": "invoice.paid", "key": "payload.order_id"}
    activate(allegiance, usd.id, document)
    org = f.organization(allegiance, usd.id)
    person = f.participant(allegiance, usd.id, org["id"])
    assert record(allegiance, usd.id, "order.placed", {"channel": "online", "amount_minor": 50_000, "order_id": "P1"},
                  org=org["id"], person=person["id"]) == []
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 0
    record(allegiance, usd.id, "invoice.paid", {"order_id": "OTHER"}, org=org["id"])
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 0
    released = record(allegiance, usd.id, "invoice.paid", {"order_id": "P1"}, org=org["id"])
    assert len(released) == 1
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 1_000
    record(allegiance, usd.id, "invoice.paid", {"order_id": "P1"}, org=org["id"])  # released once only
    assert balance(allegiance, usd.id, org["id"], person["id"], "USD") == 1_000


def test_lines_multiplier_and_exclusive_groups(allegiance: Allegiance, program: ProgramFixture) -> None:
    declare(allegiance, program.id, "ticket.sold")
    activate(allegiance, program.id, {"rules": [
        {"code": "business", "name": "Business class", "trigger": "ticket.sold", "lines": {"path": "payload.lines"},
         "conditions": [{"field": "line.fare_class", "op": "eq", "value": "business"}],
         "action": {"kind": "per_unit", "amount": 500, "per": "line.quantity"}, "recipient": "participant",
         "goal": GOAL},
        {"code": "first", "name": "First class", "trigger": "ticket.sold", "lines": {"path": "payload.lines"},
         "conditions": [{"field": "line.fare_class", "op": "eq", "value": "first"}],
         "action": {"kind": "per_unit", "amount": 1000, "per": "line.quantity"}, "recipient": "participant",
         "goal": GOAL},
        {"code": "double-week", "name": "Double miles week", "trigger": "ticket.sold", "priority": 1,
         "valid_from": "2026-05-01T00:00:00Z", "valid_to": "2026-05-08T00:00:00Z",
         "action": {"kind": "multiplier", "factor": "2"}},
        {"code": "welcome", "name": "Welcome", "trigger": "ticket.sold", "group": "welcome", "priority": 5,
         "conditions": [{"field": "payload.first", "op": "eq", "value": True}],
         "action": {"kind": "fixed", "amount": 7}, "recipient": "participant", "goal": GOAL},
        {"code": "welcome-2", "name": "Second welcome", "trigger": "ticket.sold", "group": "welcome", "priority": 6,
         "action": {"kind": "fixed", "amount": 1000}, "recipient": "participant", "goal": GOAL},
    ]})
    org = f.organization(allegiance, program.id, kind="other")
    agent = f.participant(allegiance, program.id, org["id"], role="sales_rep")
    lines = [{"fare_class": "business", "quantity": 10}, {"fare_class": "first", "quantity": 5},
             {"fare_class": "economy", "quantity": 30}]
    record(allegiance, program.id, "ticket.sold", {"lines": lines, "first": True}, org=org["id"], person=agent["id"])
    # 10×500 + 5×1000 + 7 (the first of the welcome group only), all to the agent, none to the agency
    assert balance(allegiance, program.id, org["id"], agent["id"]) == 10_007
    assert balance(allegiance, program.id, org["id"]) == 0
    record(allegiance, program.id, "ticket.sold", {"lines": lines[:1]}, org=org["id"], person=agent["id"],
           at=datetime(2026, 5, 3, tzinfo=UTC))
    assert balance(allegiance, program.id, org["id"], agent["id"]) == 10_007 + 2 * (5_000 + 1_000)


def test_save_names_the_bad_field_and_activation_needs_a_goal(allegiance: Allegiance,
                                                              program: ProgramFixture) -> None:
    declare(allegiance, program.id, "order.placed")
    bad = {"rules": [{"code": "x", "name": "X", "trigger": "order.placed",
                      "action": {"kind": "percent", "percent": "2", "of": "payload.amount", "bogus": 1}}]}
    with pytest.raises(RuleSetInvalid) as info, allegiance.write() as uow:
        uow.rules.save(program.id, bad, by="t")
    assert info.value.field == "rules[0].action.bogus"
    unknown_op = {"rules": [{"code": "x", "name": "X", "trigger": "order.placed",
                             "conditions": [{"field": "payload.a", "op": "like", "value": 1}],
                             "action": {"kind": "fixed", "amount": 1}}]}
    with pytest.raises(RuleSetInvalid) as info, allegiance.write() as uow:
        uow.rules.save(program.id, unknown_op, by="t")
    assert info.value.field == "rules[0].conditions[0].op"
    undeclared = {"rules": [{"code": "x", "name": "X", "trigger": "order.shipped", "action": {"kind": "fixed",
                                                                                           "amount": 1}}]}
    with pytest.raises(ValidationFailed) as info, allegiance.write() as uow:
        uow.rules.save(program.id, undeclared, by="t")
    assert info.value.field == "rules[0].trigger"
    with allegiance.write() as uow:
        version = uow.rules.save(program.id, {"rules": [{"code": "x", "name": "X", "trigger": "order.placed",
                                                         "action": {"kind": "fixed", "amount": 1}}]}, by="t")
    with pytest.raises(NotActivatable) as info, allegiance.write() as uow:
        uow.rules.activate(program.id, version["version"], by="t")
    assert info.value.field == "rules[0].goal"


def test_store_credit_has_its_own_expiry(allegiance: Allegiance, program: ProgramFixture) -> None:
    """Cashback in store credit expires after 90 days while points never do (the program's policy)."""
    with allegiance.write() as uow:
        settings = uow.programs.settings(program.id)
        uow.programs.configure(program.id, ProgramSettings(**{
            **settings.model_dump(), "units": [*settings.units, UnitConfig(
                code="USD", name="Store credit", scale=2, kind="store_credit",
                expiry={"mode": "days", "days": 90})]}))
    declare(allegiance, program.id, "order.placed")
    activate(allegiance, program.id, {"rules": [
        {"code": "cashback", "name": "1 % back", "trigger": "order.placed", "recipient": "organization",
         "action": {"kind": "percent", "percent": "1", "of": "payload.amount_minor", "unit": "USD"}, "goal": GOAL},
        {"code": "points", "name": "1 point per order", "trigger": "order.placed", "recipient": "organization",
         "action": {"kind": "fixed", "amount": 1}, "goal": GOAL}]})
    org = f.organization(allegiance, program.id)
    record(allegiance, program.id, "order.placed", {"amount_minor": 10_000}, org=org["id"])
    with allegiance.read() as uow:
        credit_lots = uow.ledger.port.open_lots(f.pool_account(allegiance, program.id, org["id"], "USD"))
        point_lots = uow.ledger.port.open_lots(f.pool_account(allegiance, program.id, org["id"], "PTS"))
    assert [lot.expires_at for lot in credit_lots] == [MAY + timedelta(days=90)]
    assert [lot.expires_at for lot in point_lots] == [None]
