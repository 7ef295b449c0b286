"""campaigns: nightly customer scores, segments, campaigns and their sends, re-engagement, tags

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:17:17
"""
from alembic import op
import sqlalchemy as sa
import app.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scoring_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('started_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('customers', sa.Integer(), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('program_gap_days', sa.Float(), nullable=True),
    sa.Column('model', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_scoring_runs_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scoring_runs')),
    sa.UniqueConstraint('program_id', 'as_of', name='uq_scoring_runs_program_as_of')
    )
    op.create_table('segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_segments_program_id_programs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments'))
    )
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segments_program_id'), ['program_id'], unique=False)

    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('broadcast', 'reengagement', name='campaignkind', native_enum=False, length=24), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('templates', sa.JSON(), nullable=False),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('send_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cron', sa.String(length=120), nullable=True),
    sa.Column('state', sa.Enum('draft', 'scheduled', 'paused', 'cancelled', 'completed', name='campaignstate', native_enum=False, length=24), nullable=False),
    sa.Column('next_run_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('holdout_percent', sa.Float(), nullable=False),
    sa.Column('reward_id', sa.Integer(), nullable=True),
    sa.Column('bonus_points', sa.Integer(), nullable=False),
    sa.Column('return_days', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('bonus_points >= 0', name=op.f('ck_campaigns_bonus_nonnegative')),
    sa.CheckConstraint('holdout_percent >= 0 AND holdout_percent <= 90', name=op.f('ck_campaigns_holdout_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['staff_users.id'], name=op.f('fk_campaigns_created_by_id_staff_users')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_campaigns_program_id_programs')),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_campaigns_reward_id_rewards')),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], name=op.f('fk_campaigns_segment_id_segments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns'))
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_program_id'), ['program_id'], unique=False)
        batch_op.create_index('ix_campaigns_state_next_run_at', ['state', 'next_run_at'], unique=False)

    op.create_table('customer_scores',
    sa.Column('program_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=True),
    sa.Column('tenure_days', sa.Integer(), nullable=True),
    sa.Column('visits', sa.Integer(), nullable=False),
    sa.Column('spend_cents', sa.BigInteger(), nullable=False),
    sa.Column('r_score', sa.Integer(), nullable=True),
    sa.Column('f_score', sa.Integer(), nullable=True),
    sa.Column('m_score', sa.Integer(), nullable=True),
    sa.Column('median_gap_days', sa.Float(), nullable=True),
    sa.Column('rhythm_days', sa.Float(), nullable=True),
    sa.Column('last_gap_days', sa.Integer(), nullable=True),
    sa.Column('overdue_factor', sa.Float(), nullable=True),
    sa.Column('status', sa.Enum('new', 'active', 'lapsing', 'lapsed', 'won_back', name='customerstatus', native_enum=False, length=24), nullable=False),
    sa.Column('p_alive', sa.Float(), nullable=True),
    sa.Column('p_return', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_scores_customer_id_customers')),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_customer_scores_program_id_programs')),
    sa.PrimaryKeyConstraint('program_id', 'as_of', 'customer_id', name=op.f('pk_customer_scores'))
    )
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.create_index('ix_customer_scores_program_as_of_status', ['program_id', 'as_of', 'status'], unique=False)

    op.create_table('customer_tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('tag', sa.String(length=40), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_tags_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_tags')),
    sa.UniqueConstraint('tag', 'customer_id', name='uq_customer_tags_tag_customer')
    )
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_tags_customer_id'), ['customer_id'], unique=False)

    op.create_table('campaign_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('scheduled_for', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('state', sa.Enum('running', 'done', name='runstate', native_enum=False, length=24), nullable=False),
    sa.Column('cursor', sa.Integer(), nullable=False),
    sa.Column('targeted', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_runs_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_runs')),
    sa.UniqueConstraint('campaign_id', 'scheduled_for', name='uq_campaign_runs_campaign_scheduled_for')
    )
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_runs_state', ['state'], unique=False)

    op.create_table('reengagement_enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('holdout', sa.Boolean(), nullable=False),
    sa.Column('state', sa.Enum('active', 'completed', 'won_back', 'exited', name='enrollmentstate', native_enum=False, length=24), nullable=False),
    sa.Column('enrolled_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_step', sa.Integer(), nullable=False),
    sa.Column('next_step_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('returned_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_reengagement_enrollments_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_reengagement_enrollments_customer_id_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reengagement_enrollments'))
    )
    with op.batch_alter_table('reengagement_enrollments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reengagement_enrollments_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('ix_reengagement_enrollments_customer_state', ['customer_id', 'state'], unique=False)
        batch_op.create_index('ix_reengagement_enrollments_state_next_step_at', ['state', 'next_step_at'], unique=False)
        batch_op.create_index('uq_reengagement_enrollments_active_customer', ['customer_id'], unique=True, postgresql_where=sa.text("state = 'active'"), sqlite_where=sa.text("state = 'active'"))

    op.create_table('campaign_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('enrollment_id', sa.Integer(), nullable=True),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('holdout', sa.Boolean(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=True),
    sa.Column('skip_reason', sa.String(length=64), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('bonus_points', sa.Integer(), nullable=False),
    sa.Column('targeted_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_targets_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_campaign_targets_customer_id_customers')),
    sa.ForeignKeyConstraint(['enrollment_id'], ['reengagement_enrollments.id'], name=op.f('fk_campaign_targets_enrollment_id_reengagement_enrollments')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_campaign_targets_message_id_messages')),
    sa.ForeignKeyConstraint(['run_id'], ['campaign_runs.id'], name=op.f('fk_campaign_targets_run_id_campaign_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_targets')),
    sa.UniqueConstraint('enrollment_id', 'step', name='uq_campaign_targets_enrollment_step'),
    sa.UniqueConstraint('run_id', 'customer_id', name='uq_campaign_targets_run_customer')
    )
    with op.batch_alter_table('campaign_targets', schema=None) as batch_op:
        batch_op.create_index('ix_campaign_targets_campaign_step', ['campaign_id', 'step'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('campaign_targets', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_targets_campaign_step')

    op.drop_table('campaign_targets')
    with op.batch_alter_table('reengagement_enrollments', schema=None) as batch_op:
        batch_op.drop_index('uq_reengagement_enrollments_active_customer', postgresql_where=sa.text("state = 'active'"), sqlite_where=sa.text("state = 'active'"))
        batch_op.drop_index('ix_reengagement_enrollments_state_next_step_at')
        batch_op.drop_index('ix_reengagement_enrollments_customer_state')
        batch_op.drop_index(batch_op.f('ix_reengagement_enrollments_campaign_id'))

    op.drop_table('reengagement_enrollments')
    with op.batch_alter_table('campaign_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_campaign_runs_state')

    op.drop_table('campaign_runs')
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_tags_customer_id'))

    op.drop_table('customer_tags')
    with op.batch_alter_table('customer_scores', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_scores_program_as_of_status')

    op.drop_table('customer_scores')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index('ix_campaigns_state_next_run_at')
        batch_op.drop_index(batch_op.f('ix_campaigns_program_id'))

    op.drop_table('campaigns')
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segments_program_id'))

    op.drop_table('segments')
    op.drop_table('scoring_runs')
