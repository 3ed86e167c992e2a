"""Cloud-hook deliveries: the outbox that state changes write and the delivery service drains.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-14 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cloud_hook_delivery',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('cloud_hook_id', sa.UUID(), nullable=False),
    sa.Column('flow_run_id', sa.UUID(), nullable=True),
    sa.Column('state', sa.String(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.String(), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_error', sa.String(), nullable=True),
    sa.Column('last_http_status', sa.Integer(), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name='ck_cloud_hook_delivery_status'),
    sa.ForeignKeyConstraint(['cloud_hook_id'], ['cloud_hook.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_run_id'], ['flow_run.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_cloud_hook_delivery_cloud_hook_id'), 'cloud_hook_delivery', ['cloud_hook_id'], unique=False)
    op.create_index(op.f('ix_cloud_hook_delivery_flow_run_id'), 'cloud_hook_delivery', ['flow_run_id'], unique=False)
    op.create_index(op.f('ix_cloud_hook_delivery_tenant_id'), 'cloud_hook_delivery', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_cloud_hook_delivery_updated'), 'cloud_hook_delivery', ['updated'], unique=False)
    # The claim query: pending rows by due time, and nothing else (delivered rows pile up).
    op.create_index('ix_cloud_hook_delivery_due', 'cloud_hook_delivery', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status = 'pending'"))
    # The state-change path looks for a tenant's active hooks on every flow-run state.
    op.create_index('ix_cloud_hook_tenant_id_active', 'cloud_hook', ['tenant_id'], unique=False,
                    postgresql_where=sa.text('active'))
    op.execute(
        "CREATE TRIGGER cloud_hook_delivery_updated BEFORE UPDATE ON cloud_hook_delivery "
        "FOR EACH ROW EXECUTE FUNCTION set_updated_timestamp()"
    )


def downgrade() -> None:
    op.drop_index('ix_cloud_hook_tenant_id_active', table_name='cloud_hook')
    op.drop_table('cloud_hook_delivery')
