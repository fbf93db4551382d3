"""co-op marketing funds: settings, plans, claims, proofs, yearly budget usage

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from allegiance.storage.types import Id, Json, UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'coop_settings',
        sa.Column('program_id', Id, nullable=False),
        sa.Column('document', Json, nullable=False),
        sa.Column('updated_by', sa.String(length=60), nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_coop_settings_program_id_programs')),
        sa.PrimaryKeyConstraint('program_id', name=op.f('pk_coop_settings')),
    )
    op.create_table(
        'coop_plans',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('activity_type', sa.String(length=40), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('planned_cost', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('planned_date', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('submitted_by', sa.String(length=60), nullable=False),
        sa.Column('reviewed_by', sa.String(length=60), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_coop_plans_program_id_programs')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_coop_plans_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_plans')),
    )
    op.create_index('ix_coop_plans_program_org', 'coop_plans', ['program_id', 'organization_id', 'id'])
    op.create_table(
        'coop_claims',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('plan_id', Id, nullable=True),
        sa.Column('participant_id', Id, nullable=True),
        sa.Column('activity_type', sa.String(length=40), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('cost', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('activity_date', sa.Date(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('invoice_number', sa.String(length=60), nullable=False),
        sa.Column('invoice_key', sa.String(length=60), nullable=False),
        sa.Column('brands', Json, nullable=False),
        sa.Column('brand_count', sa.Integer(), nullable=False),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('requested_amount', sa.BigInteger(), nullable=False),
        sa.Column('approved_amount', sa.BigInteger(), nullable=True),
        sa.Column('limit_note', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('hold_id', Id, nullable=True),
        sa.Column('settlement_transaction_id', sa.BigInteger(), nullable=True),
        sa.Column('payment_reference', sa.String(length=100), nullable=True),
        sa.Column('submitted_by', sa.String(length=60), nullable=False),
        sa.Column('reviewed_by', sa.String(length=60), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_coop_claims_program_id_programs')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_coop_claims_organization_id_organizations')),
        sa.ForeignKeyConstraint(['plan_id'], ['coop_plans.id'], name=op.f('fk_coop_claims_plan_id_coop_plans')),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id'],
                                name=op.f('fk_coop_claims_participant_id_participants')),
        sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], name=op.f('fk_coop_claims_hold_id_holds')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_claims')),
        sa.UniqueConstraint('program_id', 'organization_id', 'invoice_key', name=op.f('uq_coop_claims_program_id')),
    )
    op.create_index('ix_coop_claims_program_status', 'coop_claims', ['program_id', 'status', 'id'])
    op.create_index('ix_coop_claims_program_org', 'coop_claims', ['program_id', 'organization_id', 'id'])
    op.create_table(
        'coop_claim_history',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('claim_id', Id, nullable=False),
        sa.Column('from_status', sa.String(length=20), nullable=True),
        sa.Column('to_status', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=60), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_coop_claim_history_program_id_programs')),
        sa.ForeignKeyConstraint(['claim_id'], ['coop_claims.id'],
                                name=op.f('fk_coop_claim_history_claim_id_coop_claims')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_claim_history')),
    )
    op.create_index('ix_coop_claim_history_claim', 'coop_claim_history', ['claim_id', 'id'])
    op.create_table(
        'coop_proofs',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('claim_id', Id, nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('uploaded_by', sa.String(length=60), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_coop_proofs_program_id_programs')),
        sa.ForeignKeyConstraint(['claim_id'], ['coop_claims.id'], name=op.f('fk_coop_proofs_claim_id_coop_claims')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_coop_proofs')),
        sa.UniqueConstraint('claim_id', 'sha256', name=op.f('uq_coop_proofs_claim_id')),
    )
    op.create_table(
        'coop_budget_usage',
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', sa.BigInteger(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('used', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('used >= 0', name=op.f('ck_coop_budget_usage_used_not_negative')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_coop_budget_usage_program_id_programs')),
        sa.PrimaryKeyConstraint('program_id', 'organization_id', 'year', name=op.f('pk_coop_budget_usage')),
    )


def downgrade() -> None:
    op.drop_table('coop_budget_usage')
    op.drop_table('coop_proofs')
    op.drop_index('ix_coop_claim_history_claim', table_name='coop_claim_history')
    op.drop_table('coop_claim_history')
    op.drop_index('ix_coop_claims_program_org', table_name='coop_claims')
    op.drop_index('ix_coop_claims_program_status', table_name='coop_claims')
    op.drop_table('coop_claims')
    op.drop_index('ix_coop_plans_program_org', table_name='coop_plans')
    op.drop_table('coop_plans')
    op.drop_table('coop_settings')
