"""Reimbursement formulas, limits, the claim state machine and proof checks — pure, no database."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from allegiance.coop import claims as machine
from allegiance.coop.errors import InvalidClaimTransition, ProofRefused
from allegiance.coop.formula import limit, reimbursement, share_percent
from allegiance.coop.model import (
    BrandTable,
    ClaimStatus,
    CoopSettings,
    OverLimit,
    ProofUpload,
    invoice_key,
    normalized_brands,
)
from allegiance.coop.proofs import check

S = ClaimStatus


def terms(formula: dict[str, object], **extra: object) -> CoopSettings:
    return CoopSettings.model_validate({"unit": "MDF", "currency": "EUR", "formula": formula, **extra})


BWT = terms({"kind": "share_per_brand", "percent": "50"})


def test_bwt_reference_figures() -> None:
    assert reimbursement(BWT, 400_000, 1) == 200_000
    assert reimbursement(BWT, 300_000, 3) == 50_000


def test_fixed_share_ignores_brands_and_a_table_steps_down() -> None:
    fixed = terms({"kind": "fixed_share", "percent": "40"})
    assert reimbursement(fixed, 100_000, 1) == reimbursement(fixed, 100_000, 5) == 40_000
    table = terms({"kind": "brand_table", "rows": [{"brands": 1, "percent": "50"}, {"brands": 2, "percent": "30"},
                                                   {"brands": 4, "percent": "0"}]})
    assert [reimbursement(table, 100_000, n) for n in (1, 2, 3, 4, 9)] == [50_000, 30_000, 30_000, 0, 0]


def test_a_table_must_start_at_one_brand_and_rise() -> None:
    with pytest.raises(ValidationError):
        BrandTable.model_validate({"kind": "brand_table", "rows": [{"brands": 2, "percent": "10"}]})
    with pytest.raises(ValidationError):
        BrandTable.model_validate({"kind": "brand_table", "rows": [{"brands": 1, "percent": "10"},
                                                                   {"brands": 1, "percent": "5"}]})


def test_the_rate_converts_currency_to_fund_units_and_rounds_down() -> None:
    points = terms({"kind": "share_per_brand", "percent": "50"}, rate="0.1")
    assert reimbursement(points, 333_333, 3) == 5_555  # 333,333 × 50 % / 3 × 0.1 = 5,555.55


@given(cost=st.integers(1, 10**12), brands=st.integers(1, 40), percent=st.decimals(
    Decimal("0.01"), Decimal(100), places=2))
def test_a_reimbursement_never_exceeds_the_share_and_falls_with_more_brands(cost: int, brands: int,
                                                                            percent: Decimal) -> None:
    settings = terms({"kind": "share_per_brand", "percent": str(percent)})
    paid = reimbursement(settings, cost, brands)
    assert 0 <= paid <= cost * percent / 100
    assert reimbursement(settings, cost, brands + 1) <= paid
    assert share_percent(settings.formula, brands) == percent / brands


@given(requested=st.integers(1, 10**9), budget=st.none() | st.integers(-10**6, 10**9),
       fund=st.none() | st.integers(0, 10**9), mode=st.sampled_from(list(OverLimit)))
def test_limits_never_pay_more_than_budget_or_fund(requested: int, budget: int | None, fund: int | None,
                                                   mode: OverLimit) -> None:
    result = limit(requested, over_limit=mode, budget_left=budget, fund_available=fund, unit="MDF", year=2026)
    assert 0 <= result.amount <= requested
    for left in (budget, fund):
        if left is not None:
            assert result.amount <= max(left, 0)
    fits = all(left is None or requested <= left for left in (budget, fund))
    assert (result.amount == requested and result.limit is None) == fits
    if mode is OverLimit.REFUSE and not fits:
        assert result.amount == 0 and result.reason


def test_refusal_names_the_limit_and_the_year() -> None:
    refused = limit(800_000, over_limit=OverLimit.REFUSE, budget_left=750_000, fund_available=10**9, unit="MDF",
                    year=2026)
    assert (refused.amount, refused.limit) == (0, "yearly_budget")
    assert refused.reason == "800000 MDF would pass the 2026 co-op budget: 750000 MDF left"
    capped = limit(800_000, over_limit=OverLimit.CAP, budget_left=750_000, fund_available=600_000, unit="MDF",
                   year=2026)
    assert (capped.amount, capped.limit) == (600_000, "fund_balance")


def test_state_machine() -> None:
    assert machine.apply(S.DRAFT, machine.Move.SUBMIT) == (S.SUBMITTED, machine.HoldEffect.NONE)
    assert machine.apply(S.SUBMITTED, machine.Move.APPROVE) == (S.APPROVED, machine.HoldEffect.RESERVE)
    assert machine.apply(S.APPROVED, machine.Move.SETTLE) == (S.SETTLED, machine.HoldEffect.POST)
    assert machine.apply(S.APPROVED, machine.Move.REJECT) == (S.REJECTED, machine.HoldEffect.VOID)
    assert machine.apply(S.SUBMITTED, machine.Move.REJECT) == (S.REJECTED, machine.HoldEffect.NONE)
    for status in S:
        for move in machine.Move:
            if status in machine.FINAL:
                with pytest.raises(InvalidClaimTransition):
                    machine.apply(status, move)
    with pytest.raises(InvalidClaimTransition, match="a draft claim cannot be approved"):
        machine.apply(S.DRAFT, machine.Move.APPROVE)
    with pytest.raises(InvalidClaimTransition):
        machine.apply(S.SUBMITTED, machine.Move.SETTLE)


def test_brands_and_invoice_numbers_are_normalized() -> None:
    assert normalized_brands(["BWT", " bwt ", "Grünbeck", "grünbeck", ""]) == ["BWT", "Grünbeck"]
    assert invoice_key("inv 2026-001") == invoice_key("INV-2026-001") == "INV2026001"


def upload(content: bytes, content_type: str = "application/pdf") -> ProofUpload:
    return ProofUpload(filename="../../etc/layout.pdf", content_type=content_type,
                       content_base64=base64.b64encode(content).decode())


def test_a_proof_is_checked_by_type_content_and_size() -> None:
    checked = check(upload(b"%PDF-1.7 layout"), BWT)
    assert (checked.filename, checked.content_type, len(checked.sha256)) == ("layout.pdf", "application/pdf", 64)
    with pytest.raises(ProofRefused) as html:
        check(upload(b"<html><script>alert(1)</script>"), BWT)
    assert html.value.field == "content_type"
    with pytest.raises(ProofRefused) as kind:
        check(upload(b"#!/bin/sh", "text/x-shellscript"), BWT)
    assert kind.value.field == "content_type"
    small = terms({"kind": "fixed_share", "percent": "50"}, proof_max_bytes=1_000)
    with pytest.raises(ProofRefused) as big:
        check(upload(b"%PDF-" + b"x" * 1_000), small)
    assert (big.value.field, big.value.data["limit"]) == ("content_base64", 1_000)
    with pytest.raises(ProofRefused):
        check(ProofUpload(filename="a.pdf", content_type="application/pdf", content_base64="not base64!"), BWT)
