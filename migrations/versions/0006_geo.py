"""geo: geofenced offers, prefilter rows, location pings, deliveries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 16:26:00
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('geo_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('radius_m', sa.Float(), nullable=False),
    sa.Column('starts_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('days', sa.JSON(), nullable=False),
    sa.Column('start_time', sa.String(length=5), nullable=True),
    sa.Column('end_time', sa.String(length=5), nullable=True),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('cooldown_minutes', sa.Integer(), nullable=False),
    sa.Column('reward_id', sa.Integer(), nullable=True),
    sa.Column('bonus_points', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_geo_offers_program_id_programs')),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_geo_offers_reward_id_rewards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geo_offers'))
    )
    with op.batch_alter_table('geo_offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_geo_offers_program_id'), ['program_id'], unique=False)

    op.create_table('location_pings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=False),
    sa.Column('longitude', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=False),
    sa.Column('recorded_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_location_pings_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location_pings'))
    )
    with op.batch_alter_table('location_pings', schema=None) as batch_op:
        batch_op.create_index('ix_location_pings_customer_at', ['customer_id', 'recorded_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_location_pings_recorded_at'), ['recorded_at'], unique=False)

    op.create_table('geo_fences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('band', sa.Integer(), nullable=False),
    sa.Column('min_lat', sa.Float(), nullable=False),
    sa.Column('max_lat', sa.Float(), nullable=False),
    sa.Column('min_lon', sa.Float(), nullable=False),
    sa.Column('max_lon', sa.Float(), nullable=False),
    sa.Column('latitude', sa.Float(), nullable=False),
    sa.Column('longitude', sa.Float(), nullable=False),
    sa.Column('radius_m', sa.Float(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['geo_offers.id'], name=op.f('fk_geo_fences_offer_id_geo_offers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_geo_fences_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geo_fences'))
    )
    with op.batch_alter_table('geo_fences', schema=None) as batch_op:
        batch_op.create_index('ix_geo_fences_band_lon', ['band', 'min_lon', 'max_lon'], unique=False)
        batch_op.create_index(batch_op.f('ix_geo_fences_offer_id'), ['offer_id'], unique=False)

    op.create_table('geo_offer_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=True),
    sa.Column('delivered_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_geo_offer_deliveries_customer_id_customers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['offer_id'], ['geo_offers.id'], name=op.f('fk_geo_offer_deliveries_offer_id_geo_offers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_geo_offer_deliveries_store_id_stores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geo_offer_deliveries'))
    )
    with op.batch_alter_table('geo_offer_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_geo_offer_deliveries_offer_customer', ['offer_id', 'customer_id', 'delivered_at'], unique=False)

    op.create_table('geo_offer_stores',
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('store_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['geo_offers.id'], name=op.f('fk_geo_offer_stores_offer_id_geo_offers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_geo_offer_stores_store_id_stores')),
    sa.PrimaryKeyConstraint('offer_id', 'store_id', name=op.f('pk_geo_offer_stores'))
    )
    with op.batch_alter_table('geo_offer_stores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_geo_offer_stores_store_id'), ['store_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('geo_offer_stores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_geo_offer_stores_store_id'))

    op.drop_table('geo_offer_stores')
    with op.batch_alter_table('geo_offer_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_geo_offer_deliveries_offer_customer')

    op.drop_table('geo_offer_deliveries')
    with op.batch_alter_table('geo_fences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_geo_fences_offer_id'))
        batch_op.drop_index('ix_geo_fences_band_lon')

    op.drop_table('geo_fences')
    with op.batch_alter_table('location_pings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_location_pings_recorded_at'))
        batch_op.drop_index('ix_location_pings_customer_at')

    op.drop_table('location_pings')
    with op.batch_alter_table('geo_offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_geo_offers_program_id'))

    op.drop_table('geo_offers')
