"""geo: wallet card refreshes after offer changes, done by a job in batches

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 19:00:00
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('geo_wallet_refreshes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cursor', sa.Integer(), nullable=False),
    sa.Column('done_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_geo_wallet_refreshes_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geo_wallet_refreshes'))
    )
    op.create_index(op.f('ix_geo_wallet_refreshes_program_id'), 'geo_wallet_refreshes', ['program_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_geo_wallet_refreshes_program_id'), table_name='geo_wallet_refreshes')
    op.drop_table('geo_wallet_refreshes')
