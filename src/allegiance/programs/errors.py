from __future__ import annotations

from allegiance.kernel.errors import Conflict, ValidationFailed


class DuplicateExternalId(Conflict):
    code = "duplicate_external_id"


class HierarchyCycle(ValidationFailed):
    code = "hierarchy_cycle"


class UnknownRole(ValidationFailed):
    code = "unknown_role"


class ParticipantAlreadyLeft(Conflict):
    code = "participant_already_left"
