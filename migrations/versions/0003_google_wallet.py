"""google wallet: classes, objects, notifications sent, callback nonces

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:10:00.000000
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('google_wallet_classes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('class_id', sa.String(length=160), nullable=False),
    sa.Column('inserted_in_google', sa.Boolean(), nullable=False),
    sa.Column('review_status', sa.String(length=32), nullable=True),
    sa.Column('payload_hash', sa.String(length=64), nullable=True),
    sa.Column('synced_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_google_wallet_classes_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_wallet_classes')),
    sa.UniqueConstraint('class_id', name=op.f('uq_google_wallet_classes_class_id')),
    sa.UniqueConstraint('program_id', name=op.f('uq_google_wallet_classes_program_id'))
    )
    op.create_table('google_wallet_objects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=False),
    sa.Column('object_id', sa.String(length=160), nullable=False),
    sa.Column('inserted_in_google', sa.Boolean(), nullable=False),
    sa.Column('in_wallet', sa.Boolean(), nullable=False),
    sa.Column('saved_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('synced_version', sa.Integer(), nullable=True),
    sa.Column('notify_version', sa.Integer(), nullable=False),
    sa.Column('notified_version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['card_id'], ['cards.id'], name=op.f('fk_google_wallet_objects_card_id_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_wallet_objects')),
    sa.UniqueConstraint('card_id', name=op.f('uq_google_wallet_objects_card_id')),
    sa.UniqueConstraint('object_id', name=op.f('uq_google_wallet_objects_object_id'))
    )
    op.create_table('google_wallet_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('object_row_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sent_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['object_row_id'], ['google_wallet_objects.id'], name=op.f('fk_google_wallet_notifications_object_row_id_google_wallet_objects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_wallet_notifications'))
    )
    op.create_index('ix_google_wallet_notifications_object_sent', 'google_wallet_notifications', ['object_row_id', 'sent_at'], unique=False)
    op.create_table('google_wallet_callback_nonces',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('nonce', sa.String(length=200), nullable=False),
    sa.Column('expires_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_google_wallet_callback_nonces')),
    sa.UniqueConstraint('nonce', name=op.f('uq_google_wallet_callback_nonces_nonce'))
    )
    op.create_index(op.f('ix_google_wallet_callback_nonces_expires_at'), 'google_wallet_callback_nonces', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_google_wallet_callback_nonces_expires_at'), table_name='google_wallet_callback_nonces')
    op.drop_table('google_wallet_callback_nonces')
    op.drop_index('ix_google_wallet_notifications_object_sent', table_name='google_wallet_notifications')
    op.drop_table('google_wallet_notifications')
    op.drop_table('google_wallet_objects')
    op.drop_table('google_wallet_classes')
