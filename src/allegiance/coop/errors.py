"""Co-op errors with stable codes; each carries the figures a client needs to react."""

from __future__ import annotations

from allegiance.kernel.errors import Conflict, ValidationFailed


class CoopNotConfigured(Conflict):
    code = "coop_not_configured"


class DuplicateInvoice(Conflict):
    """This organization already claimed this invoice number."""

    code = "duplicate_invoice"


class CoopLimitExceeded(Conflict):
    """The yearly budget or the fund balance refuses the claim; ``limit`` names which."""

    code = "coop_limit_exceeded"


class InvalidClaimTransition(Conflict):
    """The claim (or plan) is not in a state that allows this, or someone else moved it first."""

    code = "invalid_transition"


class ProofRefused(ValidationFailed):
    code = "proof_refused"
