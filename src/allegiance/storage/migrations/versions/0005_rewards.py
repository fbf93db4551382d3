"""rewards catalog, redemptions, approval policies, charity, concierge

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from allegiance.storage.types import Id, Json, UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reward_items',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('code', sa.String(length=60), nullable=False),
        sa.Column('names', Json, nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('category', sa.String(length=30), nullable=False),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('cost', sa.BigInteger(), nullable=False),
        sa.Column('stock', sa.BigInteger(), nullable=True),
        sa.Column('availability', Json, nullable=False),
        sa.Column('image_url', sa.String(length=500), nullable=True),
        sa.Column('partner_id', sa.BigInteger(), nullable=True),
        sa.Column('face_value', Json, nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.CheckConstraint('stock >= 0', name=op.f('ck_reward_items_stock_not_negative')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_reward_items_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_items')),
        sa.UniqueConstraint('program_id', 'code', name=op.f('uq_reward_items_program_code')),
    )
    op.create_index('ix_reward_items_program_id_id', 'reward_items', ['program_id', 'id'])
    op.create_table(
        'reward_policies',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('scope', sa.String(length=40), nullable=False),
        sa.Column('organization_id', Id, nullable=True),
        sa.Column('document', Json, nullable=False),
        sa.Column('updated_by', sa.String(length=60), nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_reward_policies_program_id_programs')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_reward_policies_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_policies')),
        sa.UniqueConstraint('program_id', 'scope', name=op.f('uq_reward_policies_program_scope')),
    )
    op.create_table(
        'redemptions',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('item_id', Id, nullable=True),
        sa.Column('concierge_request_id', sa.BigInteger(), nullable=True),
        sa.Column('item_code', sa.String(length=60), nullable=False),
        sa.Column('item_name', sa.String(length=300), nullable=False),
        sa.Column('category', sa.String(length=30), nullable=False),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('unit_cost', sa.BigInteger(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('cost', sa.BigInteger(), nullable=False),
        sa.Column('source', sa.String(length=10), nullable=False),
        sa.Column('account_id', Id, nullable=False),
        sa.Column('participant_id', Id, nullable=True),
        sa.Column('recipient_participant_id', Id, nullable=True),
        sa.Column('requester', sa.String(length=60), nullable=False),
        sa.Column('requester_role', sa.String(length=20), nullable=False),
        sa.Column('hold_id', Id, nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('approvals_outstanding', Json, nullable=False),
        sa.Column('approvals', Json, nullable=False),
        sa.Column('balance_before', sa.BigInteger(), nullable=False),
        sa.Column('balance_after', sa.BigInteger(), nullable=False),
        sa.Column('cap_participant_id', sa.BigInteger(), nullable=True),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('delivery', sa.Text(), nullable=False),
        sa.Column('fulfilment_note', sa.Text(), nullable=False),
        sa.Column('expires_at', UTCDateTime, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.Column('resolved_at', UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(['recipient_participant_id'], ['participants.id'],
                                name=op.f('fk_redemptions_recipient_participant_id_participants')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_redemptions_program_id_programs')),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id'],
                                name=op.f('fk_redemptions_participant_id_participants')),
        sa.ForeignKeyConstraint(['hold_id'], ['holds.id'], name=op.f('fk_redemptions_hold_id_holds')),
        sa.ForeignKeyConstraint(['item_id'], ['reward_items.id'], name=op.f('fk_redemptions_item_id_reward_items')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_redemptions_organization_id_organizations')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_redemptions_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_redemptions')),
    )
    op.create_index('ix_redemptions_due', 'redemptions', ['status', 'expires_at'])
    op.create_index('ix_redemptions_program_org', 'redemptions', ['program_id', 'organization_id', 'id'])
    op.create_index('ix_redemptions_program_status', 'redemptions', ['program_id', 'status', 'id'])
    op.create_table(
        'redemption_history',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('redemption_id', Id, nullable=False),
        sa.Column('from_status', sa.String(length=20), nullable=True),
        sa.Column('to_status', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=60), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['redemption_id'], ['redemptions.id'],
                                name=op.f('fk_redemption_history_redemption_id_redemptions')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_redemption_history_program_id_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_redemption_history')),
    )
    op.create_index('ix_redemption_history_redemption', 'redemption_history', ['redemption_id', 'id'])
    op.create_table(
        'gift_totals',
        sa.Column('program_id', Id, nullable=False),
        sa.Column('participant_id', sa.BigInteger(), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_gift_totals_program_id_programs')),
        sa.PrimaryKeyConstraint('program_id', 'participant_id', 'year', 'unit', name=op.f('pk_gift_totals')),
    )
    op.create_table(
        'donations',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('redemption_id', Id, nullable=False),
        sa.Column('item_id', Id, nullable=False),
        sa.Column('participant_id', sa.BigInteger(), nullable=True),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.Column('receipt_number', sa.String(length=40), nullable=True),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['redemption_id'], ['redemptions.id'],
                                name=op.f('fk_donations_redemption_id_redemptions')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_donations_program_id_programs')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_donations_organization_id_organizations')),
        sa.ForeignKeyConstraint(['item_id'], ['reward_items.id'], name=op.f('fk_donations_item_id_reward_items')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_donations')),
        sa.UniqueConstraint('receipt_number', name=op.f('uq_donations_receipt_number')),
        sa.UniqueConstraint('redemption_id', name=op.f('uq_donations_redemption_id')),
    )
    op.create_index('ix_donations_program_org_item', 'donations', ['program_id', 'organization_id', 'item_id'])
    op.create_table(
        'concierge_requests',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('participant_id', Id, nullable=True),
        sa.Column('recipient_participant_id', Id, nullable=True),
        sa.Column('requester', sa.String(length=60), nullable=False),
        sa.Column('requester_role', sa.String(length=20), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('category', sa.String(length=30), nullable=False),
        sa.Column('quote_unit', sa.String(length=16), nullable=True),
        sa.Column('quote_cost', sa.BigInteger(), nullable=True),
        sa.Column('quote_note', sa.Text(), nullable=False),
        sa.Column('quoted_by', sa.String(length=60), nullable=True),
        sa.Column('quoted_at', UTCDateTime, nullable=True),
        sa.Column('quote_expires_at', UTCDateTime, nullable=True),
        sa.Column('redemption_id', Id, nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_concierge_requests_program_id_programs')),
        sa.ForeignKeyConstraint(['recipient_participant_id'], ['participants.id'],
                                name=op.f('fk_concierge_requests_recipient_participant_id_participants')),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id'],
                                name=op.f('fk_concierge_requests_participant_id_participants')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_concierge_requests_organization_id_organizations')),
        sa.ForeignKeyConstraint(['redemption_id'], ['redemptions.id'],
                                name=op.f('fk_concierge_requests_redemption_id_redemptions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_concierge_requests')),
    )
    op.create_index('ix_concierge_requests_program_status', 'concierge_requests', ['program_id', 'status', 'id'])


def downgrade() -> None:
    op.drop_table('concierge_requests')
    op.drop_table('donations')
    op.drop_table('gift_totals')
    op.drop_table('redemption_history')
    op.drop_table('redemptions')
    op.drop_table('reward_policies')
    op.drop_table('reward_items')
