"""apple wallet: issued passes and device registrations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:56:54.446190
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('apple_passes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('serial_number', sa.String(length=64), nullable=False),
    sa.Column('authentication_token', sa.String(length=64), nullable=False),
    sa.Column('update_tag', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_apple_passes_card_id_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apple_passes')),
    sa.UniqueConstraint('card_id', name=op.f('uq_apple_passes_card_id')),
    sa.UniqueConstraint('serial_number', name=op.f('uq_apple_passes_serial_number'))
    )
    op.create_table('apple_device_registrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pass_id', sa.Integer(), nullable=False),
    sa.Column('device_library_id', sa.String(length=128), nullable=False),
    sa.Column('push_token', sa.String(length=200), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['pass_id'], ['apple_passes.id'], name=op.f('fk_apple_device_registrations_pass_id_apple_passes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apple_device_registrations')),
    sa.UniqueConstraint('device_library_id', 'pass_id', name='uq_apple_device_registrations_device_pass')
    )
    with op.batch_alter_table('apple_device_registrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apple_device_registrations_pass_id'), ['pass_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('apple_device_registrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apple_device_registrations_pass_id'))

    op.drop_table('apple_device_registrations')
    op.drop_table('apple_passes')
