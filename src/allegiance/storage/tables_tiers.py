"""Tables of tier ladders, tier status and history, qualifying credits, discount cards (issue 4).

Registered on the shared metadata; imported at the end of ``tables``.

``tier_measures`` keeps running daily totals per (scope, measure, subject) — a scope is a ladder
(``ladder:3``) or a discount card (``card:9``), a subject an organization (``o:42``) or a person
(``p:7``) — so qualifying reads a few day rows instead of re-reading event payloads.
``tier_status`` is one row per subject and ladder (locked while it changes); ``tier_history``
is append-only.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from allegiance.storage.tables import metadata
from allegiance.storage.types import Id, Json, UTCDateTime

tier_ladders = Table(
    "tier_ladders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(60), nullable=False),
    Column("level", String(20), nullable=False),
    Column("document", Json, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code", name="uq_tier_ladders_program_code"),
    UniqueConstraint("program_id", "level", name="uq_tier_ladders_program_level"),
)

tier_status = Table(
    "tier_status",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("ladder_id", ForeignKey("tier_ladders.id"), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("organization_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger, nullable=True),
    Column("tier", String(60), nullable=True),
    Column("since", UTCDateTime, nullable=False),
    Column("reviewed_through", UTCDateTime, nullable=True),
    Column("pending_tier", String(60), nullable=True),
    Column("downgrade_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("ladder_id", "subject", name="uq_tier_status_ladder_subject"),
)

tier_history = Table(
    "tier_history",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("ladder_id", ForeignKey("tier_ladders.id"), nullable=False),
    Column("subject", String(40), nullable=False),
    Column("organization_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger, nullable=True),
    Column("from_tier", String(60), nullable=True),
    Column("to_tier", String(60), nullable=True),
    Column("direction", String(20), nullable=False),  # up | down | warned | kept
    Column("reason", String(300), nullable=False),
    Column("measures", Json, nullable=False),
    Column("event_id", BigInteger, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_tier_history_subject", "ladder_id", "subject", "id"),
)

tier_measures = Table(
    "tier_measures",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("scope", String(40), primary_key=True),
    Column("measure", String(200), primary_key=True),
    Column("subject", String(40), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("organization_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
)

tier_credits = Table(
    "tier_credits",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger, nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("event_id", BigInteger, nullable=True),
    Column("rule", String(80), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_tier_credits_org_time", "program_id", "organization_id", "occurred_at"),
)

tier_participant_marks = Table(
    "tier_participant_marks",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("scope", String(40), primary_key=True),
    Column("measure", String(200), primary_key=True),
    Column("participant_id", BigInteger, primary_key=True),
    Column("organization_id", BigInteger, nullable=False),
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
)

discount_cards = Table(
    "discount_cards",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("document", Json, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "organization_id", name="uq_discount_cards_program_org"),
)

store_credit_applications = Table(
    "store_credit_applications",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", BigInteger, nullable=False),
    Column("unit", String(16), nullable=False),
    Column("reference", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("channel", String(60), nullable=True),
    Column("transaction_id", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_store_credit_applications_ref", "program_id", "organization_id", "unit", "reference"),
)
