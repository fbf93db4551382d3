"""Tables of coalition partners and finance (expiry notices) (issue 4).

Registered on the shared metadata; imported at the end of ``tables``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from allegiance.storage.tables import metadata
from allegiance.storage.types import Id, Json, UTCDateTime

# -- coalition partners ---------------------------------------------------------------------------
# A partner's balance lives in the ledger (``accounts.kind = 'partner'``); these rows hold its terms.
partners = Table(
    "partners",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(60), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=True),  # set right after the insert
    Column("issues_points", Boolean, nullable=False),
    Column("accepts_points", Boolean, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("currency_scale", Integer, nullable=False),
    Column("issue_rate_minor", BigInteger, nullable=False),
    Column("issue_rate_per_points", BigInteger, nullable=False),
    Column("redeem_rate_minor", BigInteger, nullable=False),
    Column("redeem_rate_per_points", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("attributes", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code", name="uq_partners_program_code"),
    CheckConstraint("issue_rate_per_points > 0 AND redeem_rate_per_points > 0", name="rates_positive"),
    Index("ix_partners_program_id_id", "program_id", "id"),  # keyset pages of one program
)

# Integration keys that act for one partner (earn, redeem, reverse, read its settlement).
partner_keys = Table(
    "partner_keys",
    metadata,
    Column("api_key_id", ForeignKey("api_keys.id"), primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("partner_id", ForeignKey("partners.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# One row per partner receipt: the dedupe key (one effect per reference) and the link to its ledger
# transaction. Amounts here are a copy for display; settlement reads the ledger postings.
partner_operations = Table(
    "partner_operations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("partner_id", ForeignKey("partners.id"), nullable=False),
    Column("operation", String(10), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("participant_id", ForeignKey("participants.id"), nullable=True),
    Column("points", BigInteger, nullable=False),
    Column("purchase_amount_minor", BigInteger, nullable=True),
    Column("transaction_id", ForeignKey("transactions.id"), nullable=True),
    Column("reversal_transaction_id", ForeignKey("transactions.id"), nullable=True, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("reversed_at", UTCDateTime, nullable=True),
    UniqueConstraint("partner_id", "operation", "reference", name="uq_partner_operations_reference"),
    Index("ix_partner_operations_partner_id", "partner_id", "id"),
)

# -- finance -----------------------------------------------------------------------------------------
# The expiring-soon job announces each (organization, unit, expiry date) once: this row is the claim.
expiry_notices = Table(
    "expiry_notices",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("expires_on", Date, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "organization_id", "unit", "expires_on", name="uq_expiry_notices_key"),
)
