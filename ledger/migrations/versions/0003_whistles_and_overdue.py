"""whistles, whistle_summons, whistle_events; cases.overdue and cases.due_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('cases') as batch:
        batch.add_column(sa.Column('overdue', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_cases_overdue', ['overdue'])
        batch.create_index('ix_cases_due_at', ['due_at'])

    op.create_table('whistles',
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('whistle_no', sa.Integer(), nullable=False),
    sa.Column('workflow_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('blown_by', sa.String(length=200), nullable=False),
    sa.Column('blown_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('case_id', 'whistle_no', name=op.f('pk_whistles'))
    )
    op.create_index('ix_whistles_blown_at', 'whistles', ['blown_at'])

    op.create_table('whistle_summons',
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('whistle_no', sa.Integer(), nullable=False),
    sa.Column('department', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('summoned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('case_id', 'whistle_no', 'department',
                            name=op.f('pk_whistle_summons'))
    )
    op.create_index('ix_whistle_summons_department', 'whistle_summons', ['department'])
    op.create_index('ix_whistle_summons_summoned_at', 'whistle_summons', ['summoned_at'])

    op.create_table('whistle_events',
    sa.Column('id', EVENT_ID, autoincrement=True, nullable=False),
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('whistle_no', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('actor', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_whistle_events')),
    sa.UniqueConstraint('case_id', 'whistle_no', 'seq',
                        name='uq_whistle_events_case_id_whistle_no_seq')
    )
    op.create_index('ix_whistle_events_case_id', 'whistle_events', ['case_id'])


def downgrade() -> None:
    op.drop_table('whistle_events')
    op.drop_table('whistle_summons')
    op.drop_table('whistles')
    with op.batch_alter_table('cases') as batch:
        batch.drop_index('ix_cases_due_at')
        batch.drop_index('ix_cases_overdue')
        batch.drop_column('due_at')
        batch.drop_column('overdue')
