"""The co-op pages: claims by status, one claim with its proof files, and the review — approve with
the brands confirmed, reject with a reason, settle from the fund."""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta
from typing import Any

import pytest

from allegiance.bootstrap import Allegiance
from allegiance.coop.model import ClaimCreate, CoopSettings, ProofUpload
from allegiance.coop.service import Actor
from allegiance.programs.model import UnitConfig
from tests import factories
from tests.conftest import ProgramFixture
from tests.web.conftest import HTTPX_WARNING, csrf_of

pytestmark = pytest.mark.filterwarnings(f"ignore:{HTTPX_WARNING}")

TERMS = {"unit": "MDF", "currency": "EUR", "formula": {"kind": "share_per_brand", "percent": "50"},
         "own_brands": ["BWT"], "activity_types": ["outdoor", "print", "online", "exhibition"]}
PDF = b"%PDF-1.4\n% billboard layout\n"


def dealer_with_claim(allegiance: Allegiance, program_id: int, *, fund: int = 500_000, cost: int = 200_000,
                      brands: tuple[str, ...] = ("BWT",), invoice: str = "INV-1"
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    with allegiance.write() as uow:
        settings = uow.programs.settings(program_id)
        if settings.unit("MDF") is None:
            units = [*settings.units, UnitConfig(code="MDF", name="Co-op fund (EUR)", scale=2, kind="coop_fund")]
            uow.programs.configure(program_id, settings.model_copy(update={"units": units}))
            uow.coop.set_settings(program_id, CoopSettings.model_validate(TERMS), "test")
    dealer = factories.organization(allegiance, program_id, name=f"Aqua Dealer {invoice}", kind="dealer")
    partner = Actor(ref="key:1", operator=False, organization_id=dealer["id"])
    with allegiance.write() as uow:
        uow.coop.allocate(program_id, dealer["id"], fund, "launch MDF", "test")
        made = uow.coop.create_claim(program_id, partner, ClaimCreate(
            activity_type="outdoor", cost=cost, currency="EUR", activity_date=date(2026, 4, 10), invoice_number=invoice,
            brands=list(brands), description="Billboard on the ring road"))
        uow.coop.add_proof(program_id, made["id"], partner, ProofUpload(
            filename="layout.pdf", content_type="application/pdf", content_base64=base64.b64encode(PDF).decode()))
    return dealer, made


def test_the_queue_and_a_claim_with_its_proof(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    dealer, made = dealer_with_claim(allegiance, program.id)
    listed = logged_in.get("/coop").text
    assert f'href="/coop/claims/{made["id"]}"' in listed and dealer["name"] in listed
    assert re.search(r'Submitted <span class="count">1</span>', listed) and "1,000.00 MDF" in listed
    page = logged_in.get(f"/coop/claims/{made['id']}").text
    assert "Billboard on the ring road" in page and "INV-1" in page and "2,000.00 EUR" in page
    link = re.search(r'href="(/coop/claims/\d+/proofs/\d+)" download>layout.pdf', page)
    assert link
    proof = logged_in.get(link.group(1))
    assert proof.status_code == 200 and proof.content == PDF
    assert proof.headers["content-disposition"].startswith("attachment") and proof.headers["content-type"] == (
        "application/pdf")


def test_approve_with_confirmed_brands_then_settle(logged_in: Any, allegiance: Allegiance,
                                                   program: ProgramFixture) -> None:
    _, made = dealer_with_claim(allegiance, program.id)
    token = csrf_of(logged_in.get(f"/coop/claims/{made['id']}").text)
    approved = logged_in.post(f"/coop/claims/{made['id']}/approve", data={"csrf_token": token, "brands": "BWT, Brita"})
    assert approved.status_code == 200 and "Approved" in approved.text and "500.00 MDF" in approved.text  # 50 % / 2
    settled = logged_in.post(f"/coop/claims/{made['id']}/settle", data={"csrf_token": token, "reference": "CN-77"})
    assert settled.status_code == 200 and "Settled" in settled.text and "CN-77" in settled.text
    with allegiance.read() as uow:
        claim = uow.coop.claim(program.id, made["id"])
    assert (claim["status"], claim["approved_amount"], claim["payment_reference"]) == ("settled", 50_000, "CN-77")
    assert claim["settlement_transaction_id"] is not None


def test_reject_needs_a_reason_and_fund_limits_are_shown(logged_in: Any, allegiance: Allegiance,
                                                         program: ProgramFixture) -> None:
    dealer, made = dealer_with_claim(allegiance, program.id, invoice="INV-9")
    with allegiance.write() as uow:  # the fund is spent elsewhere after the claim was submitted
        pool = uow.ledger.holder_account(program.id, "MDF", dealer["id"])
        uow.ledger.reserve(program.id, pool.id, 450_000, ttl=timedelta(days=1), memo="another campaign")
    token = csrf_of(logged_in.get(f"/coop/claims/{made['id']}").text)
    blank = logged_in.post(f"/coop/claims/{made['id']}/reject", data={"csrf_token": token, "reason": ""})
    assert blank.status_code == 422 and 'id="e-reason">a rejection needs a reason' in blank.text
    over = logged_in.post(f"/coop/claims/{made['id']}/approve", data={"csrf_token": token, "brands": "BWT"})
    assert over.status_code == 409 and "co-op fund balance" in over.text
    rejected = logged_in.post(f"/coop/claims/{made['id']}/reject",
                              data={"csrf_token": token, "reason": "Logo too small"})
    assert rejected.status_code == 200 and "Logo too small" in rejected.text
    with allegiance.read() as uow:
        assert uow.coop.claim(program.id, made["id"])["status"] == "rejected"


def test_claims_of_other_programs_are_404(logged_in: Any, allegiance: Allegiance, program: ProgramFixture) -> None:
    with allegiance.write() as uow:
        other = int(uow.programs.create_program("other-coop", "Other")["id"])
    _, foreign = dealer_with_claim(allegiance, other)
    assert logged_in.get(f"/coop/claims/{foreign['id']}").status_code == 404
    assert logged_in.get(f"/coop/claims/{foreign['id']}/proofs/1").status_code == 404
    token = csrf_of(logged_in.get("/coop").text)
    assert logged_in.post(f"/coop/claims/{foreign['id']}/reject",
                          data={"csrf_token": token, "reason": "x"}).status_code == 404
