"""tier ladders, tier status and history, qualifying credits, discount cards

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from allegiance.storage.types import Id, Json, UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f'{target}.id'], name=op.f(f'fk_{table}_{column}_{target}'))


def upgrade() -> None:
    op.create_table(
        'tier_ladders',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('code', sa.String(length=60), nullable=False),
        sa.Column('level', sa.String(length=20), nullable=False),
        sa.Column('document', Json, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        _fk('tier_ladders', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_ladders')),
        sa.UniqueConstraint('program_id', 'code', name='uq_tier_ladders_program_code'),
        sa.UniqueConstraint('program_id', 'level', name='uq_tier_ladders_program_level'),
    )
    op.create_table(
        'tier_status',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('ladder_id', Id, nullable=False),
        sa.Column('subject', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('participant_id', sa.BigInteger(), nullable=True),
        sa.Column('tier', sa.String(length=60), nullable=True),
        sa.Column('since', UTCDateTime, nullable=False),
        sa.Column('reviewed_through', UTCDateTime, nullable=True),
        sa.Column('pending_tier', sa.String(length=60), nullable=True),
        sa.Column('downgrade_at', UTCDateTime, nullable=True),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        _fk('tier_status', 'program_id', 'programs'),
        _fk('tier_status', 'ladder_id', 'tier_ladders'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_status')),
        sa.UniqueConstraint('ladder_id', 'subject', name='uq_tier_status_ladder_subject'),
    )
    op.create_table(
        'tier_history',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('ladder_id', Id, nullable=False),
        sa.Column('subject', sa.String(length=40), nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('participant_id', sa.BigInteger(), nullable=True),
        sa.Column('from_tier', sa.String(length=60), nullable=True),
        sa.Column('to_tier', sa.String(length=60), nullable=True),
        sa.Column('direction', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('measures', Json, nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=True),
        sa.Column('at', UTCDateTime, nullable=False),
        _fk('tier_history', 'program_id', 'programs'),
        _fk('tier_history', 'ladder_id', 'tier_ladders'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_history')),
    )
    op.create_index('ix_tier_history_subject', 'tier_history', ['ladder_id', 'subject', 'id'])
    op.create_table(
        'tier_measures',
        sa.Column('program_id', Id, nullable=False),
        sa.Column('scope', sa.String(length=40), nullable=False),
        sa.Column('measure', sa.String(length=200), nullable=False),
        sa.Column('subject', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        _fk('tier_measures', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('program_id', 'scope', 'measure', 'subject', 'day', name=op.f('pk_tier_measures')),
    )
    op.create_table(
        'tier_credits',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('participant_id', sa.BigInteger(), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('occurred_at', UTCDateTime, nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=True),
        sa.Column('rule', sa.String(length=80), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        _fk('tier_credits', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_credits')),
    )
    op.create_index('ix_tier_credits_org_time', 'tier_credits', ['program_id', 'organization_id', 'occurred_at'])
    op.create_table(
        'tier_participant_marks',
        sa.Column('program_id', Id, nullable=False),
        sa.Column('scope', sa.String(length=40), nullable=False),
        sa.Column('measure', sa.String(length=200), nullable=False),
        sa.Column('participant_id', sa.BigInteger(), nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('first_at', UTCDateTime, nullable=False),
        sa.Column('last_at', UTCDateTime, nullable=False),
        _fk('tier_participant_marks', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('program_id', 'scope', 'measure', 'participant_id',
                                name=op.f('pk_tier_participant_marks')),
    )
    op.create_table(
        'discount_cards',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('document', Json, nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        _fk('discount_cards', 'program_id', 'programs'),
        _fk('discount_cards', 'organization_id', 'organizations'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_discount_cards')),
        sa.UniqueConstraint('program_id', 'organization_id', name='uq_discount_cards_program_org'),
    )
    op.create_table(
        'store_credit_applications',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('channel', sa.String(length=60), nullable=True),
        sa.Column('transaction_id', sa.BigInteger(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        _fk('store_credit_applications', 'program_id', 'programs'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_store_credit_applications')),
    )
    op.create_index('ix_store_credit_applications_ref', 'store_credit_applications',
                    ['program_id', 'organization_id', 'unit', 'reference'])


def downgrade() -> None:
    for table in ('store_credit_applications', 'discount_cards', 'tier_participant_marks', 'tier_credits',
                  'tier_measures', 'tier_history', 'tier_status', 'tier_ladders'):
        op.drop_table(table)
