"""stores: opening hours; offers speak only while open, and remember what they granted

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 17:30:00
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stores') as batch:
        batch.add_column(sa.Column('opening_hours', sa.JSON(), nullable=True))
    with op.batch_alter_table('geo_offers') as batch:
        batch.add_column(sa.Column('only_while_open', sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table('geo_offer_deliveries') as batch:
        batch.add_column(sa.Column('bonus_entry_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('redemption_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f('fk_geo_offer_deliveries_bonus_entry_id_ledger_entries'),
                                 'ledger_entries', ['bonus_entry_id'], ['id'])
        batch.create_foreign_key(batch.f('fk_geo_offer_deliveries_redemption_id_redemptions'),
                                 'redemptions', ['redemption_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('geo_offer_deliveries') as batch:
        batch.drop_constraint(batch.f('fk_geo_offer_deliveries_redemption_id_redemptions'), type_='foreignkey')
        batch.drop_constraint(batch.f('fk_geo_offer_deliveries_bonus_entry_id_ledger_entries'), type_='foreignkey')
        batch.drop_column('redemption_id')
        batch.drop_column('bonus_entry_id')
    with op.batch_alter_table('geo_offers') as batch:
        batch.drop_column('only_while_open')
    with op.batch_alter_table('stores') as batch:
        batch.drop_column('opening_hours')
