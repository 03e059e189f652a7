"""hotline_tickets and hotline_follow_ups: the 12345 work orders behind each case (merged ones
too) and the follow-up results the platform posted

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('hotline_tickets',
    sa.Column('ticket_no', sa.String(length=100), nullable=False),
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('merged', sa.Boolean(), nullable=False),
    sa.Column('caller_name', sa.String(length=100), nullable=True),
    sa.Column('caller_phone', sa.String(length=20), nullable=True),
    sa.Column('call_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('appeal_type', sa.String(length=20), nullable=False),
    sa.Column('hotline_code', sa.String(length=32), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ticket_no', name=op.f('pk_hotline_tickets'))
    )
    with op.batch_alter_table('hotline_tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hotline_tickets_case_id'), ['case_id'], unique=False)

    op.create_table('hotline_follow_ups',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('ticket_no', sa.String(length=100), nullable=False),
    sa.Column('request_key', sa.String(length=200), nullable=False),
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('rating', sa.String(length=24), nullable=False),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('called_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stage', sa.String(length=24), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hotline_follow_ups')),
    sa.UniqueConstraint('ticket_no', 'request_key',
                        name='uq_hotline_follow_ups_ticket_no_request_key')
    )
    with op.batch_alter_table('hotline_follow_ups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hotline_follow_ups_case_id'), ['case_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hotline_follow_ups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hotline_follow_ups_case_id'))
    op.drop_table('hotline_follow_ups')
    with op.batch_alter_table('hotline_tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hotline_tickets_case_id'))
    op.drop_table('hotline_tickets')
