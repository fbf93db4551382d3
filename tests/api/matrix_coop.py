"""Co-op objects for the authorization matrix, made through the services in the owner's program:
the program gets an ``MDF`` unit and the BWT terms on first use, each side's dealer a funded pool."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from allegiance.coop.model import ClaimCreate, CoopSettings, PlanCreate, ProofUpload
from allegiance.coop.service import Actor
from allegiance.programs.model import ProgramSettings
from tests.api.conftest import OWNERS, World

MISSING = 987_654_321
NOWHERE = "nonexistent"
OPERATOR = Actor("matrix", True)
TERMS = {"unit": "MDF", "currency": "EUR", "formula": {"kind": "share_per_brand", "percent": "50"},
         "own_brands": ["BWT"], "yearly_budget": 10**11}


def ready(world: World, program_id: int) -> None:
    with world.allegiance.write() as uow:
        if uow.coop_store.settings(program_id) is not None:
            return
        current = uow.programs.settings(program_id).model_dump(mode="json")
        current["units"].append({"code": "MDF", "name": "Co-op", "scale": 2, "kind": "coop_fund"})
        uow.programs.configure(program_id, ProgramSettings.model_validate(current))
        uow.coop.set_settings(program_id, CoopSettings.model_validate(TERMS), "matrix")


def funded(world: World, owner: str) -> int:
    """The owner's organization with MDF for one more claim (or a missing id)."""
    if owner == NOWHERE:
        ready(world, world.program_id)
        return MISSING
    target = world.sides[owner]
    ready(world, world.program_id)
    ready(world, target.program_id)
    with world.allegiance.write() as uow:
        uow.coop.allocate(target.program_id, target.organization_id, 1_000_000, "matrix", "matrix")
    return target.organization_id


def claim_body(world: World, owner: str) -> dict[str, Any]:
    return {"organization_id": funded(world, owner), "activity_type": "outdoor", "cost": 10_000, "currency": "EUR",
            "activity_date": "2026-04-10", "invoice_number": world.ref("inv"), "brands": ["BWT"]}


def claim(world: World, owner: str, status: str = "submitted") -> int:
    if owner == NOWHERE:
        ready(world, world.program_id)
        return MISSING
    target = world.sides[owner]
    body = {**claim_body(world, owner), "draft": status == "draft"}
    partner = Actor("matrix", False, target.organization_id)
    with world.allegiance.write() as uow:
        made = uow.coop.create_claim(target.program_id, partner, ClaimCreate.model_validate(body))
        if status == "approved":
            uow.coop.approve(target.program_id, made["id"], OPERATOR)
    return int(made["id"])


def proof(world: World, owner: str) -> tuple[int, int]:
    if owner == NOWHERE:
        return claim(world, owner), MISSING
    claim_id = claim(world, owner)
    target = world.sides[owner]
    with world.allegiance.write() as uow:
        stored = uow.coop.add_proof(target.program_id, claim_id, Actor("matrix", False, target.organization_id),
                                    ProofUpload.model_validate(proof_body()))
    return claim_id, int(stored["id"])


def proof_body() -> dict[str, str]:
    content = b"%PDF-1.4 " + uuid.uuid4().hex.encode()
    return {"filename": "layout.pdf", "content_type": "application/pdf",
            "content_base64": base64.b64encode(content).decode()}


def plan(world: World, owner: str) -> int:
    if owner == NOWHERE:
        ready(world, world.program_id)
        return MISSING
    target = world.sides[owner]
    ready(world, target.program_id)
    with world.allegiance.write() as uow:
        made = uow.coop.create_plan(target.program_id, Actor("matrix", False, target.organization_id),
                                    PlanCreate.model_validate(plan_body(target.organization_id)))
    return int(made["id"])


def plan_body(organization_id: int) -> dict[str, Any]:
    return {"organization_id": organization_id, "activity_type": "exhibition", "description": "fair stand",
            "planned_cost": 50_000, "currency": "EUR", "planned_date": "2026-05-01"}


def seeded(world: World) -> None:
    """A claim and a plan on every side, so each list has something to leak."""
    for owner in OWNERS:
        claim(world, owner)
        plan(world, owner)
