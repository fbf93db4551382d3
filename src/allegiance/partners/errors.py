"""Partner errors with stable codes."""

from __future__ import annotations

from allegiance.kernel.errors import Conflict, ValidationFailed


class DuplicatePartnerCode(Conflict):
    code = "duplicate_partner_code"


class ReferenceConflict(Conflict):
    """The same receipt reference was already used for a different operation content."""

    code = "partner_reference_conflict"


class PartnerInactive(ValidationFailed):
    code = "partner_inactive"


class OperationNotAllowed(ValidationFailed):
    """The partner does not issue (or does not accept) points."""

    code = "partner_operation_not_allowed"


class AlreadyReversedOperation(Conflict):
    code = "already_reversed"
