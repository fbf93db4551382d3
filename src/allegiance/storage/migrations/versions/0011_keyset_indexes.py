"""keyset indexes: (program_id, id) on the tables listed page by page within one program

Without them, ``WHERE program_id = ? AND id > ? ORDER BY id LIMIT n`` (every cursor-paginated list,
the analytics and export scans) used another index starting with ``program_id`` and sorted all of
the program's rows for every page: the cost of a full walk grew with the square of the table.

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TABLES = ("events", "organizations", "participants", "accounts", "redemptions", "referrals", "referral_codes",
          "coop_claims", "coop_plans", "donations", "concierge_requests", "partners")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(f"ix_{table}_program_id_id", table, ["program_id", "id"])


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_program_id_id", table_name=table)
