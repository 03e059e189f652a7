"""statistics: covering indexes for a period's cohort of cases, its 签收/整改 steps and the
time its cases spent per stage

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# Every column GET /stats reads from `cases` (ledger/stats.py), created_at first: a period's
# cases are one index range, read without touching the rows and their large `state` JSON.
COHORT = ['created_at', 'stage', 'team', 'district', 'street', 'community', 'category', 'source',
          'rating', 'evaluation', 'first_verification', 'rebounds', 'rechecks', 'case_id']


def upgrade() -> None:
    op.create_index('ix_cases_stats_cohort', 'cases', COHORT)
    op.create_index('ix_case_steps_stats', 'case_steps',
                    ['case_id', 'step', 'completed_by', 'late'])
    op.create_index('ix_stage_spans_stats', 'stage_spans', ['case_id', 'stage', 'seconds'])


def downgrade() -> None:
    op.drop_index('ix_stage_spans_stats', table_name='stage_spans')
    op.drop_index('ix_case_steps_stats', table_name='case_steps')
    op.drop_index('ix_cases_stats_cohort', table_name='cases')
