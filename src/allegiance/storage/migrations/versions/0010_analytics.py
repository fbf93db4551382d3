"""analytics: dated snapshots and versioned configurations

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from allegiance.storage.types import Id, Json, UTCDateTime

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'analytics_snapshots',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('document', Json, nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_analytics_snapshots_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_snapshots')),
        sa.UniqueConstraint('program_id', 'kind', 'as_of', name='uq_analytics_snapshots_program_kind_day'),
    )
    op.create_table(
        'analytics_configs',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('document', Json, nullable=False),
        sa.Column('created_by', sa.String(length=60), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_analytics_configs_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_analytics_configs')),
        sa.UniqueConstraint('program_id', 'kind', 'version', name='uq_analytics_configs_program_kind_version'),
    )
    op.create_index('ix_analytics_configs_latest', 'analytics_configs', ['program_id', 'kind', 'version'])


def downgrade() -> None:
    op.drop_index('ix_analytics_configs_latest', table_name='analytics_configs')
    op.drop_table('analytics_configs')
    op.drop_table('analytics_snapshots')
