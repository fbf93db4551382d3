"""coalition partners (partners, partner keys, operations) and finance (expiry notices)

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from allegiance.storage.types import Id, Json, UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_partners()
    _upgrade_finance()


def downgrade() -> None:
    _downgrade_finance()
    _downgrade_partners()


# -- coalition partners -------------------------------------------------------------------------------
def _upgrade_partners() -> None:
    op.create_table(
        'partners',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('code', sa.String(length=60), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('account_id', Id, nullable=True),
        sa.Column('issues_points', sa.Boolean(), nullable=False),
        sa.Column('accepts_points', sa.Boolean(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('currency_scale', sa.Integer(), nullable=False),
        sa.Column('issue_rate_minor', sa.BigInteger(), nullable=False),
        sa.Column('issue_rate_per_points', sa.BigInteger(), nullable=False),
        sa.Column('redeem_rate_minor', sa.BigInteger(), nullable=False),
        sa.Column('redeem_rate_per_points', sa.BigInteger(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('attributes', Json, nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('updated_at', UTCDateTime, nullable=False),
        sa.CheckConstraint('issue_rate_per_points > 0 AND redeem_rate_per_points > 0',
                           name=op.f('ck_partners_rates_positive')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_partners_program_id_programs')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_partners_account_id_accounts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
        sa.UniqueConstraint('program_id', 'code', name=op.f('uq_partners_program_code')),
    )
    op.create_table(
        'partner_keys',
        sa.Column('api_key_id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('partner_id', Id, nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_partner_keys_api_key_id_api_keys')),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_partner_keys_program_id_programs')),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_keys_partner_id_partners')),
        sa.PrimaryKeyConstraint('api_key_id', name=op.f('pk_partner_keys')),
    )
    op.create_table(
        'partner_operations',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('partner_id', Id, nullable=False),
        sa.Column('operation', sa.String(length=10), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('participant_id', Id, nullable=True),
        sa.Column('points', sa.BigInteger(), nullable=False),
        sa.Column('purchase_amount_minor', sa.BigInteger(), nullable=True),
        sa.Column('transaction_id', Id, nullable=True),
        sa.Column('reversal_transaction_id', Id, nullable=True),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.Column('reversed_at', UTCDateTime, nullable=True),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'],
                                name=op.f('fk_partner_operations_program_id_programs')),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_partner_operations_partner_id_partners')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_partner_operations_organization_id_organizations')),
        sa.ForeignKeyConstraint(['participant_id'], ['participants.id'],
                                name=op.f('fk_partner_operations_participant_id_participants')),
        sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'],
                                name=op.f('fk_partner_operations_transaction_id_transactions')),
        sa.ForeignKeyConstraint(['reversal_transaction_id'], ['transactions.id'],
                                name=op.f('fk_partner_operations_reversal_transaction_id_transactions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_operations')),
        sa.UniqueConstraint('partner_id', 'operation', 'reference', name=op.f('uq_partner_operations_reference')),
        sa.UniqueConstraint('reversal_transaction_id',
                            name=op.f('uq_partner_operations_reversal_transaction_id')),
    )
    op.create_index('ix_partner_operations_partner_id', 'partner_operations', ['partner_id', 'id'])


def _downgrade_partners() -> None:
    op.drop_index('ix_partner_operations_partner_id', table_name='partner_operations')
    op.drop_table('partner_operations')
    op.drop_table('partner_keys')
    op.drop_table('partners')


# -- finance ---------------------------------------------------------------------------------------------
def _upgrade_finance() -> None:
    op.create_table(
        'expiry_notices',
        sa.Column('id', Id, nullable=False),
        sa.Column('program_id', Id, nullable=False),
        sa.Column('organization_id', Id, nullable=False),
        sa.Column('unit', sa.String(length=16), nullable=False),
        sa.Column('expires_on', sa.Date(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('created_at', UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_expiry_notices_program_id_programs')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_expiry_notices_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_expiry_notices')),
        sa.UniqueConstraint('program_id', 'organization_id', 'unit', 'expires_on',
                            name=op.f('uq_expiry_notices_key')),
    )


def _downgrade_finance() -> None:
    op.drop_table('expiry_notices')
