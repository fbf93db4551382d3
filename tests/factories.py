"""Test data builders with random references, so tests never collide on ids or names."""

from __future__ import annotations

import uuid
from typing import Any

from allegiance.bootstrap import Allegiance


def ref(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def organization(app: Allegiance, program_id: int, **values: Any) -> dict[str, Any]:
    values.setdefault("external_id", ref("org"))
    values.setdefault("name", f"Company {values['external_id']}")
    values.setdefault("kind", "customer")
    with app.write() as uow:
        return uow.programs.create_organization(program_id, values)


def participant(app: Allegiance, program_id: int, organization_id: int, **values: Any) -> dict[str, Any]:
    values.setdefault("external_id", ref("p"))
    values.setdefault("name", "Test Person")
    values.setdefault("role", "purchasing_manager")
    values["organization_id"] = organization_id
    with app.write() as uow:
        return uow.programs.create_participant(program_id, values)


def pool_account(app: Allegiance, program_id: int, organization_id: int, unit: str = "PTS") -> int:
    with app.read() as uow:
        return uow.ledger.holder_account(program_id, unit, organization_id).id


def personal_account(app: Allegiance, program_id: int, organization_id: int, participant_id: int,
                     unit: str = "PTS") -> int:
    with app.read() as uow:
        return uow.ledger.holder_account(program_id, unit, organization_id, participant_id).id


def fund(app: Allegiance, program_id: int, account_id: int, amount: int) -> None:
    """Give an account points through an operator adjustment (the simplest balanced credit)."""
    with app.write() as uow:
        uow.ledger.adjust(program_id, account_id, amount, memo="test funding")
