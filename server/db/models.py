"""SQLAlchemy models: the Prefect Server 1.x data model, table for table.

Table and column names match Prefect Server's, because the Hasura-style read API exposes them
verbatim and the Prefect client reads them by name. The generic read layer
(`headwater.server.graphql.hasura`) is driven by this metadata and by `RELATIONSHIPS` below, so a column
added here appears in the API without further code.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Interval,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import DateTime

NOW = text("now()")
CLOCK_NOW = text("clock_timestamp()")
# The Scheduled family (headwater.server.domain.states.SCHEDULED_STATES, sorted; a test keeps
# them equal): the states a run waits in for an agent, and the predicate of ix_flow_run_queue.
QUEUE_WAITING_STATES = ("Paused", "Queued", "Resume", "Retrying", "Scheduled")


class Base(DeclarativeBase):
    """Every table has a uuid primary key and `created` / `updated` timestamps."""

    type_annotation_map = {
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        Any: JSONB,
        uuid.UUID: UUID(as_uuid=True),
        dt.datetime: DateTime(timezone=True),
        dt.timedelta: Interval,
    }

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    created: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    # Kept current by the `set_updated_timestamp` trigger (see the initial migration).
    updated: Mapped[dt.datetime] = mapped_column(server_default=NOW, index=True)


def _tenant_fk(nullable: bool = True) -> Mapped[uuid.UUID | None]:
    return mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), nullable=nullable, index=True)


class Tenant(Base):
    __tablename__ = "tenant"
    name: Mapped[str] = mapped_column(String(255))
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    info: Mapped[dict[str, Any] | None]
    settings: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))


class Project(Base):
    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="project_tenant_id_name_key"),)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    name: Mapped[str]
    description: Mapped[str | None]


class FlowGroup(Base):
    """All versions of one flow. Its `name` is the version group id."""

    __tablename__ = "flow_group"
    __table_args__ = (Index("ix_flow_group_tenant_id_name", "tenant_id", "name"),)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    name: Mapped[str | None]
    labels: Mapped[list[Any] | None]
    schedule: Mapped[dict[str, Any] | None]
    settings: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    default_parameters: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    run_config: Mapped[dict[str, Any] | None]
    description: Mapped[str | None]


class Flow(Base):
    __tablename__ = "flow"
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    flow_group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_group.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int | None] = mapped_column(index=True)
    version_group_id: Mapped[str | None] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(index=True)
    description: Mapped[str | None]
    environment: Mapped[dict[str, Any] | None]
    run_config: Mapped[dict[str, Any] | None]
    parameters: Mapped[list[Any] | None] = mapped_column(server_default=text("'[]'::jsonb"))
    archived: Mapped[bool] = mapped_column(server_default=text("false"), index=True)
    storage: Mapped[dict[str, Any] | None]
    core_version: Mapped[str | None]
    # Prefect Server never used this column; the client reads it and expects an object.
    settings: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    # Megabytes for a big flow and read by registration alone: not loaded with every Flow
    # (decoding it blocked the event loop for ~0.5 s per load of a 10,000-task flow).
    serialized_flow: Mapped[dict[str, Any] | None] = mapped_column(deferred=True, deferred_raiseload=True)
    schedule: Mapped[dict[str, Any] | None]
    is_schedule_active: Mapped[bool] = mapped_column(server_default=text("false"))


class Task(Base):
    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("flow_id", "slug", name="task_flow_id_slug_key"),)
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    flow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flow.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None]
    slug: Mapped[str | None]
    description: Mapped[str | None]
    type: Mapped[str | None]
    max_retries: Mapped[int | None]
    retry_delay: Mapped[dt.timedelta | None]
    trigger: Mapped[str | None]
    mapped: Mapped[bool] = mapped_column(server_default=text("false"))
    auto_generated: Mapped[bool] = mapped_column(server_default=text("false"))
    cache_key: Mapped[str | None]
    is_root_task: Mapped[bool] = mapped_column(server_default=text("false"))
    is_terminal_task: Mapped[bool] = mapped_column(server_default=text("false"))
    is_reference_task: Mapped[bool] = mapped_column(server_default=text("false"))
    tags: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))


class Edge(Base):
    __tablename__ = "edge"
    __table_args__ = (
        UniqueConstraint(
            "flow_id", "downstream_task_id", "upstream_task_id", name="edge_flow_id_task_ids_key"
        ),
    )
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    flow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flow.id", ondelete="CASCADE"), index=True)
    upstream_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task.id", ondelete="CASCADE"), index=True
    )
    downstream_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str | None]
    mapped: Mapped[bool] = mapped_column(server_default=text("false"))


class Agent(Base):
    __tablename__ = "agent"
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    agent_config_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agent_config.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str | None]
    type: Mapped[str | None]
    core_version: Mapped[str | None]
    labels: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    last_queried: Mapped[dt.datetime | None] = mapped_column(server_default=NOW)


class AgentConfig(Base):
    __tablename__ = "agent_config"
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    name: Mapped[str | None]
    settings: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))


class FlowRun(Base):
    __tablename__ = "flow_run"
    __table_args__ = (
        UniqueConstraint("idempotency_key", "flow_id", name="ix_flow_run_idempotency_key_unique"),
        # A deployment's scheduled run exists once per time, whichever version of the flow it ran.
        UniqueConstraint(
            "deployment_id", "idempotency_key", name="flow_run_deployment_id_idempotency_key_key"
        ),
        Index("ix_flow_run_flow_id_scheduled_start_time", "flow_id", "scheduled_start_time"),
        Index("ix_flow_run_state_start_time", "state", "state_start_time"),
        # The dashboard's counts and lists by state over a window: finished runs by when they
        # started (with the tenant, so a count is an index-only scan), waiting runs (late,
        # upcoming; the agents' queue too) by when they are due.
        Index("ix_flow_run_state_run_start_time_tenant", "state", "start_time", "tenant_id"),
        Index("ix_flow_run_state_scheduled_start_time", "state", "scheduled_start_time"),
        # The agents' queue poll: waiting runs of a tenant in due order, and nothing else, so a
        # poll reads its 25 due runs off the front of a small index whatever the table holds.
        Index(
            "ix_flow_run_queue", "tenant_id", "state_start_time",
            postgresql_where=text(f"state IN ({', '.join(repr(s) for s in QUEUE_WAITING_STATES)})"),
        ),
    )
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    flow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flow.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agent.id", ondelete="SET NULL"), index=True
    )
    parameters: Mapped[dict[str, Any] | None] = mapped_column(server_default=text("'{}'::jsonb"))
    context: Mapped[dict[str, Any] | None]
    labels: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    run_config: Mapped[dict[str, Any] | None]
    name: Mapped[str | None]
    idempotency_key: Mapped[str | None]
    scheduled_start_time: Mapped[dt.datetime] = mapped_column(server_default=CLOCK_NOW, index=True)
    auto_scheduled: Mapped[bool] = mapped_column(server_default=text("false"))
    heartbeat: Mapped[dt.datetime | None] = mapped_column(index=True)
    start_time: Mapped[dt.datetime | None] = mapped_column(index=True)
    end_time: Mapped[dt.datetime | None]
    times_resurrected: Mapped[int | None] = mapped_column(server_default=text("0"))
    version: Mapped[int] = mapped_column(server_default=text("0"))
    state: Mapped[str | None] = mapped_column(index=True)
    state_timestamp: Mapped[dt.datetime | None]
    state_message: Mapped[str | None]
    state_result: Mapped[Any | None]
    state_start_time: Mapped[dt.datetime | None]
    serialized_state: Mapped[dict[str, Any] | None]
    # headwater's addition: the deployment the run was created from (kept as NULL once the
    # deployment is deleted) and the deployment's tags.
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deployment.id", ondelete="SET NULL"), index=True
    )
    tags: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))


class Deployment(Base):
    """A named, parameterised, scheduled entry point to a flow group (headwater's addition).

    It runs the group's active version unless `flow_id` pins one. `schedule` is a list of
    schedule objects (server/domain/deployment_schedules.py); [] means none. `labels`, when not
    NULL, replace the flow's labels on its runs.
    """

    __tablename__ = "deployment"
    __table_args__ = (UniqueConstraint("flow_group_id", "name", name="deployment_flow_group_id_name_key"),)
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    flow_group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_group.id", ondelete="CASCADE"), index=True
    )
    flow_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("flow.id", ondelete="SET NULL"), index=True)
    name: Mapped[str]
    description: Mapped[str | None]
    parameters: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    tags: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    labels: Mapped[list[Any] | None]
    schedule: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    is_schedule_active: Mapped[bool] = mapped_column(server_default=text("false"))


class FlowRunState(Base):
    __tablename__ = "flow_run_state"
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_run.id", ondelete="CASCADE"), index=True
    )
    timestamp: Mapped[dt.datetime] = mapped_column(server_default=CLOCK_NOW, index=True)
    state: Mapped[str] = mapped_column(index=True)
    message: Mapped[str | None]
    result: Mapped[Any | None]
    start_time: Mapped[dt.datetime | None]
    serialized_state: Mapped[dict[str, Any]]
    version: Mapped[int | None] = mapped_column(server_default=text("1"))


class TaskRun(Base):
    __tablename__ = "task_run"
    __table_args__ = (
        UniqueConstraint("flow_run_id", "task_id", "map_index", name="task_run_unique_identifier_key"),
    )
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_run.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("task.id", ondelete="CASCADE"), index=True)
    map_index: Mapped[int] = mapped_column(server_default=text("-1"))
    name: Mapped[str | None]
    version: Mapped[int] = mapped_column(server_default=text("0"))
    heartbeat: Mapped[dt.datetime | None] = mapped_column(index=True)
    start_time: Mapped[dt.datetime | None]
    end_time: Mapped[dt.datetime | None]
    cache_key: Mapped[str | None] = mapped_column(index=True)
    state: Mapped[str | None] = mapped_column(index=True)
    state_timestamp: Mapped[dt.datetime | None]
    state_message: Mapped[str | None]
    state_result: Mapped[Any | None]
    state_start_time: Mapped[dt.datetime | None]
    serialized_state: Mapped[dict[str, Any] | None]


class TaskRunState(Base):
    __tablename__ = "task_run_state"
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    task_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task_run.id", ondelete="CASCADE"), index=True
    )
    timestamp: Mapped[dt.datetime] = mapped_column(server_default=CLOCK_NOW, index=True)
    state: Mapped[str] = mapped_column(index=True)
    message: Mapped[str | None]
    result: Mapped[Any | None]
    start_time: Mapped[dt.datetime | None]
    serialized_state: Mapped[dict[str, Any]]
    version: Mapped[int | None] = mapped_column(server_default=text("1"))


class Log(Base):
    __tablename__ = "log"
    __table_args__ = (Index("ix_log_flow_run_id_timestamp", "flow_run_id", "timestamp"),)
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("flow_run.id", ondelete="CASCADE"), index=True
    )
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("task_run.id", ondelete="CASCADE"), index=True
    )
    timestamp: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    name: Mapped[str | None]
    level: Mapped[str | None]
    message: Mapped[str | None]
    info: Mapped[Any | None]
    is_loaded_from_archive: Mapped[bool | None]


class TaskRunArtifact(Base):
    __tablename__ = "task_run_artifact"
    tenant_id: Mapped[uuid.UUID | None] = _tenant_fk()
    task_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task_run.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str]
    data: Mapped[Any] = mapped_column(server_default=text("'{}'::jsonb"))


class CloudHook(Base):
    __tablename__ = "cloud_hook"
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    name: Mapped[str | None]
    type: Mapped[str]
    states: Mapped[list[Any] | None]
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    version_group_id: Mapped[str | None] = mapped_column(index=True)
    __table_args__ = (
        # Every flow-run state change looks for its tenant's active hooks.
        Index("ix_cloud_hook_tenant_id_active", "tenant_id", postgresql_where=text("active")),
    )


# A delivery's life: pending (due at `next_attempt_at`, or in flight until then), then delivered or failed.
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class CloudHookDelivery(Base):
    """The outbox: one row per hook and flow-run state change, written in the state change's
    transaction and sent by the delivery service (services/hook_delivery.py)."""

    __tablename__ = "cloud_hook_delivery"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="ck_cloud_hook_delivery_status"),
        Index("ix_cloud_hook_delivery_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    cloud_hook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cloud_hook.id", ondelete="CASCADE"), index=True)
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("flow_run.id", ondelete="SET NULL"), index=True)
    state: Mapped[str | None]
    # The event (Prefect Server's `FlowRunStateChange`) as it was at the state change.
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    next_attempt_at: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    last_error: Mapped[str | None]
    last_http_status: Mapped[int | None]
    delivered_at: Mapped[dt.datetime | None]


class Message(Base):
    __tablename__ = "message"
    tenant_id: Mapped[uuid.UUID] = _tenant_fk(nullable=False)
    read: Mapped[bool] = mapped_column(server_default=text("false"))
    type: Mapped[str | None]
    text: Mapped[str | None]
    content: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))


class Private(DeclarativeBase):
    """Tables the API never exposes: the Hasura-style read layer is generated from `Base` only,
    so a table here cannot leak through a query however the catalogue grows."""

    type_annotation_map = Base.type_annotation_map


# Who may call the API (server/domain/api_keys.py). Only a SHA-256 of each key is stored.
API_KEY_ROLES = ("read", "run", "admin")


class ApiKey(Private):
    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint("role IN ('read', 'run', 'admin')", name="ck_api_key_role"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=text("gen_random_uuid()"))
    name: Mapped[str] = mapped_column(unique=True)
    role: Mapped[str]
    # Hex SHA-256 of the key; the key itself is shown once, at creation, and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, not secret, so a listing can tell keys apart.
    prefix: Mapped[str]
    created: Mapped[dt.datetime] = mapped_column(server_default=NOW)
    # Updated at most once a minute per key and process (authentication is on the hot path).
    last_used: Mapped[dt.datetime | None]
    revoked: Mapped[dt.datetime | None]


@dataclass(frozen=True)
class Relationship:
    """A Hasura relationship: `name` on `source` reaches `target` where source.local = target.remote."""

    source: str
    name: str
    target: str
    local_column: str
    remote_column: str
    many: bool


def _obj(source: str, name: str, target: str, column: str) -> Relationship:
    return Relationship(source, name, target, column, "id", many=False)


def _arr(source: str, name: str, target: str, column: str) -> Relationship:
    return Relationship(source, name, target, "id", column, many=True)


# The relationship names and directions of Prefect Server's Hasura metadata.
RELATIONSHIPS: tuple[Relationship, ...] = (
    _obj("agent", "agent_config", "agent_config", "agent_config_id"),
    _arr("agent", "flow_runs", "flow_run", "agent_id"),
    _arr("agent_config", "agents", "agent", "agent_config_id"),
    _obj("edge", "downstream_task", "task", "downstream_task_id"),
    _obj("edge", "flow", "flow", "flow_id"),
    _obj("edge", "upstream_task", "task", "upstream_task_id"),
    _obj("flow", "flow_group", "flow_group", "flow_group_id"),
    _obj("flow", "project", "project", "project_id"),
    _obj("flow", "tenant", "tenant", "tenant_id"),
    _arr("flow", "edges", "edge", "flow_id"),
    _arr("flow", "flow_runs", "flow_run", "flow_id"),
    _arr("flow", "tasks", "task", "flow_id"),
    _obj("flow_group", "tenant", "tenant", "tenant_id"),
    _arr("flow_group", "flows", "flow", "flow_group_id"),
    _arr("flow_group", "deployments", "deployment", "flow_group_id"),
    _obj("deployment", "flow_group", "flow_group", "flow_group_id"),
    _obj("deployment", "flow", "flow", "flow_id"),
    _obj("deployment", "tenant", "tenant", "tenant_id"),
    _arr("deployment", "flow_runs", "flow_run", "deployment_id"),
    _obj("flow_run", "deployment", "deployment", "deployment_id"),
    _obj("flow_run", "agent", "agent", "agent_id"),
    _obj("flow_run", "flow", "flow", "flow_id"),
    _obj("flow_run", "tenant", "tenant", "tenant_id"),
    _arr("flow_run", "logs", "log", "flow_run_id"),
    _arr("flow_run", "states", "flow_run_state", "flow_run_id"),
    _arr("flow_run", "task_runs", "task_run", "flow_run_id"),
    _obj("flow_run_state", "flow_run", "flow_run", "flow_run_id"),
    _obj("project", "tenant", "tenant", "tenant_id"),
    _arr("project", "flows", "flow", "project_id"),
    _obj("task", "flow", "flow", "flow_id"),
    _arr("task", "downstream_edges", "edge", "upstream_task_id"),
    _arr("task", "task_runs", "task_run", "task_id"),
    _arr("task", "upstream_edges", "edge", "downstream_task_id"),
    _obj("task_run", "flow_run", "flow_run", "flow_run_id"),
    _obj("task_run", "task", "task", "task_id"),
    _obj("task_run", "tenant", "tenant", "tenant_id"),
    _arr("task_run", "logs", "log", "task_run_id"),
    _arr("task_run", "states", "task_run_state", "task_run_id"),
    _obj("task_run_artifact", "task_run", "task_run", "task_run_id"),
    _obj("task_run_state", "task_run", "task_run", "task_run_id"),
    _arr("tenant", "flow_groups", "flow_group", "tenant_id"),
    _arr("tenant", "flows", "flow", "tenant_id"),
    _arr("tenant", "projects", "project", "tenant_id"),
    # headwater's: a hook's deliveries, so an operator can see why a notification never came.
    _arr("cloud_hook", "deliveries", "cloud_hook_delivery", "cloud_hook_id"),
    _obj("cloud_hook_delivery", "cloud_hook", "cloud_hook", "cloud_hook_id"),
    _obj("cloud_hook_delivery", "flow_run", "flow_run", "flow_run_id"),
)
