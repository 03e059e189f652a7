"""cases (updated_at, case_id): the case list sorted by last update, a page at a time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Keyset pages walk (sort key, case_id); created_at and due_at already have indexes.
    op.create_index('ix_cases_updated_at_case_id', 'cases', ['updated_at', 'case_id'])


def downgrade() -> None:
    op.drop_index('ix_cases_updated_at_case_id', table_name='cases')
