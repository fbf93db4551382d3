"""Tables of rule sets, versions, counters and rule awards (issue 4).

Registered on the shared metadata; imported at the end of ``tables``.

``rule_sets`` keeps every saved version of a program's earning policy (drafts included) — a
version is never edited after it is saved, so a posting's ``rule_set_version`` always points at
the exact rules that produced it. ``rule_awards`` is the explanation of every firing (also the
pending awards and the clawback bookkeeping); ``rule_counters`` hold caps and volume ladders,
one row per (counter, subject, period), locked while an award consumes them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from allegiance.storage.tables import metadata
from allegiance.storage.types import Id, Json, UTCDateTime

rule_sets = Table(
    "rule_sets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),  # draft | active | retired
    Column("document", Json, nullable=False),
    Column("note", String(500), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("activated_by", String(200), nullable=True),
    Column("activated_at", UTCDateTime, nullable=True),
    UniqueConstraint("program_id", "version", name="uq_rule_sets_program_version"),
    Index("ix_rule_sets_program_status", "program_id", "status"),
)

rule_counters = Table(
    "rule_counters",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("subject", String(40), primary_key=True),
    Column("period", String(20), primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
)

rule_awards = Table(
    "rule_awards",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("rule_set_version", Integer, nullable=False),
    Column("rule_code", String(80), nullable=False),
    Column("kind", String(20), nullable=False),  # award | tier_credit | benefit
    Column("event_id", BigInteger, nullable=True),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("organization_id", BigInteger, nullable=False),
    Column("participant_id", BigInteger, nullable=True),
    Column("unit", String(16), nullable=True),
    Column("amount", BigInteger, nullable=False),  # granted (or pending) after caps
    Column("capped", BigInteger, nullable=False),  # cut off by caps
    Column("caps_hit", Json, nullable=False),
    Column("basis", BigInteger, nullable=True),  # the measure the amount was computed from
    Column("match_key", String(200), nullable=True),  # the event's identity for clawbacks and releases
    Column("status", String(20), nullable=False),  # posted | pending | cancelled | granted
    Column("release_type", String(100), nullable=True),
    Column("release_at", UTCDateTime, nullable=True),
    Column("transaction_id", BigInteger, nullable=True),
    Column("returned", BigInteger, nullable=False),  # Σ returned measure so far
    Column("clawed", BigInteger, nullable=False),  # Σ taken back so far
    Column("reason", String(500), nullable=False),
    Column("inputs", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("released_at", UTCDateTime, nullable=True),
    Index("ix_rule_awards_key", "program_id", "match_key"),
    Index("ix_rule_awards_pending", "program_id", "status", "release_type"),
    Index("ix_rule_awards_release_at", "status", "release_at"),
    Index("ix_rule_awards_event", "event_id"),
    Index("ix_rule_awards_org", "program_id", "organization_id", "id"),
)

benefit_assignments = Table(
    "benefit_assignments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("award_id", ForeignKey("rule_awards.id"), nullable=False),
    Column("organization_id", BigInteger, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("assignee_ref", String(200), nullable=False),  # the holder's own end client (any id it uses)
    Column("assignee_name", String(300), nullable=False),
    Column("note", String(500), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_benefit_assignments_award", "award_id"),
    Index("ix_benefit_assignments_assignee", "program_id", "assignee_ref"),
)
