"""The schema, in SQLAlchemy Core. Alembic migrations are generated from and checked against it.

Ledger tables are append-only by contract (postings, transactions, lot_allocations); the only
mutable ledger columns are caches that ``ledger verify`` recomputes: ``accounts.balance`` and
``lots.remaining``.
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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from allegiance.storage.types import Id, Json, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

programs = Table(
    "programs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("settings", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False),
    # Set for an organization admin's sign-in (web pages for their own organization only); NULL for
    # operator staff. No foreign key: participants reference organizations, which reference users.
    Column("participant_id", BigInteger, nullable=True),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("external_id", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("parent_id", ForeignKey("organizations.id"), nullable=True),
    Column("segment", String(60), nullable=True),
    Column("country", String(2), nullable=True),
    Column("locale", String(20), nullable=True),
    Column("status", String(20), nullable=False),
    Column("joined_on", Date, nullable=True),
    Column("left_on", Date, nullable=True),
    Column("account_manager_id", ForeignKey("users.id"), nullable=True),
    Column("attributes", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "external_id", name="uq_organizations_program_external"),
    Index("ix_organizations_program_name", "program_id", "name"),
    Index("ix_organizations_parent", "parent_id"),
    Index("ix_organizations_program_id_id", "program_id", "id"),  # keyset pages of one program
)

participants = Table(
    "participants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=False),
    Column("external_id", String(100), nullable=False),
    Column("name", String(200), nullable=False),
    Column("email", String(254), nullable=True),
    Column("role", String(40), nullable=False),
    Column("is_org_admin", Boolean, nullable=False),
    Column("locale", String(20), nullable=True),
    Column("time_zone", String(60), nullable=True),
    Column("birthday", Date, nullable=True),
    Column("preferred_channel", String(20), nullable=True),
    Column("consents", Json, nullable=False),
    Column("status", String(20), nullable=False),
    Column("joined_at", UTCDateTime, nullable=False),
    Column("left_at", UTCDateTime, nullable=True),
    UniqueConstraint("program_id", "external_id", name="uq_participants_program_external"),
    Index("ix_participants_org", "organization_id"),
    Index("ix_participants_program_id_id", "program_id", "id"),  # keyset pages of one program
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("role", String(20), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=True),
    Column("participant_id", ForeignKey("participants.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("address", String(200), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=True),
    Column("participant_id", ForeignKey("participants.id"), nullable=True),
    # Cached for holder accounts only (overdraft check under lock); NULL on program accounts so
    # that issuing points never updates a shared, hot row.
    Column("balance", BigInteger, nullable=True),
    Column("version", BigInteger, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "address", name="uq_accounts_program_address"),
    CheckConstraint("balance IS NULL OR balance >= 0", name="balance_not_negative"),
    Index("ix_accounts_org", "organization_id"),
    Index("ix_accounts_program_id_id", "program_id", "id"),  # keyset pages of one program
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=True),
    Column("event_id", ForeignKey("events.id"), nullable=True),
    Column("reverses_id", ForeignKey("transactions.id"), nullable=True, unique=True),
    Column("memo", Text, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Position in the program's hash chain: assigned under the chain head's lock at the very end
    # of the write, so the lock is held only for the seal (not for the whole write).
    Column("chain_seq", BigInteger, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("program_id", "chain_seq", name="uq_transactions_program_chain_seq"),
    Index("ix_transactions_program_id", "program_id", "id"),
    Index("ix_transactions_org", "organization_id", "id"),
)

postings = Table(
    "postings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("transaction_id", ForeignKey("transactions.id"), nullable=False),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    Index("ix_postings_account", "account_id", "id"),
    Index("ix_postings_transaction", "transaction_id"),
)

ledger_heads = Table(
    "ledger_heads",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("last_transaction_id", BigInteger, nullable=True),
    Column("last_seq", BigInteger, nullable=False, server_default="0"),
    Column("last_hash", String(64), nullable=False),
)

# Balances of program accounts (issued, redeemed, expired...) as a few counter rows per account,
# so concurrent writers spread over shards instead of queueing on one hot row, and a balance read
# sums at most SHARDS rows instead of every posting.
account_balance_shards = Table(
    "account_balance_shards",
    metadata,
    Column("account_id", ForeignKey("accounts.id"), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("amount", BigInteger, nullable=False),
)

lots = Table(
    "lots",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("posting_id", ForeignKey("postings.id"), nullable=False, unique=True),
    Column("amount", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    Index("ix_lots_open", "account_id", "remaining"),
    Index("ix_lots_expiry", "program_id", "expires_at"),
)

lot_allocations = Table(
    "lot_allocations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("lot_id", ForeignKey("lots.id"), nullable=False),
    Column("posting_id", ForeignKey("postings.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
    Index("ix_lot_allocations_lot", "lot_id"),
    Index("ix_lot_allocations_posting", "posting_id"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=True),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("escrow_account_id", ForeignKey("accounts.id"), nullable=False),
    Column("unit", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("posted_amount", BigInteger, nullable=True),
    Column("status", String(20), nullable=False),
    Column("memo", Text, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("reserve_transaction_id", ForeignKey("transactions.id"), nullable=False),
    Column("resolve_transaction_id", ForeignKey("transactions.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
    Index("ix_holds_pending", "status", "expires_at"),
)

event_types = Table(
    "event_types",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("payload_schema", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "name", name="uq_event_types_program_name"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("source_id", String(200), nullable=False),
    Column("type", String(100), nullable=False),
    Column("organization_id", ForeignKey("organizations.id"), nullable=True),
    Column("participant_id", ForeignKey("participants.id"), nullable=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("payload", Json, nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "source_id", name="uq_events_program_source"),
    Index("ix_events_program_type_time", "program_id", "type", "occurred_at"),
    Index("ix_events_org_time", "organization_id", "occurred_at"),
    Index("ix_events_program_id_id", "program_id", "id"),  # keyset pages of one program
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("scope", String(60), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("response_status", Integer, nullable=False),
    Column("response_body", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "scope", "key", name="uq_idempotency_program_scope_key"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("organization_id", BigInteger, nullable=True),
    Column("payload", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

outbox_cursors = Table(
    "outbox_cursors",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

outbox_receipts = Table(
    "outbox_receipts",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("message_id", BigInteger, primary_key=True),
    Column("handled_at", UTCDateTime, nullable=False),
)

# Each domain of issue 4 keeps its tables in its own module on this same metadata; importing them
# here means anything that imports ``tables`` (migrations, tests, repositories) sees the whole schema.
from allegiance.storage import (  # noqa: E402, F401  (registration imports, after ``metadata`` exists)
    tables_analytics,
    tables_coop,
    tables_partners,
    tables_referrals,
    tables_rewards,
    tables_rules,
    tables_tiers,
)
