"""The dashboard's finished-run counts answered from the index alone.

Counting a window's Failed runs through (state, start_time) still fetched every matching heap row
to check the tenant: 80 ms for 9,500 Failed runs at 1,000,000 runs. With tenant_id in the index the
count is an index-only scan (2.5 ms once vacuum has set the visibility map). The new index serves
every query the old one did (same leading columns), so the old one goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:40:00.000000
"""

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_flow_run_state_run_start_time_tenant', 'flow_run', ['state', 'start_time', 'tenant_id'], unique=False)
    op.drop_index('ix_flow_run_state_run_start_time', table_name='flow_run')


def downgrade() -> None:
    op.create_index('ix_flow_run_state_run_start_time', 'flow_run', ['state', 'start_time'], unique=False)
    op.drop_index('ix_flow_run_state_run_start_time_tenant', table_name='flow_run')
