"""Coalition partner and finance objects for the authorization matrix, made through the services in
the owner's program. The world's integration key is bound to the partner made for the "own" side,
so a partner key is tried on its own partner, on a neighbour partner and on another program's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete

from allegiance.partners.model import PartnerCreate, PartnerOperation
from allegiance.storage.tables_partners import partner_keys
from tests.api.conftest import INTEGRATION, OWN, World

MISSING = 987_654_321
NOWHERE = "nonexistent"
TODAY = datetime.now(UTC).date().isoformat()
PERIOD = {"from": "2020-01-01", "to": "2030-12-31"}


def partner(world: World, owner: str) -> int:
    """A fresh partner in the owner's program (a missing id for nowhere); the own side's is the one
    the world's integration key acts for."""
    if owner == NOWHERE:
        return MISSING
    target = world.sides[owner]
    with world.allegiance.write() as uow:
        made = uow.partners.create(target.program_id, PartnerCreate(code=f"m{uuid.uuid4().hex[:8]}", name="Matrix",
                                                                    issue_rate={"minor": 1}))  # type: ignore[arg-type]
        if owner == OWN:
            key_id = world.key_ids[INTEGRATION]
            uow.conn.execute(delete(partner_keys).where(partner_keys.c.api_key_id == key_id))
            uow.partners.bind_key(target.program_id, int(made["id"]), key_id)
    return int(made["id"])


def purchase(world: World, owner: str, points: int = 5) -> dict[str, Any]:
    target = world.sides[owner] if owner != NOWHERE else None
    return {"reference": f"r-{uuid.uuid4().hex[:10]}", "organization_id": target.organization_id if target else MISSING,
            "participant_id": target.participant_id if target else None, "points": points}


def operation(world: World, owner: str) -> tuple[int, int]:
    """(partner id, id of an earning at it) in the owner's program."""
    if owner == NOWHERE:
        return MISSING, MISSING
    partner_id = partner(world, owner)
    target = world.sides[owner]
    with world.allegiance.write() as uow:
        made = uow.partners.earn(target.program_id, partner_id,
                                 PartnerOperation.model_validate(purchase(world, owner)))
    return partner_id, int(made["id"])


def reverse_path(world: World, owner: str, v1: str) -> str:
    partner_id, operation_id = operation(world, owner)
    return f"{v1}/partners/{partner_id}/operations/{operation_id}/reverse"
