"""Co-op claims against a real database: budget and fund limits, holds, settlement exactly once,
plans, duplicates, proofs, outbox events, and concurrent approvals that never overdraw the fund."""

from __future__ import annotations

import base64
import threading
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from allegiance.bootstrap import Allegiance, build
from allegiance.coop.errors import CoopLimitExceeded, DuplicateInvoice, InvalidClaimTransition
from allegiance.coop.model import ClaimCreate, CoopSettings, PlanCreate, ProofUpload
from allegiance.coop.service import Actor
from allegiance.kernel.errors import Forbidden, ValidationFailed
from allegiance.programs.model import ProgramSettings, UnitConfig
from allegiance.storage import tables as t
from allegiance.storage.verify import verify
from tests import factories as f
from tests.conftest import ProgramFixture, make_settings

OPERATOR = Actor("user:1", True)
TERMS = {"unit": "MDF", "currency": "EUR", "formula": {"kind": "share_per_brand", "percent": "50"},
         "own_brands": ["BWT"], "yearly_budget": 1_000_000}


def setup(app: Allegiance, program_id: int, fund: int = 2_000_000, **terms: Any) -> tuple[int, Actor]:
    with app.write() as uow:
        current = uow.programs.settings(program_id)
        units = [*current.units, UnitConfig(code="MDF", name="Co-op", scale=2, kind="coop_fund")]
        uow.programs.configure(program_id, ProgramSettings.model_validate(
            {**current.model_dump(mode="json"), "units": [u.model_dump(mode="json") for u in units]}))
        uow.coop.set_settings(program_id, CoopSettings.model_validate({**TERMS, **terms}), "test")
    dealer = f.organization(app, program_id, kind="dealer")["id"]
    if fund:
        with app.write() as uow:
            uow.coop.allocate(program_id, dealer, fund, "seed", "test")
    return dealer, Actor(f"key:{dealer}", False, dealer)


def body(cost: int = 400_000, brands: tuple[str, ...] = ("BWT",), invoice: str = "INV-1", **extra: Any) -> ClaimCreate:
    return ClaimCreate.model_validate({"activity_type": "outdoor", "cost": cost, "currency": "EUR",
                                       "activity_date": "2026-04-10", "invoice_number": invoice,
                                       "brands": list(brands), **extra})


def fund_of(app: Allegiance, program_id: int, dealer: int) -> dict[str, Any]:
    with app.read() as uow:
        return uow.coop.fund(program_id, dealer, 2026)


def topics(app: Allegiance, program_id: int) -> list[str]:
    with app.read() as uow:
        return list(uow.conn.execute(select(t.outbox.c.topic).where(
            t.outbox.c.program_id == program_id, t.outbox.c.topic.like("coop.claim_%")).order_by(t.outbox.c.id))
            .scalars())


def test_a_claim_runs_submitted_approved_settled_and_pays_from_the_fund_once(
        allegiance: Allegiance, program: ProgramFixture) -> None:
    dealer, partner = setup(allegiance, program.id)
    with allegiance.write() as uow:
        claim = uow.coop.create_claim(program.id, partner, body())
    with allegiance.write() as uow:
        approved = uow.coop.approve(program.id, claim["id"], OPERATOR)
    assert approved["status"] == "approved" and approved["approved_amount"] == 200_000
    assert fund_of(allegiance, program.id, dealer)["balance"] == 1_800_000, "reserved at approval"
    with allegiance.write() as uow:
        settled = uow.coop.settle(program.id, claim["id"], OPERATOR, "CN-1")
    with allegiance.write() as uow, pytest.raises(InvalidClaimTransition):
        uow.coop.settle(program.id, claim["id"], OPERATOR, "CN-1")
    assert settled["status"] == "settled" and settled["payment_reference"] == "CN-1"
    assert [h["to_status"] for h in settled["history"]] == ["submitted", "approved", "settled"]
    fund = fund_of(allegiance, program.id, dealer)
    assert (fund["balance"], fund["budget_used"]) == (1_800_000, 200_000)
    assert topics(allegiance, program.id) == ["coop.claim_submitted", "coop.claim_approved", "coop.claim_settled"]
    with allegiance.read() as uow:
        hold = uow.ledger.port.get_hold(program.id, settled["hold_id"])
        assert hold is not None and (hold.status, hold.posted_amount) == ("posted", 200_000)
        assert hold.resolve_transaction_id == settled["settlement_transaction_id"]
        assert verify(uow.conn).ok


def test_rejecting_an_approved_claim_releases_fund_and_budget(allegiance: Allegiance, program: ProgramFixture) -> None:
    dealer, partner = setup(allegiance, program.id)
    with allegiance.write() as uow:
        claim = uow.coop.create_claim(program.id, partner, body())
        uow.coop.approve(program.id, claim["id"], OPERATOR)
    with allegiance.write() as uow:
        with pytest.raises(ValidationFailed):
            uow.coop.reject(program.id, claim["id"], OPERATOR, " ")
        rejected = uow.coop.reject(program.id, claim["id"], OPERATOR, "layout shows a rival's logo")
    assert (rejected["status"], rejected["reason"]) == ("rejected", "layout shows a rival's logo")
    fund = fund_of(allegiance, program.id, dealer)
    assert (fund["balance"], fund["budget_used"]) == (2_000_000, 0)


def test_partners_cannot_review(allegiance: Allegiance, program: ProgramFixture) -> None:
    _, partner = setup(allegiance, program.id)
    with allegiance.write() as uow:
        claim = uow.coop.create_claim(program.id, partner, body())
    with allegiance.write() as uow, pytest.raises(Forbidden):
        uow.coop.approve(program.id, claim["id"], partner)


def test_budget_and_fund_refuse_with_a_reason(allegiance: Allegiance, program: ProgramFixture) -> None:
    dealer, partner = setup(allegiance, program.id, fund=300_000)
    with allegiance.write() as uow, pytest.raises(CoopLimitExceeded) as fund:
        uow.coop.create_claim(program.id, partner, body(cost=800_000))
    assert fund.value.data["limit"] == "fund_balance" and "co-op fund" in fund.value.message
    with allegiance.write() as uow:
        uow.coop.allocate(program.id, dealer, 2_000_000, "more", "test")
    with allegiance.write() as uow, pytest.raises(CoopLimitExceeded) as budget:
        uow.coop.create_claim(program.id, partner, body(cost=2_400_000))
    assert budget.value.data["limit"] == "yearly_budget" and budget.value.data["year"] == 2026


def test_cap_mode_pays_what_is_left(allegiance: Allegiance, program: ProgramFixture) -> None:
    dealer, partner = setup(allegiance, program.id, over_limit="cap", yearly_budget=250_000)
    with allegiance.write() as uow:
        first = uow.coop.create_claim(program.id, partner, body(invoice="A"))
        uow.coop.approve(program.id, first["id"], OPERATOR)
        second = uow.coop.create_claim(program.id, partner, body(invoice="B"))
        assert "capped" in second["limit_note"]
        approved = uow.coop.approve(program.id, second["id"], OPERATOR)
    assert (approved["requested_amount"], approved["approved_amount"]) == (200_000, 50_000)
    assert "2026 co-op budget" in approved["limit_note"]
    with allegiance.write() as uow, pytest.raises(CoopLimitExceeded):
        uow.coop.create_claim(program.id, partner, body(invoice="C"))
    assert fund_of(allegiance, program.id, dealer)["budget_left"] == 0


def test_the_operator_confirms_the_brand_count(allegiance: Allegiance, program: ProgramFixture) -> None:
    _, partner = setup(allegiance, program.id)
    with allegiance.write() as uow:
        claim = uow.coop.create_claim(program.id, partner, body(cost=300_000))
        approved = uow.coop.approve(program.id, claim["id"], OPERATOR, brands=["BWT", "Judo", "Grünbeck"])
    assert (approved["brand_count"], approved["approved_amount"]) == (3, 50_000)


def test_duplicate_invoices_and_foreign_material_are_refused(allegiance: Allegiance, program: ProgramFixture) -> None:
    dealer, partner = setup(allegiance, program.id)
    with allegiance.write() as uow:
        uow.coop.create_claim(program.id, partner, body(invoice="INV-7"))
    with allegiance.write() as uow, pytest.raises(DuplicateInvoice) as duplicate:
        uow.coop.create_claim(program.id, partner, body(invoice="inv 7"))
    assert duplicate.value.field == "invoice_number"
    other = f.organization(allegiance, program.id, kind="dealer")["id"]
    with allegiance.write() as uow:  # another dealer may have the same invoice number from its own supplier
        uow.coop.allocate(program.id, other, 500_000, "seed", "test")
        uow.coop.create_claim(program.id, Actor("key:x", False, other), body(invoice="INV-7"))
    with allegiance.write() as uow, pytest.raises(ValidationFailed) as foreign:
        uow.coop.create_claim(program.id, partner, body(invoice="X", brands=("Judo",)))
    assert foreign.value.field == "brands"
    assert dealer != other


def test_plans_are_required_when_the_terms_say_so(allegiance: Allegiance, program: ProgramFixture) -> None:
    _, partner = setup(allegiance, program.id, require_plan=True)
    with allegiance.write() as uow, pytest.raises(ValidationFailed) as missing:
        uow.coop.create_claim(program.id, partner, body())
    assert missing.value.field == "plan_id"
    with allegiance.write() as uow:
        plan = uow.coop.create_plan(program.id, partner, PlanCreate(
            activity_type="exhibition", description="Aqua fair stand", planned_cost=500_000, currency="EUR",
            planned_date=date(2026, 4, 1)))
    with allegiance.write() as uow, pytest.raises(ValidationFailed, match="submitted, not approved"):
        uow.coop.create_claim(program.id, partner, body(plan_id=plan["id"]))
    with allegiance.write() as uow:
        uow.coop.review_plan(program.id, plan["id"], OPERATOR, True)
        claim = uow.coop.create_claim(program.id, partner, body(plan_id=plan["id"]))
    assert claim["plan_id"] == plan["id"]


def test_drafts_take_proofs_then_submit(allegiance: Allegiance, program: ProgramFixture) -> None:
    _, partner = setup(allegiance, program.id)
    pdf = ProofUpload(filename="layout.pdf", content_type="application/pdf",
                      content_base64=base64.b64encode(b"%PDF-1.4 layout").decode())
    with allegiance.write() as uow:
        draft = uow.coop.create_claim(program.id, partner, body(draft=True))
        first = uow.coop.add_proof(program.id, draft["id"], partner, pdf)
        again = uow.coop.add_proof(program.id, draft["id"], partner, pdf)
        submitted = uow.coop.submit(program.id, draft["id"], partner)
    assert first["id"] == again["id"] and len(submitted["proofs"]) == 1
    assert submitted["status"] == "submitted"
    with allegiance.read() as uow:
        stored = uow.coop.proof(program.id, draft["id"], first["id"])
    assert stored["content"] == b"%PDF-1.4 layout"


def test_concurrent_approvals_never_overdraw_the_fund(allegiance: Allegiance, program: ProgramFixture,
                                                      db_url: str) -> None:
    """Six claims of 200,000 fit the fund one by one (the submission check sees 500,000), but the
    fund holds only two of them: six parallel approvals approve exactly two, the others are
    refused by the fund — never a negative balance, never a lost hold."""
    dealer, partner = setup(allegiance, program.id, fund=500_000, yearly_budget=None)
    claims = []
    for n in range(6):
        with allegiance.write() as uow:
            claims.append(uow.coop.create_claim(program.id, partner, body(invoice=f"P-{n}"))["id"])
    apps = [build(make_settings(db_url)) for _ in claims]
    barrier = threading.Barrier(len(apps))
    outcomes: list[str] = []

    def approve(app: Allegiance, claim_id: int) -> None:
        barrier.wait()
        try:
            with app.write() as uow:
                uow.coop.approve(program.id, claim_id, OPERATOR)
            outcomes.append("approved")
        except CoopLimitExceeded:
            outcomes.append("refused")
        except BaseException as exc:
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=approve, args=(app, claim_id)) for app, claim_id in zip(apps, claims,
                                                                                                strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for app in apps:
        app.close()
    assert sorted(outcomes) == ["approved"] * 2 + ["refused"] * 4
    assert fund_of(allegiance, program.id, dealer)["balance"] == 100_000
    with allegiance.read() as uow:
        assert verify(uow.conn).ok
