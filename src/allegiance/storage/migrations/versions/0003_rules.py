"""rule sets, versions, counters and rule awards

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from allegiance.storage.types import Id, Json, UTCDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'rule_sets',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('document', Json, nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('activated_by', sa.String(length=200), nullable=True),
        sa.Column('activated_at', UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_rule_sets_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_sets')),
        sa.UniqueConstraint('program_id', 'version', name='uq_rule_sets_program_version'),
    )
    op.create_index('ix_rule_sets_program_status', 'rule_sets', ['program_id', 'status'])
    op.create_table(
        'rule_counters',
        sa.Column('program_id', Id, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('subject', sa.String(length=40), nullable=False),
        sa.Column('period', sa.String(length=20), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_rule_counters_program_id_programs')),
        sa.PrimaryKeyConstraint('program_id', 'name', 'subject', 'period', name=op.f('pk_rule_counters')),
    )
    op.create_table(
        'rule_awards',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('rule_set_version', sa.Integer(), nullable=False),
        sa.Column('rule_code', sa.String(length=80), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=True),
        sa.Column('occurred_at', UTCDateTime, nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('participant_id', sa.BigInteger(), nullable=True),
        sa.Column('unit', sa.String(length=16), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('capped', sa.BigInteger(), nullable=False),
        sa.Column('caps_hit', Json, nullable=False),
        sa.Column('basis', sa.BigInteger(), nullable=True),
        sa.Column('match_key', sa.String(length=200), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('release_type', sa.String(length=100), nullable=True),
        sa.Column('release_at', UTCDateTime, nullable=True),
        sa.Column('transaction_id', sa.BigInteger(), nullable=True),
        sa.Column('returned', sa.BigInteger(), nullable=False),
        sa.Column('clawed', sa.BigInteger(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('inputs', Json, nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('released_at', UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_rule_awards_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_awards')),
    )
    op.create_index('ix_rule_awards_key', 'rule_awards', ['program_id', 'match_key'])
    op.create_index('ix_rule_awards_pending', 'rule_awards', ['program_id', 'status', 'release_type'])
    op.create_index('ix_rule_awards_release_at', 'rule_awards', ['status', 'release_at'])
    op.create_index('ix_rule_awards_event', 'rule_awards', ['event_id'])
    op.create_index('ix_rule_awards_org', 'rule_awards', ['program_id', 'organization_id', 'id'])
    op.create_table(
        'benefit_assignments',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('award_id', Id, nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('quantity', sa.BigInteger(), nullable=False),
        sa.Column('assignee_ref', sa.String(length=200), nullable=False),
        sa.Column('assignee_name', sa.String(length=300), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['award_id'], ['rule_awards.id'],
                                name=op.f('fk_benefit_assignments_award_id_rule_awards')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_benefit_assignments_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_benefit_assignments')),
    )
    op.create_index('ix_benefit_assignments_award', 'benefit_assignments', ['award_id'])
    op.create_index('ix_benefit_assignments_assignee', 'benefit_assignments', ['program_id', 'assignee_ref'])


def downgrade() -> None:
    op.drop_table('benefit_assignments')
    op.drop_table('rule_awards')
    op.drop_table('rule_counters')
    op.drop_table('rule_sets')
