"""Tables of co-op marketing funds: settings, plans, claims, proofs, yearly budget usage (issue 4).

Registered on the shared metadata; imported at the end of ``tables``.

The fund balance is not here: it is the organization's pool account in the co-op unit. The one
counter a concurrent approval races on, ``coop_budget_usage.used``, is only changed by a
conditional ``UPDATE … SET used = used + :n WHERE used + :n <= :budget``; a claim's state changes
are compare-and-set on ``version``. ``uq_coop_claims_program_id`` (program, organization,
normalized invoice number) refuses the same invoice twice even when two submissions race.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from allegiance.storage.tables import metadata
from allegiance.storage.types import Id, Json, UTCDateTime

coop_settings = Table(
    "coop_settings",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("document", Json, nullable=False),
    Column("updated_by", String(60), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

coop_plans = Table(
    "coop_plans",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("activity_type", String(40), nullable=False),
    Column("description", Text, nullable=False),
    Column("planned_cost", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("planned_date", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("submitted_by", String(60), nullable=False),
    Column("reviewed_by", String(60), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_coop_plans_program_org", "program_id", "organization_id", "id"),
    Index("ix_coop_plans_program_id_id", "program_id", "id"),  # keyset pages of one program
)

coop_claims = Table(
    "coop_claims",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("plan_id", ForeignKey("coop_plans.id"), nullable=True),
    Column("participant_id", ForeignKey("participants.id"), nullable=True),
    Column("activity_type", String(40), nullable=False),
    Column("description", Text, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("activity_date", Date, nullable=False),
    Column("year", Integer, nullable=False),
    Column("invoice_number", String(60), nullable=False),
    Column("invoice_key", String(60), nullable=False),
    Column("brands", Json, nullable=False),
    Column("brand_count", Integer, nullable=False),
    Column("unit", String(16), nullable=False),
    Column("requested_amount", BigInteger, nullable=False),
    Column("approved_amount", BigInteger, nullable=True),
    Column("limit_note", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("hold_id", ForeignKey("holds.id"), nullable=True),
    Column("settlement_transaction_id", BigInteger, nullable=True),
    Column("payment_reference", String(100), nullable=True),
    Column("submitted_by", String(60), nullable=False),
    Column("reviewed_by", String(60), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "organization_id", "invoice_key"),
    Index("ix_coop_claims_program_status", "program_id", "status", "id"),
    Index("ix_coop_claims_program_org", "program_id", "organization_id", "id"),
    Index("ix_coop_claims_program_id_id", "program_id", "id"),  # keyset pages of one program
)

coop_claim_history = Table(
    "coop_claim_history",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("claim_id", ForeignKey("coop_claims.id"), nullable=False),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=False),
    Column("actor", String(60), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_coop_claim_history_claim", "claim_id", "id"),
)

coop_proofs = Table(
    "coop_proofs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("claim_id", ForeignKey("coop_claims.id"), nullable=False),
    Column("filename", String(200), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("uploaded_by", String(60), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("claim_id", "sha256"),
)

coop_budget_usage = Table(
    "coop_budget_usage",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("organization_id", BigInteger, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("used", BigInteger, nullable=False),
    CheckConstraint("used >= 0", name="used_not_negative"),
)
