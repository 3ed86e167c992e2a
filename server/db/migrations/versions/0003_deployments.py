"""Deployments: the `deployment` table, and `deployment_id` and `tags` on `flow_run`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deployment',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('flow_group_id', sa.UUID(), nullable=False),
    sa.Column('flow_id', sa.UUID(), nullable=True),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('tags', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('labels', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('schedule', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('is_schedule_active', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_group_id'], ['flow_group.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_id'], ['flow.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flow_group_id', 'name', name='deployment_flow_group_id_name_key')
    )
    op.create_index(op.f('ix_deployment_flow_group_id'), 'deployment', ['flow_group_id'], unique=False)
    op.create_index(op.f('ix_deployment_flow_id'), 'deployment', ['flow_id'], unique=False)
    op.create_index(op.f('ix_deployment_tenant_id'), 'deployment', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_deployment_updated'), 'deployment', ['updated'], unique=False)
    op.execute(
        "CREATE TRIGGER deployment_updated BEFORE UPDATE ON deployment "
        "FOR EACH ROW EXECUTE FUNCTION set_updated_timestamp()"
    )
    op.add_column('flow_run', sa.Column('deployment_id', sa.UUID(), nullable=True))
    op.add_column('flow_run', sa.Column('tags', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.create_index(op.f('ix_flow_run_deployment_id'), 'flow_run', ['deployment_id'], unique=False)
    op.create_unique_constraint('flow_run_deployment_id_idempotency_key_key', 'flow_run', ['deployment_id', 'idempotency_key'])
    op.create_foreign_key('flow_run_deployment_id_fkey', 'flow_run', 'deployment', ['deployment_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint('flow_run_deployment_id_fkey', 'flow_run', type_='foreignkey')
    op.drop_constraint('flow_run_deployment_id_idempotency_key_key', 'flow_run', type_='unique')
    op.drop_index(op.f('ix_flow_run_deployment_id'), table_name='flow_run')
    op.drop_column('flow_run', 'tags')
    op.drop_column('flow_run', 'deployment_id')
    op.drop_table('deployment')
