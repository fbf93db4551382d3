"""Referral objects for the authorization matrix, made through the services in the owner's program.

Every referral here is referred by the side's own participant (the one the participant key belongs
to) and flagged (same e-mail domain on both sides), so a first order holds it for review."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from allegiance.events.model import IncomingEvent
from allegiance.referrals.model import ReferralSettings, RegisterReferral
from tests import factories as f
from tests.api.conftest import EVENT_TYPE, OWNERS, World

MISSING = 987_654_321
NOWHERE = "nonexistent"


def ready(world: World, program_id: int) -> None:
    with world.allegiance.write() as uow:
        if uow.referral_store.settings(program_id) is None:
            uow.referrals.set_settings(program_id, ReferralSettings(qualifying_event=EVENT_TYPE, burst_max=10_000),
                                       "matrix")


def code(world: World, owner: str) -> str:
    side = world.sides[owner]
    ready(world, side.program_id)
    with world.allegiance.write() as uow:
        uow.programs.update_participant(side.program_id, side.participant_id,
                                        {"email": f"p@org{side.organization_id}.example"})
        return str(uow.referrals.code_for(side.program_id, side.participant_id)["code"])


def register_body(world: World, owner: str) -> dict[str, Any]:
    ready(world, world.program_id)
    referred = MISSING if owner == NOWHERE else f.organization(world.allegiance, world.sides[owner].program_id)["id"]
    return {"code": code(world, "own"), "organization_id": referred, "contact_email": "new@client.example"}


def held(world: World, owner: str) -> int:
    if owner == NOWHERE:
        ready(world, world.program_id)
        return MISSING
    side = world.sides[owner]
    referral_code = code(world, owner)
    referred = f.organization(world.allegiance, side.program_id)["id"]
    with world.allegiance.write() as uow:
        made = uow.referrals.register(side.program_id, RegisterReferral(
            code=referral_code, organization_id=referred, contact_email=f"x@org{side.organization_id}.example"),
            "matrix")
        uow.events.record_one(side.program_id, IncomingEvent(
            source_id=uuid.uuid4().hex, type=EVENT_TYPE, occurred_at=datetime.now(UTC), organization_id=referred,
            payload={"amount_minor": 5}))
    return int(made["id"])


def seeded(world: World) -> None:
    for owner in OWNERS:
        held(world, owner)
