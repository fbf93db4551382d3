"""Tables of analytics (issue 5): dated snapshots of computed results, and versioned configurations.

A snapshot is keyed by (program, kind, as_of): the nightly job re-run on the same day replaces its
own row instead of adding a second point to every trend chart. Configurations (health-score
weights, segment definitions) are append-only versions, like rule sets, so a score can always be
traced to the configuration that produced it.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from allegiance.storage.tables import metadata
from allegiance.storage.types import Id, Json, UTCDateTime

analytics_snapshots = Table(
    "analytics_snapshots",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("document", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "kind", "as_of", name="uq_analytics_snapshots_program_kind_day"),
)

analytics_configs = Table(
    "analytics_configs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Json, nullable=False),
    Column("created_by", String(60), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "kind", "version", name="uq_analytics_configs_program_kind_version"),
    Index("ix_analytics_configs_latest", "program_id", "kind", "version"),
)
