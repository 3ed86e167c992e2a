"""Indexes for the web UI's dashboard: runs by state and start time, and by state and due time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:10:00.000000
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_flow_run_state_run_start_time', 'flow_run', ['state', 'start_time'], unique=False)
    op.create_index('ix_flow_run_state_scheduled_start_time', 'flow_run', ['state', 'scheduled_start_time'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_flow_run_state_scheduled_start_time', table_name='flow_run')
    op.drop_index('ix_flow_run_state_run_start_time', table_name='flow_run')
