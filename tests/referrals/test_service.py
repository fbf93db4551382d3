"""Referrals against a real database: registration, conversion on the first qualifying order through
the events pipeline (rules reward both sides), fraud held for review, and two concurrent first
orders that convert once."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from allegiance.bootstrap import Allegiance, build
from allegiance.events.model import IncomingEvent
from allegiance.kernel.errors import ValidationFailed
from allegiance.referrals.errors import AlreadyReferred, InvalidReferralTransition
from allegiance.referrals.model import ReferralSettings, RegisterReferral
from allegiance.storage import tables as t
from tests import factories as f
from tests.conftest import ProgramFixture, make_settings

AT = datetime(2026, 6, 1, tzinfo=UTC)
GOAL = {"behavior": "partners bring partners", "metric": "share of new customers referred", "expected_uplift": "+5 %"}
BOTH_SIDES = {"rules": [
    {"code": "referrer-bonus", "name": "500 to the referrer", "trigger": "referral.converted",
     "conditions": [{"field": "payload.side", "op": "eq", "value": "referrer"}],
     "action": {"kind": "fixed", "amount": 500}, "recipient": "participant", "goal": GOAL},
    {"code": "welcome-bonus", "name": "300 to the newcomer", "trigger": "referral.converted",
     "conditions": [{"field": "payload.side", "op": "eq", "value": "referred"}],
     "action": {"kind": "fixed", "amount": 300}, "recipient": "organization", "goal": GOAL}]}


def setup(app: Allegiance, program_id: int, **settings: Any) -> tuple[dict[str, Any], str]:
    with app.write() as uow:
        uow.events.declare_type(program_id, "order.placed", {"type": "object"})
        uow.referrals.set_settings(program_id, ReferralSettings.model_validate(
            {"min_amount": 10_000, **settings}), "test")
        saved = uow.rules.save(program_id, BOTH_SIDES, by="test")
        uow.rules.activate(program_id, saved["version"], by="test")
    org = f.organization(app, program_id, external_id=f.ref("ref"))
    referrer = f.participant(app, program_id, org["id"], email="ann@aqua.example")
    with app.write() as uow:
        code = uow.referrals.code_for(program_id, referrer["id"])["code"]
    return referrer, code


def order(app: Allegiance, program_id: int, organization_id: int, amount: int) -> None:
    with app.write() as uow:
        uow.events.record_one(program_id, IncomingEvent(
            source_id=uuid.uuid4().hex, type="order.placed", occurred_at=AT, organization_id=organization_id,
            payload={"amount_minor": amount}))


def register(app: Allegiance, program_id: int, code: str, organization_id: int, email: str = "bob@new.example",
             source: str | None = None) -> dict[str, Any]:
    with app.write() as uow:
        return uow.referrals.register(program_id, RegisterReferral(
            code=code, organization_id=organization_id, contact_email=email, source=source), "test")


def balances(app: Allegiance, program_id: int, organization_id: int) -> dict[str, int]:
    with app.read() as uow:
        rows = uow.conn.execute(select(t.accounts.c.kind, t.accounts.c.balance).where(
            t.accounts.c.program_id == program_id, t.accounts.c.organization_id == organization_id,
            t.accounts.c.unit == "PTS"))
        return {kind: int(balance or 0) for kind, balance in rows}


def derived(app: Allegiance, program_id: int) -> list[tuple[str, str]]:
    with app.read() as uow:
        return [(r.type, r.payload["side"]) for r in uow.conn.execute(
            select(t.events.c.type, t.events.c.payload).where(t.events.c.program_id == program_id,
                                                              t.events.c.type.like("referral.%"))
            .order_by(t.events.c.id))]


def test_first_qualifying_order_converts_and_rules_reward_both_sides(allegiance: Allegiance,
                                                                     program: ProgramFixture) -> None:
    referrer, code = setup(allegiance, program.id)
    newcomer = f.organization(allegiance, program.id)
    referral = register(allegiance, program.id, code.lower(), newcomer["id"])
    assert (referral["status"], referral["flags"]) == ("registered", [])
    order(allegiance, program.id, newcomer["id"], 5_000)  # below the minimum: not qualifying
    with allegiance.read() as uow:
        assert uow.referrals.referral(program.id, referral["id"])["status"] == "registered"
    order(allegiance, program.id, newcomer["id"], 20_000)
    order(allegiance, program.id, newcomer["id"], 20_000)  # the second order changes nothing
    with allegiance.read() as uow:
        converted = uow.referrals.referral(program.id, referral["id"])
    assert converted["status"] == "converted" and converted["qualifying_event_id"] is not None
    assert derived(allegiance, program.id) == [("referral.joined", "referrer"), ("referral.joined", "referred"),
                                               ("referral.converted", "referrer"), ("referral.converted", "referred")]
    assert balances(allegiance, program.id, referrer["organization_id"])["personal"] == 500
    assert balances(allegiance, program.id, newcomer["id"])["pool"] == 300


def test_an_organization_is_referred_once_and_codes_must_exist(allegiance: Allegiance,
                                                               program: ProgramFixture) -> None:
    _, code = setup(allegiance, program.id)
    newcomer = f.organization(allegiance, program.id)
    register(allegiance, program.id, code, newcomer["id"])
    with pytest.raises(AlreadyReferred):
        register(allegiance, program.id, code, newcomer["id"])
    with pytest.raises(ValidationFailed) as unknown:
        register(allegiance, program.id, "ABCDEFGHJK", f.organization(allegiance, program.id)["id"])
    assert unknown.value.field == "code"


def test_a_rotated_code_stops_registering(allegiance: Allegiance, program: ProgramFixture) -> None:
    referrer, code = setup(allegiance, program.id)
    with allegiance.write() as uow:
        fresh = uow.referrals.code_for(program.id, referrer["id"], rotate=True)
        again = uow.referrals.code_for(program.id, referrer["id"])
    assert fresh["code"] != code and again["code"] == fresh["code"]
    assert fresh["link"].endswith(fresh["code"])
    with pytest.raises(ValidationFailed):
        register(allegiance, program.id, code, f.organization(allegiance, program.id)["id"])


@pytest.mark.parametrize("case", ["same organization", "same e-mail domain", "burst"])
def test_suspicious_referrals_are_held_for_review(allegiance: Allegiance, program: ProgramFixture, case: str) -> None:
    referrer, code = setup(allegiance, program.id, burst_max=2)
    if case == "burst":
        for _ in range(2):
            register(allegiance, program.id, code, f.organization(allegiance, program.id)["id"], source="ip:1")
    target = referrer["organization_id"] if case == "same organization" else f.organization(
        allegiance, program.id)["id"]
    email = "boss@aqua.example" if case == "same e-mail domain" else "bob@new.example"
    referral = register(allegiance, program.id, code, target, email=email, source="ip:1")
    assert referral["flags"]
    order(allegiance, program.id, target, 50_000)
    with allegiance.read() as uow:
        assert uow.referrals.referral(program.id, referral["id"])["status"] == "held"
    assert ("referral.converted", "referrer") not in derived(allegiance, program.id)[-2:]
    before = balances(allegiance, program.id, referrer["organization_id"]).get("personal", 0)
    with allegiance.write() as uow:
        approved = uow.referrals.approve(program.id, referral["id"], "user:1", "checked by phone")
    assert approved["status"] == "converted"
    assert balances(allegiance, program.id, referrer["organization_id"])["personal"] == before + 500
    with allegiance.write() as uow, pytest.raises(InvalidReferralTransition):
        uow.referrals.approve(program.id, referral["id"], "user:1")


def test_a_rejected_referral_never_converts(allegiance: Allegiance, program: ProgramFixture) -> None:
    referrer, code = setup(allegiance, program.id)
    referral = register(allegiance, program.id, code, referrer["organization_id"])
    order(allegiance, program.id, referrer["organization_id"], 50_000)
    with allegiance.write() as uow:
        rejected = uow.referrals.reject(program.id, referral["id"], "user:1", "own company")
    assert (rejected["status"], rejected["review_note"]) == ("rejected", "own company")
    order(allegiance, program.id, referrer["organization_id"], 50_000)
    assert balances(allegiance, program.id, referrer["organization_id"]).get("personal", 0) == 0


def test_two_concurrent_first_orders_convert_once(allegiance: Allegiance, program: ProgramFixture,
                                                  db_url: str) -> None:
    referrer, code = setup(allegiance, program.id)
    newcomer = f.organization(allegiance, program.id)
    register(allegiance, program.id, code, newcomer["id"])
    apps = [build(make_settings(db_url)) for _ in range(4)]
    barrier = threading.Barrier(len(apps))
    errors: list[BaseException] = []

    def first_order(app: Allegiance) -> None:
        try:
            barrier.wait()
            order(app, program.id, newcomer["id"], 20_000)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_order, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in apps:
        app.close()
    assert errors == []
    assert derived(allegiance, program.id).count(("referral.converted", "referrer")) == 1
    assert balances(allegiance, program.id, referrer["organization_id"])["personal"] == 500
    assert balances(allegiance, program.id, newcomer["id"])["pool"] == 300
