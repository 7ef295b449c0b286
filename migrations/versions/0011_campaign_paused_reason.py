"""campaigns: why the scheduler paused a campaign

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 18:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns') as batch:
        batch.add_column(sa.Column('paused_reason', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('campaigns') as batch:
        batch.drop_column('paused_reason')
