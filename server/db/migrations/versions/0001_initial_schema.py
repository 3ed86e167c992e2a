"""Initial schema: the Prefect Server 1.x tables, indexes and the `updated` trigger.

Tables and indexes were generated from server/db/models.py with `alembic revision --autogenerate`;
the trigger that keeps `updated` current is written by hand at the end of `upgrade()`.

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 20:16:13.279499
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "tenant", "project", "flow_group", "flow", "task", "edge", "agent_config", "agent", "flow_run",
    "flow_run_state", "task_run", "task_run_state", "log", "task_run_artifact", "cloud_hook", "message",
)


def _create_updated_triggers() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION set_updated_timestamp() RETURNS trigger AS $$
        BEGIN
            NEW.updated = now();
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_updated BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_timestamp()"
        )


def upgrade() -> None:
    op.create_table('tenant',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('slug', sa.String(length=255), nullable=False),
    sa.Column('info', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slug')
    )
    op.create_index(op.f('ix_tenant_updated'), 'tenant', ['updated'], unique=False)
    op.create_table('agent_config',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agent_config_tenant_id'), 'agent_config', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_agent_config_updated'), 'agent_config', ['updated'], unique=False)
    op.create_table('cloud_hook',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('type', sa.String(), nullable=False),
    sa.Column('states', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('config', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('version_group_id', sa.String(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_cloud_hook_tenant_id'), 'cloud_hook', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_cloud_hook_updated'), 'cloud_hook', ['updated'], unique=False)
    op.create_index(op.f('ix_cloud_hook_version_group_id'), 'cloud_hook', ['version_group_id'], unique=False)
    op.create_table('flow_group',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('labels', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('schedule', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('default_parameters', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('run_config', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_flow_group_tenant_id'), 'flow_group', ['tenant_id'], unique=False)
    op.create_index('ix_flow_group_tenant_id_name', 'flow_group', ['tenant_id', 'name'], unique=False)
    op.create_index(op.f('ix_flow_group_updated'), 'flow_group', ['updated'], unique=False)
    op.create_table('message',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('read', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('type', sa.String(), nullable=True),
    sa.Column('text', sa.String(), nullable=True),
    sa.Column('content', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_message_tenant_id'), 'message', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_message_updated'), 'message', ['updated'], unique=False)
    op.create_table('project',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'name', name='project_tenant_id_name_key')
    )
    op.create_index(op.f('ix_project_tenant_id'), 'project', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_project_updated'), 'project', ['updated'], unique=False)
    op.create_table('agent',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('agent_config_id', sa.UUID(), nullable=True),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('type', sa.String(), nullable=True),
    sa.Column('core_version', sa.String(), nullable=True),
    sa.Column('labels', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('last_queried', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['agent_config_id'], ['agent_config.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agent_agent_config_id'), 'agent', ['agent_config_id'], unique=False)
    op.create_index(op.f('ix_agent_tenant_id'), 'agent', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_agent_updated'), 'agent', ['updated'], unique=False)
    op.create_table('flow',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('project_id', sa.UUID(), nullable=False),
    sa.Column('flow_group_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('version_group_id', sa.String(), nullable=True),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('environment', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('run_config', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=True),
    sa.Column('archived', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('storage', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('core_version', sa.String(), nullable=True),
    sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('serialized_flow', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('schedule', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('is_schedule_active', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_group_id'], ['flow_group.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_flow_archived'), 'flow', ['archived'], unique=False)
    op.create_index(op.f('ix_flow_flow_group_id'), 'flow', ['flow_group_id'], unique=False)
    op.create_index(op.f('ix_flow_name'), 'flow', ['name'], unique=False)
    op.create_index(op.f('ix_flow_project_id'), 'flow', ['project_id'], unique=False)
    op.create_index(op.f('ix_flow_tenant_id'), 'flow', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_flow_updated'), 'flow', ['updated'], unique=False)
    op.create_index(op.f('ix_flow_version'), 'flow', ['version'], unique=False)
    op.create_index(op.f('ix_flow_version_group_id'), 'flow', ['version_group_id'], unique=False)
    op.create_table('flow_run',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('flow_id', sa.UUID(), nullable=False),
    sa.Column('agent_id', sa.UUID(), nullable=True),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=True),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('labels', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('run_config', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('idempotency_key', sa.String(), nullable=True),
    sa.Column('scheduled_start_time', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('auto_scheduled', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('heartbeat', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('times_resurrected', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('state', sa.String(), nullable=True),
    sa.Column('state_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state_message', sa.String(), nullable=True),
    sa.Column('state_result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('state_start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('serialized_state', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agent.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['flow_id'], ['flow.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key', 'flow_id', name='ix_flow_run_idempotency_key_unique')
    )
    op.create_index(op.f('ix_flow_run_agent_id'), 'flow_run', ['agent_id'], unique=False)
    op.create_index(op.f('ix_flow_run_flow_id'), 'flow_run', ['flow_id'], unique=False)
    op.create_index('ix_flow_run_flow_id_scheduled_start_time', 'flow_run', ['flow_id', 'scheduled_start_time'], unique=False)
    op.create_index(op.f('ix_flow_run_heartbeat'), 'flow_run', ['heartbeat'], unique=False)
    op.create_index(op.f('ix_flow_run_scheduled_start_time'), 'flow_run', ['scheduled_start_time'], unique=False)
    op.create_index(op.f('ix_flow_run_start_time'), 'flow_run', ['start_time'], unique=False)
    op.create_index(op.f('ix_flow_run_state'), 'flow_run', ['state'], unique=False)
    op.create_index('ix_flow_run_state_start_time', 'flow_run', ['state', 'state_start_time'], unique=False)
    op.create_index(op.f('ix_flow_run_tenant_id'), 'flow_run', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_flow_run_updated'), 'flow_run', ['updated'], unique=False)
    op.create_table('task',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('flow_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('slug', sa.String(), nullable=True),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('type', sa.String(), nullable=True),
    sa.Column('max_retries', sa.Integer(), nullable=True),
    sa.Column('retry_delay', sa.Interval(), nullable=True),
    sa.Column('trigger', sa.String(), nullable=True),
    sa.Column('mapped', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('auto_generated', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('cache_key', sa.String(), nullable=True),
    sa.Column('is_root_task', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_terminal_task', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('is_reference_task', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('tags', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_id'], ['flow.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flow_id', 'slug', name='task_flow_id_slug_key')
    )
    op.create_index(op.f('ix_task_flow_id'), 'task', ['flow_id'], unique=False)
    op.create_index(op.f('ix_task_tenant_id'), 'task', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_task_updated'), 'task', ['updated'], unique=False)
    op.create_table('edge',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('flow_id', sa.UUID(), nullable=False),
    sa.Column('upstream_task_id', sa.UUID(), nullable=False),
    sa.Column('downstream_task_id', sa.UUID(), nullable=False),
    sa.Column('key', sa.String(), nullable=True),
    sa.Column('mapped', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['downstream_task_id'], ['task.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_id'], ['flow.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['upstream_task_id'], ['task.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flow_id', 'downstream_task_id', 'upstream_task_id', name='edge_flow_id_task_ids_key')
    )
    op.create_index(op.f('ix_edge_downstream_task_id'), 'edge', ['downstream_task_id'], unique=False)
    op.create_index(op.f('ix_edge_flow_id'), 'edge', ['flow_id'], unique=False)
    op.create_index(op.f('ix_edge_tenant_id'), 'edge', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_edge_updated'), 'edge', ['updated'], unique=False)
    op.create_index(op.f('ix_edge_upstream_task_id'), 'edge', ['upstream_task_id'], unique=False)
    op.create_table('flow_run_state',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('flow_run_id', sa.UUID(), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('message', sa.String(), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('serialized_state', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_run_id'], ['flow_run.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_flow_run_state_flow_run_id'), 'flow_run_state', ['flow_run_id'], unique=False)
    op.create_index(op.f('ix_flow_run_state_state'), 'flow_run_state', ['state'], unique=False)
    op.create_index(op.f('ix_flow_run_state_tenant_id'), 'flow_run_state', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_flow_run_state_timestamp'), 'flow_run_state', ['timestamp'], unique=False)
    op.create_index(op.f('ix_flow_run_state_updated'), 'flow_run_state', ['updated'], unique=False)
    op.create_table('task_run',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('flow_run_id', sa.UUID(), nullable=False),
    sa.Column('task_id', sa.UUID(), nullable=False),
    sa.Column('map_index', sa.Integer(), server_default=sa.text('-1'), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('version', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('heartbeat', sa.DateTime(timezone=True), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cache_key', sa.String(), nullable=True),
    sa.Column('state', sa.String(), nullable=True),
    sa.Column('state_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state_message', sa.String(), nullable=True),
    sa.Column('state_result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('state_start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('serialized_state', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_run_id'], ['flow_run.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['task.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flow_run_id', 'task_id', 'map_index', name='task_run_unique_identifier_key')
    )
    op.create_index(op.f('ix_task_run_cache_key'), 'task_run', ['cache_key'], unique=False)
    op.create_index(op.f('ix_task_run_flow_run_id'), 'task_run', ['flow_run_id'], unique=False)
    op.create_index(op.f('ix_task_run_heartbeat'), 'task_run', ['heartbeat'], unique=False)
    op.create_index(op.f('ix_task_run_state'), 'task_run', ['state'], unique=False)
    op.create_index(op.f('ix_task_run_task_id'), 'task_run', ['task_id'], unique=False)
    op.create_index(op.f('ix_task_run_tenant_id'), 'task_run', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_task_run_updated'), 'task_run', ['updated'], unique=False)
    op.create_table('log',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('flow_run_id', sa.UUID(), nullable=True),
    sa.Column('task_run_id', sa.UUID(), nullable=True),
    sa.Column('timestamp', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('name', sa.String(), nullable=True),
    sa.Column('level', sa.String(), nullable=True),
    sa.Column('message', sa.String(), nullable=True),
    sa.Column('info', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('is_loaded_from_archive', sa.Boolean(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_run_id'], ['flow_run.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_run_id'], ['task_run.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_log_flow_run_id'), 'log', ['flow_run_id'], unique=False)
    op.create_index('ix_log_flow_run_id_timestamp', 'log', ['flow_run_id', 'timestamp'], unique=False)
    op.create_index(op.f('ix_log_task_run_id'), 'log', ['task_run_id'], unique=False)
    op.create_index(op.f('ix_log_tenant_id'), 'log', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_log_updated'), 'log', ['updated'], unique=False)
    op.create_table('task_run_artifact',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('task_run_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['task_run_id'], ['task_run.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_task_run_artifact_task_run_id'), 'task_run_artifact', ['task_run_id'], unique=False)
    op.create_index(op.f('ix_task_run_artifact_tenant_id'), 'task_run_artifact', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_task_run_artifact_updated'), 'task_run_artifact', ['updated'], unique=False)
    op.create_table('task_run_state',
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('task_run_id', sa.UUID(), nullable=False),
    sa.Column('timestamp', sa.DateTime(timezone=True), server_default=sa.text('clock_timestamp()'), nullable=False),
    sa.Column('state', sa.String(), nullable=False),
    sa.Column('message', sa.String(), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True),
    sa.Column('serialized_state', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['task_run_id'], ['task_run.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_task_run_state_state'), 'task_run_state', ['state'], unique=False)
    op.create_index(op.f('ix_task_run_state_task_run_id'), 'task_run_state', ['task_run_id'], unique=False)
    op.create_index(op.f('ix_task_run_state_tenant_id'), 'task_run_state', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_task_run_state_timestamp'), 'task_run_state', ['timestamp'], unique=False)
    op.create_index(op.f('ix_task_run_state_updated'), 'task_run_state', ['updated'], unique=False)
    _create_updated_triggers()


def downgrade() -> None:
    op.drop_index(op.f('ix_task_run_state_updated'), table_name='task_run_state')
    op.drop_index(op.f('ix_task_run_state_timestamp'), table_name='task_run_state')
    op.drop_index(op.f('ix_task_run_state_tenant_id'), table_name='task_run_state')
    op.drop_index(op.f('ix_task_run_state_task_run_id'), table_name='task_run_state')
    op.drop_index(op.f('ix_task_run_state_state'), table_name='task_run_state')
    op.drop_table('task_run_state')
    op.drop_index(op.f('ix_task_run_artifact_updated'), table_name='task_run_artifact')
    op.drop_index(op.f('ix_task_run_artifact_tenant_id'), table_name='task_run_artifact')
    op.drop_index(op.f('ix_task_run_artifact_task_run_id'), table_name='task_run_artifact')
    op.drop_table('task_run_artifact')
    op.drop_index(op.f('ix_log_updated'), table_name='log')
    op.drop_index(op.f('ix_log_tenant_id'), table_name='log')
    op.drop_index(op.f('ix_log_task_run_id'), table_name='log')
    op.drop_index('ix_log_flow_run_id_timestamp', table_name='log')
    op.drop_index(op.f('ix_log_flow_run_id'), table_name='log')
    op.drop_table('log')
    op.drop_index(op.f('ix_task_run_updated'), table_name='task_run')
    op.drop_index(op.f('ix_task_run_tenant_id'), table_name='task_run')
    op.drop_index(op.f('ix_task_run_task_id'), table_name='task_run')
    op.drop_index(op.f('ix_task_run_state'), table_name='task_run')
    op.drop_index(op.f('ix_task_run_heartbeat'), table_name='task_run')
    op.drop_index(op.f('ix_task_run_flow_run_id'), table_name='task_run')
    op.drop_index(op.f('ix_task_run_cache_key'), table_name='task_run')
    op.drop_table('task_run')
    op.drop_index(op.f('ix_flow_run_state_updated'), table_name='flow_run_state')
    op.drop_index(op.f('ix_flow_run_state_timestamp'), table_name='flow_run_state')
    op.drop_index(op.f('ix_flow_run_state_tenant_id'), table_name='flow_run_state')
    op.drop_index(op.f('ix_flow_run_state_state'), table_name='flow_run_state')
    op.drop_index(op.f('ix_flow_run_state_flow_run_id'), table_name='flow_run_state')
    op.drop_table('flow_run_state')
    op.drop_index(op.f('ix_edge_upstream_task_id'), table_name='edge')
    op.drop_index(op.f('ix_edge_updated'), table_name='edge')
    op.drop_index(op.f('ix_edge_tenant_id'), table_name='edge')
    op.drop_index(op.f('ix_edge_flow_id'), table_name='edge')
    op.drop_index(op.f('ix_edge_downstream_task_id'), table_name='edge')
    op.drop_table('edge')
    op.drop_index(op.f('ix_task_updated'), table_name='task')
    op.drop_index(op.f('ix_task_tenant_id'), table_name='task')
    op.drop_index(op.f('ix_task_flow_id'), table_name='task')
    op.drop_table('task')
    op.drop_index(op.f('ix_flow_run_updated'), table_name='flow_run')
    op.drop_index(op.f('ix_flow_run_tenant_id'), table_name='flow_run')
    op.drop_index('ix_flow_run_state_start_time', table_name='flow_run')
    op.drop_index(op.f('ix_flow_run_state'), table_name='flow_run')
    op.drop_index(op.f('ix_flow_run_start_time'), table_name='flow_run')
    op.drop_index(op.f('ix_flow_run_scheduled_start_time'), table_name='flow_run')
    op.drop_index(op.f('ix_flow_run_heartbeat'), table_name='flow_run')
    op.drop_index('ix_flow_run_flow_id_scheduled_start_time', table_name='flow_run')
    op.drop_index(op.f('ix_flow_run_flow_id'), table_name='flow_run')
    op.drop_index(op.f('ix_flow_run_agent_id'), table_name='flow_run')
    op.drop_table('flow_run')
    op.drop_index(op.f('ix_flow_version_group_id'), table_name='flow')
    op.drop_index(op.f('ix_flow_version'), table_name='flow')
    op.drop_index(op.f('ix_flow_updated'), table_name='flow')
    op.drop_index(op.f('ix_flow_tenant_id'), table_name='flow')
    op.drop_index(op.f('ix_flow_project_id'), table_name='flow')
    op.drop_index(op.f('ix_flow_name'), table_name='flow')
    op.drop_index(op.f('ix_flow_flow_group_id'), table_name='flow')
    op.drop_index(op.f('ix_flow_archived'), table_name='flow')
    op.drop_table('flow')
    op.drop_index(op.f('ix_agent_updated'), table_name='agent')
    op.drop_index(op.f('ix_agent_tenant_id'), table_name='agent')
    op.drop_index(op.f('ix_agent_agent_config_id'), table_name='agent')
    op.drop_table('agent')
    op.drop_index(op.f('ix_project_updated'), table_name='project')
    op.drop_index(op.f('ix_project_tenant_id'), table_name='project')
    op.drop_table('project')
    op.drop_index(op.f('ix_message_updated'), table_name='message')
    op.drop_index(op.f('ix_message_tenant_id'), table_name='message')
    op.drop_table('message')
    op.drop_index(op.f('ix_flow_group_updated'), table_name='flow_group')
    op.drop_index('ix_flow_group_tenant_id_name', table_name='flow_group')
    op.drop_index(op.f('ix_flow_group_tenant_id'), table_name='flow_group')
    op.drop_table('flow_group')
    op.drop_index(op.f('ix_cloud_hook_version_group_id'), table_name='cloud_hook')
    op.drop_index(op.f('ix_cloud_hook_updated'), table_name='cloud_hook')
    op.drop_index(op.f('ix_cloud_hook_tenant_id'), table_name='cloud_hook')
    op.drop_table('cloud_hook')
    op.drop_index(op.f('ix_agent_config_updated'), table_name='agent_config')
    op.drop_index(op.f('ix_agent_config_tenant_id'), table_name='agent_config')
    op.drop_table('agent_config')
    op.drop_index(op.f('ix_tenant_updated'), table_name='tenant')
    op.drop_table('tenant')
    op.execute("DROP FUNCTION IF EXISTS set_updated_timestamp()")
