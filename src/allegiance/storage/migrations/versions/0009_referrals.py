"""referrals: scheme settings, participants' codes, referrals

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from allegiance.storage.types import Id, Json, UTCDateTime

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'referral_settings',
        sa.Column('program_id', Id, nullable=False),
        sa.Column('document', Json, nullable=False),
        sa.Column('updated_by', sa.String(length=60), nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_referral_settings_program_id_programs')),
        sa.PrimaryKeyConstraint('program_id', name=op.f('pk_referral_settings')),
    )
    op.create_table(
        'referral_codes',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('participant_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('code', sa.String(length=20), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_referral_codes_program_id_programs')),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id'],
                                name=op.f('fk_referral_codes_participant_id_participants')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_referral_codes_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_referral_codes')),
        sa.UniqueConstraint('program_id', 'code', name=op.f('uq_referral_codes_program_id')),
    )
    op.create_index('ix_referral_codes_participant', 'referral_codes', ['program_id', 'participant_id', 'active'])
    op.create_table(
        'referrals',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('code_id', Id, nullable=False),
        sa.Column('referrer_participant_id', Id, nullable=False),
        sa.Column('referrer_organization_id', Id, nullable=False),
        sa.Column('referred_organization_id', Id, nullable=False),
        sa.Column('contact_email', sa.String(length=254), nullable=True),
        sa.Column('source', sa.String(length=100), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('flags', Json, nullable=False),
        sa.Column('qualifying_event_id', Id, nullable=True),
        sa.Column('review_note', sa.Text(), nullable=False),
        sa.Column('reviewed_by', sa.String(length=60), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.Column('converted_at', UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_referrals_program_id_programs')),
        sa.ForeignKeyConstraint(['code_id'], ['referral_codes.id'], name=op.f('fk_referrals_code_id_referral_codes')),
        sa.ForeignKeyConstraint(['referrer_participant_id'], ['participants.id'],
                                name=op.f('fk_referrals_referrer_participant_id_participants')),
        sa.ForeignKeyConstraint(['referrer_organization_id'], ['organizations.id'],
                                name=op.f('fk_referrals_referrer_organization_id_organizations')),
        sa.ForeignKeyConstraint(['referred_organization_id'], ['organizations.id'],
                                name=op.f('fk_referrals_referred_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals')),
        sa.UniqueConstraint('program_id', 'referred_organization_id', name=op.f('uq_referrals_program_id')),
    )
    op.create_index('ix_referrals_code_time', 'referrals', ['program_id', 'code_id', 'created_at'])
    op.create_index('ix_referrals_source_time', 'referrals', ['program_id', 'source', 'created_at'])
    op.create_index('ix_referrals_program_status', 'referrals', ['program_id', 'status', 'id'])
    op.create_index('ix_referrals_referrer', 'referrals', ['program_id', 'referrer_organization_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_referrals_referrer', table_name='referrals')
    op.drop_index('ix_referrals_program_status', table_name='referrals')
    op.drop_index('ix_referrals_source_time', table_name='referrals')
    op.drop_index('ix_referrals_code_time', table_name='referrals')
    op.drop_table('referrals')
    op.drop_index('ix_referral_codes_participant', table_name='referral_codes')
    op.drop_table('referral_codes')
    op.drop_table('referral_settings')
