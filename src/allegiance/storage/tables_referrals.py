"""Tables of referrals: the program's scheme, participants' codes, referrals (issue 4).

Registered on the shared metadata; imported at the end of ``tables``.

``uq_referrals_program_id`` (program, referred organization) makes an organization referable once,
even when two signups race; a referral's moves are compare-and-set on ``version`` *and* status, so
two concurrent first orders convert it once.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from allegiance.storage.tables import metadata
from allegiance.storage.types import Id, Json, UTCDateTime

referral_settings = Table(
    "referral_settings",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("document", Json, nullable=False),
    Column("updated_by", String(60), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

referral_codes = Table(
    "referral_codes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("participant_id", ForeignKey("participants.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("code", String(20), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code"),
    Index("ix_referral_codes_participant", "program_id", "participant_id", "active"),
    Index("ix_referral_codes_program_id_id", "program_id", "id"),  # keyset pages of one program
)

referrals = Table(
    "referrals",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code_id", ForeignKey("referral_codes.id"), nullable=False),
    Column("referrer_participant_id", ForeignKey("participants.id"), nullable=False),
    Column("referrer_organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("referred_organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("contact_email", String(254), nullable=True),
    Column("source", String(100), nullable=True),
    Column("status", String(20), nullable=False),
    Column("flags", Json, nullable=False),
    Column("qualifying_event_id", Id, nullable=True),
    Column("review_note", Text, nullable=False),
    Column("reviewed_by", String(60), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("converted_at", UTCDateTime, nullable=True),
    UniqueConstraint("program_id", "referred_organization_id"),
    Index("ix_referrals_code_time", "program_id", "code_id", "created_at"),
    Index("ix_referrals_source_time", "program_id", "source", "created_at"),
    Index("ix_referrals_program_status", "program_id", "status", "id"),
    Index("ix_referrals_referrer", "program_id", "referrer_organization_id", "id"),
    Index("ix_referrals_program_id_id", "program_id", "id"),  # keyset pages of one program
)
