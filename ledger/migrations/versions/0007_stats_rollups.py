"""statistics and lists at scale: step counters on cases, duration bands on stage_spans, the
monthly roll-ups stats_rollup and stage_time_rollup built from what the ledger already holds,
the case state JSON moved to case_states so `cases` rows are narrow, and indexes that count a
team's or district's cases by stage and the overdue ones by district and team

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

from ledger import rollups


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

STEP_COUNTERS = {
    # column: (step, how it ended, only those in time)
    'accept_signed': ('accept', 'accept', False),
    'accept_on_time': ('accept', 'accept', True),
    'rectify_submitted': ('rectify', 'submit_rectification', False),
    'rectify_on_time': ('rectify', 'submit_rectification', True),
}
OLD_COHORT = ['created_at', 'stage', 'team', 'district', 'street', 'community', 'category',
              'source', 'rating', 'evaluation', 'first_verification', 'rebounds', 'rechecks',
              'case_id']
COHORT = OLD_COHORT[:-1] + list(STEP_COUNTERS) + ['case_id']
COUNTS = ['found', 'open', 'closed', 'invalid', 'rated', 'no_response', 'passed', 'verified',
          'satisfied', 'rebounds', 'rechecks', *STEP_COUNTERS]


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table('case_states',
                    sa.Column('case_id', sa.String(length=128), nullable=False),
                    sa.Column('last_seq', sa.Integer(), nullable=False),
                    sa.Column('state', sa.JSON(), nullable=False),
                    sa.PrimaryKeyConstraint('case_id', name='pk_case_states'))
    op.execute("INSERT INTO case_states (case_id, last_seq, state) "
               "SELECT case_id, last_seq, state FROM cases")
    with op.batch_alter_table('cases') as batch:
        batch.drop_column('state')
        batch.drop_index('ix_cases_overdue')
        batch.create_index('ix_cases_overdue_district_team', ['overdue', 'district', 'team'])
        batch.drop_index('ix_cases_team')
        batch.create_index('ix_cases_team_stage', ['team', 'stage'])
        batch.drop_index('ix_cases_district')
        batch.create_index('ix_cases_district_stage', ['district', 'stage'])
    with op.batch_alter_table('cases') as batch:
        for column in STEP_COUNTERS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default='0'))
    for column, (step, ended_by, in_time) in STEP_COUNTERS.items():
        late = " AND NOT s.late" if in_time else ""
        op.execute(f"UPDATE cases SET {column} = (SELECT count(*) FROM case_steps s "
                   f"WHERE s.case_id = cases.case_id AND s.step = '{step}' "
                   f"AND s.completed_by = '{ended_by}'{late})")
    op.drop_index('ix_cases_stats_cohort', table_name='cases')
    op.create_index('ix_cases_stats_cohort', 'cases', COHORT)

    with op.batch_alter_table('stage_spans') as batch:
        batch.add_column(sa.Column('bucket', sa.Integer(), nullable=False, server_default='0'))
    spans = sa.table('stage_spans', sa.column('case_id'), sa.column('seq'),
                     sa.column('seconds'), sa.column('bucket'))
    bands = [{'c': case_id, 's': seq, 'b': rollups.bucket(seconds)} for case_id, seq, seconds
             in bind.execute(sa.select(spans.c.case_id, spans.c.seq, spans.c.seconds))]
    if bands:
        bind.execute(spans.update().where(spans.c.case_id == sa.bindparam('c'),
                                          spans.c.seq == sa.bindparam('s'))
                     .values(bucket=sa.bindparam('b')), bands)
    op.drop_index('ix_stage_spans_stats', table_name='stage_spans')
    op.create_index('ix_stage_spans_stats', 'stage_spans',
                    ['case_id', 'stage', 'bucket', 'seconds'])

    def key() -> list[sa.Column]:
        return [sa.Column('month', sa.String(length=7), nullable=False),
                sa.Column('scope', sa.String(length=16), nullable=False),
                sa.Column('scope_value', sa.String(length=64), nullable=False),
                sa.Column('dim', sa.String(length=16), nullable=False),
                sa.Column('value', sa.String(length=64), nullable=False)]

    op.create_table('stats_rollup', *key(),
                    *(sa.Column(c, sa.Integer(), nullable=False) for c in COUNTS),
                    sa.PrimaryKeyConstraint('month', 'scope', 'scope_value', 'dim', 'value',
                                            name='pk_stats_rollup'),
                    sqlite_with_rowid=False)
    op.create_table('stage_time_rollup', *key(),
                    sa.Column('stage', sa.String(length=24), nullable=False),
                    sa.Column('bucket', sa.Integer(), nullable=False),
                    sa.Column('spans', sa.Integer(), nullable=False),
                    sa.Column('micros', sa.BigInteger(), nullable=False),
                    sa.Column('min_seconds', sa.Float(), nullable=True),
                    sa.Column('max_seconds', sa.Float(), nullable=True),
                    sa.PrimaryKeyConstraint('month', 'scope', 'scope_value', 'dim', 'value',
                                            'stage', 'bucket', name='pk_stage_time_rollup'),
                    sqlite_with_rowid=False)
    rollups.recompute(bind)


def downgrade() -> None:
    op.drop_table('stage_time_rollup')
    op.drop_table('stats_rollup')
    op.drop_index('ix_stage_spans_stats', table_name='stage_spans')
    with op.batch_alter_table('stage_spans') as batch:
        batch.drop_column('bucket')
    op.create_index('ix_stage_spans_stats', 'stage_spans', ['case_id', 'stage', 'seconds'])
    op.drop_index('ix_cases_stats_cohort', table_name='cases')
    with op.batch_alter_table('cases') as batch:
        for column in STEP_COUNTERS:
            batch.drop_column(column)
    op.create_index('ix_cases_stats_cohort', 'cases', OLD_COHORT)
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('state', sa.JSON(), nullable=True))
        batch.drop_index('ix_cases_overdue_district_team')
        batch.create_index('ix_cases_overdue', ['overdue'])
        batch.drop_index('ix_cases_team_stage')
        batch.create_index('ix_cases_team', ['team'])
        batch.drop_index('ix_cases_district_stage')
        batch.create_index('ix_cases_district', ['district'])
    op.execute("UPDATE cases SET state = (SELECT s.state FROM case_states s "
               "WHERE s.case_id = cases.case_id)")
    op.drop_table('case_states')
