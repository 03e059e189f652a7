"""case_starts: cases the API recorded whose workflows are not known to have started

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_starts',
    sa.Column('case_id', sa.String(length=128), nullable=False),
    sa.Column('intake', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_case_starts'))
    )


def downgrade() -> None:
    op.drop_table('case_starts')
