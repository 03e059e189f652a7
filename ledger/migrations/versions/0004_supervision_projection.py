"""case figures for supervision: cases.whistles/rechecks/first_verification/evaluation,
case_steps and stage_spans

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('whistles', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('rechecks', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('first_verification', sa.String(length=8), nullable=True))
        batch.add_column(sa.Column('evaluation', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('opened_by', sa.String(length=200), nullable=False,
                                   server_default=''))
        batch.add_column(sa.Column('departments', sa.Text(), nullable=False, server_default=''))
        batch.create_index('ix_cases_opened_by', ['opened_by'])

    op.create_table('case_steps',
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=16), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('limit', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('original_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('extensions', sa.Integer(), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=32), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('case_id', 'position', name=op.f('pk_case_steps'))
    )
    op.create_index('ix_case_steps_step_completed_at', 'case_steps', ['step', 'completed_at'])

    op.create_table('stage_spans',
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=24), nullable=False),
    sa.Column('entered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('case_id', 'seq', name=op.f('pk_stage_spans'))
    )
    op.create_index('ix_stage_spans_left_at', 'stage_spans', ['left_at'])


def downgrade() -> None:
    op.drop_table('stage_spans')
    op.drop_table('case_steps')
    with op.batch_alter_table('cases') as batch:
        batch.drop_index('ix_cases_opened_by')
        for column in ('departments', 'opened_by', 'evaluation', 'first_verification',
                       'rechecks', 'whistles'):
            batch.drop_column(column)
