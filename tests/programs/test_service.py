"""Program configuration and the organization hierarchy."""

from __future__ import annotations

import pytest

from allegiance.bootstrap import Allegiance
from allegiance.kernel.errors import ValidationFailed
from allegiance.ledger.policy import LeaverPolicy
from allegiance.programs.errors import DuplicateExternalId, HierarchyCycle, UnknownRole
from allegiance.programs.model import ProgramSettings, Role, UnitConfig
from tests import factories as f
from tests.conftest import ProgramFixture


def test_settings_can_grow_but_never_drop_units_or_roles(allegiance: Allegiance, program: ProgramFixture) -> None:
    with allegiance.read() as uow:
        current = uow.programs.settings(program.id)
    grown = current.model_copy(update={
        "units": [*current.units, UnitConfig(code="EUR", name="Store credit", scale=2)],
        "roles": [*current.roles, Role(code="doctor", label="Doctor")],
        "leaver_policy": LeaverPolicy.FORFEIT})
    with allegiance.write() as uow:
        uow.programs.configure(program.id, grown)
    org = f.organization(allegiance, program.id)
    f.participant(allegiance, program.id, org["id"], role="doctor")
    with allegiance.read() as uow:  # the new unit's accounts exist for new organizations
        assert uow.ledger.holder_account(program.id, "EUR", org["id"]).balance == 0
    for broken, field in ((grown.model_copy(update={"units": grown.units[:1]}), "units"),
                          (grown.model_copy(update={"roles": grown.roles[:-1]}), "roles"),
                          (grown.model_copy(update={"units": [grown.units[0], UnitConfig(code="EUR", name="x",
                                                                                         scale=3)]}), "units")):
        with pytest.raises(ValidationFailed) as refused, allegiance.write() as uow:
            uow.programs.configure(program.id, broken)
        assert refused.value.field == field


def test_settings_refuse_unknown_keys_and_inconsistent_units() -> None:
    with pytest.raises(ValueError, match="extra"):
        ProgramSettings.model_validate({"bonus": 5})
    with pytest.raises(ValueError, match="default_unit"):
        ProgramSettings.model_validate({"default_unit": "MILES"})


def test_a_hierarchy_cannot_loop_and_external_ids_are_unique(allegiance: Allegiance,
                                                             program: ProgramFixture) -> None:
    distributor = f.organization(allegiance, program.id, kind="distributor")
    dealer = f.organization(allegiance, program.id, kind="dealer", parent_id=distributor["id"])
    site = f.organization(allegiance, program.id, parent_id=dealer["id"])
    with pytest.raises(HierarchyCycle), allegiance.write() as uow:
        uow.programs.update_organization(program.id, distributor["id"], {"parent_id": site["id"]})
    with allegiance.read() as uow:
        assert uow.program_store.ancestors(program.id, site["id"]) == [dealer["id"], distributor["id"]]
    with pytest.raises(DuplicateExternalId), allegiance.write() as uow:
        uow.programs.create_organization(program.id, {"external_id": site["external_id"], "name": "Copy",
                                                      "kind": "customer"})


def test_a_role_outside_the_program_is_refused(allegiance: Allegiance, program: ProgramFixture) -> None:
    org = f.organization(allegiance, program.id)
    with pytest.raises(UnknownRole) as refused:
        f.participant(allegiance, program.id, org["id"], role="astronaut")
    assert refused.value.field == "role"
