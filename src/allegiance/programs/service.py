"""Use cases for organizations and participants. Raises ``ValidationFailed`` (naming the field),
``NotFound`` (missing or another program's), ``DuplicateExternalId``, ``HierarchyCycle``,
``UnknownRole``, ``ParticipantAlreadyLeft``."""

from __future__ import annotations

from typing import Any

from allegiance.kernel.clock import Clock
from allegiance.kernel.errors import Conflict, NotFound, ValidationFailed
from allegiance.ledger.model import AccountKind
from allegiance.ledger.service import LedgerService
from allegiance.programs.errors import (
    DuplicateExternalId,
    HierarchyCycle,
    ParticipantAlreadyLeft,
    UnknownRole,
)
from allegiance.programs.model import SLUG, ParticipantStatus, ProgramSettings
from allegiance.programs.ports import ProgramsPort


class ProgramsService:
    def __init__(self, port: ProgramsPort, ledger: LedgerService, clock: Clock) -> None:
        self.port = port
        self.ledger = ledger
        self.clock = clock

    def settings(self, program_id: int) -> ProgramSettings:
        program = self.port.program(program_id)
        if program is None:
            raise NotFound(f"program {program_id} not found")
        return ProgramSettings.model_validate(program["settings"])

    def create_program(self, slug: str, name: str, settings: ProgramSettings | None = None) -> dict[str, Any]:
        if not SLUG.match(slug):
            raise ValidationFailed("use 2-63 lower-case letters, digits and dashes", field="slug")
        if self.port.program_by_slug(slug) is not None:
            raise Conflict(f"a program with slug {slug!r} exists", field="slug")
        settings = settings or ProgramSettings()
        program_id = self.port.insert_program({"slug": slug, "name": name, "settings": settings.model_dump(mode="json"),
                                               "created_at": self.clock.now()})
        self.open_program_accounts(program_id)
        self.port.emit(program_id, "program.created", {"program_id": program_id, "slug": slug}, None)
        program = self.port.program(program_id)
        assert program is not None
        return program

    def configure(self, program_id: int, settings: ProgramSettings) -> dict[str, Any]:
        """Replace a program's settings. Units and roles are never removed: balances and people
        refer to them (add new ones instead); a change applies to future postings only."""
        current = self.settings(program_id)
        dropped_units = {u.code for u in current.units} - {u.code for u in settings.units}
        if dropped_units:
            raise ValidationFailed(f"units cannot be removed once created: {sorted(dropped_units)}", field="units")
        changed_scale = [u.code for u in settings.units if (old := current.unit(u.code)) and old.scale != u.scale]
        if changed_scale:
            raise ValidationFailed(f"a unit's scale cannot change: {changed_scale}", field="units")
        dropped_roles = current.role_codes() - settings.role_codes()
        if dropped_roles:
            raise ValidationFailed(f"roles cannot be removed once created: {sorted(dropped_roles)}", field="roles")
        self.port.update_program(program_id, {"settings": settings.model_dump(mode="json")})
        self.open_program_accounts(program_id)
        self.port.emit(program_id, "program.configured", {"program_id": program_id}, None)
        program = self.port.program(program_id)
        assert program is not None
        return program

    def open_program_accounts(self, program_id: int) -> None:
        """System accounts exist from day one, so the hot path never creates them."""
        for unit in self.settings(program_id).units:
            for kind in (AccountKind.ISSUED, AccountKind.REDEEMED, AccountKind.EXPIRED,
                         AccountKind.ADJUSTMENTS, AccountKind.FORFEITED):
                self.ledger.system_account(program_id, kind, unit.code)

    # -- organizations ----------------------------------------------------------------------
    def organization(self, program_id: int, organization_id: int) -> dict[str, Any]:
        row = self.port.organization(program_id, organization_id)
        if row is None:
            raise NotFound(f"organization {organization_id} not found", field="organization_id")
        return row

    def _check_parent(self, program_id: int, organization_id: int | None, parent_id: int | None) -> None:
        if parent_id is None:
            return
        if self.port.organization(program_id, parent_id) is None:
            raise ValidationFailed(f"organization {parent_id} does not exist", field="parent_id")
        if organization_id is not None and (
            parent_id == organization_id or organization_id in self.port.ancestors(program_id, parent_id)
        ):
            raise HierarchyCycle("an organization cannot be its own ancestor", field="parent_id")

    def _check_manager(self, manager_id: int | None) -> None:
        if manager_id is not None and not self.port.user_exists(manager_id):
            raise ValidationFailed(f"user {manager_id} does not exist", field="account_manager_id")

    def create_organization(self, program_id: int, values: dict[str, Any]) -> dict[str, Any]:
        if self.port.organization_by_external_id(program_id, values["external_id"]) is not None:
            raise DuplicateExternalId(f"external_id {values['external_id']!r} is already used", field="external_id")
        self._check_parent(program_id, None, values.get("parent_id"))
        self._check_manager(values.get("account_manager_id"))
        row = {**values, "program_id": program_id, "created_at": self.clock.now()}
        row.setdefault("attributes", {})
        row.setdefault("status", "active")
        organization_id = self.port.insert_organization(row)
        for unit in self.settings(program_id).units:
            self.ledger.holder_account(program_id, unit.code, organization_id)
        self.port.emit(program_id, "organization.created", {"organization_id": organization_id}, organization_id)
        return self.organization(program_id, organization_id)

    def update_organization(self, program_id: int, organization_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        current = self.organization(program_id, organization_id)
        if "parent_id" in changes:
            self._check_parent(program_id, organization_id, changes["parent_id"])
        if "account_manager_id" in changes:
            self._check_manager(changes["account_manager_id"])
        if changes:
            self.port.update_organization(organization_id, changes)
            self.port.emit(program_id, "organization.updated",
                           {"organization_id": organization_id, "changed": sorted(changes)}, organization_id)
        return {**current, **changes}

    # -- participants -------------------------------------------------------------------------
    def participant(self, program_id: int, participant_id: int) -> dict[str, Any]:
        row = self.port.participant(program_id, participant_id)
        if row is None:
            raise NotFound(f"participant {participant_id} not found", field="participant_id")
        return row

    def _check_role(self, program_id: int, role: str) -> None:
        roles = self.settings(program_id).role_codes()
        if role not in roles:
            raise UnknownRole(f"role {role!r} is not one of the program's roles {sorted(roles)}", field="role")

    def create_participant(self, program_id: int, values: dict[str, Any]) -> dict[str, Any]:
        if self.port.organization(program_id, values["organization_id"]) is None:
            raise ValidationFailed(f"organization {values['organization_id']} does not exist",
                                   field="organization_id")
        if self.port.participant_by_external_id(program_id, values["external_id"]) is not None:
            raise DuplicateExternalId(f"external_id {values['external_id']!r} is already used", field="external_id")
        self._check_role(program_id, values["role"])
        row = {**values, "program_id": program_id, "joined_at": self.clock.now()}
        row.setdefault("consents", {})
        row.setdefault("status", ParticipantStatus.ACTIVE.value)
        row.setdefault("is_org_admin", False)
        participant_id = self.port.insert_participant(row)
        for unit in self.settings(program_id).units:
            self.ledger.holder_account(program_id, unit.code, values["organization_id"], participant_id)
        self.port.emit(program_id, "participant.joined", {"participant_id": participant_id},
                       values["organization_id"])
        return self.participant(program_id, participant_id)

    def update_participant(self, program_id: int, participant_id: int, changes: dict[str, Any]) -> dict[str, Any]:
        current = self.participant(program_id, participant_id)
        if "role" in changes:
            self._check_role(program_id, changes["role"])
        if changes:
            self.port.update_participant(participant_id, changes)
            self.port.emit(program_id, "participant.updated",
                           {"participant_id": participant_id, "changed": sorted(changes)},
                           current["organization_id"])
        return {**current, **changes}

    def participant_left(self, program_id: int, participant_id: int, reason: str = "") -> dict[str, Any]:
        """A person leaving is a first-class event: status, leaver policy postings, outbox row."""
        current = self.participant(program_id, participant_id)
        if current["status"] == ParticipantStatus.LEFT.value:
            raise ParticipantAlreadyLeft(f"participant {participant_id} already left", field="participant_id")
        policy = self.settings(program_id).leaver_policy
        now = self.clock.now()
        posted = self.ledger.participant_left(program_id, current["organization_id"], participant_id, policy)
        changes = {"status": ParticipantStatus.LEFT.value, "left_at": now, "is_org_admin": False}
        self.port.update_participant(participant_id, changes)
        self.port.emit(program_id, "participant.left", {
            "participant_id": participant_id, "reason": reason, "policy": policy.value,
            "transactions": [p.transaction_id for p in posted],
        }, current["organization_id"])
        return {**current, **changes}
