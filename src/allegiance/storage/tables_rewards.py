"""Tables of rewards catalog, redemptions, approval policies, charity, concierge (issue 4).

Registered on the shared metadata; imported at the end of ``tables``.

``reward_items.stock`` is the one mutable counter a request races on: it is only ever changed by
a conditional ``UPDATE … SET stock = stock - :n WHERE stock >= :n`` (and the CHECK keeps it from
going negative even if a writer forgot). ``gift_totals`` are the annual-cap counters, changed the
same way. ``redemptions.version`` makes every state change a compare-and-set.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from allegiance.storage.tables import metadata
from allegiance.storage.types import Id, Json, UTCDateTime

reward_items = Table(
    "reward_items",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(60), nullable=False),
    Column("names", Json, nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(30), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("stock", BigInteger, nullable=True),
    Column("availability", Json, nullable=False),
    Column("image_url", String(500), nullable=True),
    Column("partner_id", BigInteger, nullable=True),
    Column("face_value", Json, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code", name="uq_reward_items_program_code"),
    CheckConstraint("stock >= 0", name="stock_not_negative"),
    Index("ix_reward_items_program_id_id", "program_id", "id"),
)

reward_policies = Table(
    "reward_policies",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("scope", String(40), nullable=False),  # "program" | "org:<id>"
    Column("organization_id", ForeignKey("organizations.id"), nullable=True),
    Column("document", Json, nullable=False),
    Column("updated_by", String(60), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "scope", name="uq_reward_policies_program_scope"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("item_id", ForeignKey("reward_items.id"), nullable=True),
    Column("concierge_request_id", BigInteger, nullable=True),
    Column("item_code", String(60), nullable=False),
    Column("item_name", String(300), nullable=False),
    Column("category", String(30), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("unit_cost", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("source", String(10), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("participant_id", ForeignKey("participants.id"), nullable=True),
    Column("recipient_participant_id", ForeignKey("participants.id"), nullable=True),
    Column("requester", String(60), nullable=False),
    Column("requester_role", String(20), nullable=False),
    Column("hold_id", ForeignKey("holds.id"), nullable=False),
    Column("status", String(20), nullable=False),
    Column("approvals_outstanding", Json, nullable=False),
    Column("approvals", Json, nullable=False),
    Column("balance_before", BigInteger, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("cap_participant_id", BigInteger, nullable=True),  # whose annual gift cap this counts against
    Column("year", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("delivery", Text, nullable=False),
    Column("fulfilment_note", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Index("ix_redemptions_program_status", "program_id", "status", "id"),
    Index("ix_redemptions_program_org", "program_id", "organization_id", "id"),
    Index("ix_redemptions_due", "status", "expires_at"),
    Index("ix_redemptions_program_id_id", "program_id", "id"),  # keyset pages of one program
)

redemption_history = Table(
    "redemption_history",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("redemption_id", ForeignKey("redemptions.id"), nullable=False),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=False),
    Column("actor", String(60), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_redemption_history_redemption", "redemption_id", "id"),
)

gift_totals = Table(
    "gift_totals",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("participant_id", BigInteger, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("unit", String(16), primary_key=True),
    Column("amount", BigInteger, nullable=False),
)

donations = Table(
    "donations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("redemption_id", ForeignKey("redemptions.id"), nullable=False, unique=True),
    Column("item_id", ForeignKey("reward_items.id"), nullable=False),
    Column("participant_id", BigInteger, nullable=True),
    Column("unit", String(16), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("value", BigInteger, nullable=False),
    Column("receipt_number", String(40), nullable=True, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_donations_program_org_item", "program_id", "organization_id", "item_id"),
    Index("ix_donations_program_id_id", "program_id", "id"),  # keyset pages of one program
)

concierge_requests = Table(
    "concierge_requests",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("participant_id", ForeignKey("participants.id"), nullable=True),
    Column("recipient_participant_id", ForeignKey("participants.id"), nullable=True),
    Column("requester", String(60), nullable=False),
    Column("requester_role", String(20), nullable=False),
    Column("description", Text, nullable=False),
    Column("source", String(10), nullable=False),
    Column("status", String(20), nullable=False),
    Column("category", String(30), nullable=False),
    Column("quote_unit", String(16), nullable=True),
    Column("quote_cost", BigInteger, nullable=True),
    Column("quote_note", Text, nullable=False),
    Column("quoted_by", String(60), nullable=True),
    Column("quoted_at", UTCDateTime, nullable=True),
    Column("quote_expires_at", UTCDateTime, nullable=True),
    Column("redemption_id", ForeignKey("redemptions.id"), nullable=True),
    Column("reason", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_concierge_requests_program_status", "program_id", "status", "id"),
    Index("ix_concierge_requests_program_id_id", "program_id", "id"),  # keyset pages of one program
)
