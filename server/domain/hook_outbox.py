"""The cloud-hook outbox: rows written with the state change, claimed and settled by the delivery service.

Prefect Server called hooks from the request, in memory, so a crash or an error lost them. Here a
flow-run state change inserts one `cloud_hook_delivery` row per matching hook in the same
transaction (one INSERT ... SELECT inside the state change's own statement, so a state change
costs no extra round trip and never waits on a receiver). The delivery service then:

1. claims due rows in a short transaction (`FOR UPDATE SKIP LOCKED`, so replicas never take the
   same row), counting the attempt and moving `next_attempt_at` a lease ahead: a replica that dies
   mid-send leaves the row to be retried once the lease has passed;
2. sends them with no transaction open;
3. settles each one: delivered, or due again after an exponential backoff, or failed after the
   last attempt. A settle applies only while the row is still the one it claimed (same
   `attempts`, still pending), and the lease is longer than a send may take, so a row is sent
   by one replica at a time and a delivered row is never sent again.

The payload is Prefect Server's `FlowRunStateChange` event, built in SQL at the state change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import DateTime, Integer, String, bindparam, event, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


def event_sql(run: str, state: str, flow: str, tenant: str) -> str:
    """The event of one state change, as a jsonb expression over the run, state, flow and tenant rows."""
    flow_object = (
        f"jsonb_build_object('id', {flow}.id, 'name', {flow}.name, 'flow_group_id', {flow}.flow_group_id, "
        f"'version_group_id', {flow}.version_group_id)"
    )
    tenant_object = f"jsonb_build_object('id', {tenant}.id, 'slug', {tenant}.slug)"
    return f"""jsonb_build_object(
        'id', gen_random_uuid(),
        'timestamp', statement_timestamp(),
        'type', 'FlowRunStateChange',
        'flow_run', jsonb_build_object(
            'id', {run}.id, 'name', {run}.name, 'state', {run}.state, 'version', {run}.version,
            'flow_id', {run}.flow_id, 'tenant_id', {run}.tenant_id, 'labels', {run}.labels,
            'parameters', {run}.parameters, 'scheduled_start_time', {run}.scheduled_start_time,
            'is_test_event', false, 'flow', {flow_object}, 'tenant', {tenant_object}),
        'state', jsonb_build_object(
            'id', {state}.id, 'flow_run_id', {state}.flow_run_id, 'tenant_id', {state}.tenant_id,
            'timestamp', {state}.timestamp, 'state', {state}.state, 'message', {state}.message,
            'result', {state}.result, 'start_time', {state}.start_time,
            'serialized_state', {state}.serialized_state, 'version', {state}.version),
        'flow', {flow_object},
        'tenant', {tenant_object},
        'is_test_event', false)"""


def enqueue_ctes(runs: str, states: str) -> str:
    """CTEs `events` and `hooks` that queue the deliveries of the (run, state) rows of `runs` and
    `states` (CTE names or tables; states joined by run id): one event per state change, one row
    per matching hook. A hook matches when it belongs to the run's tenant, is active, lists the
    state's name (upper-cased, exact: Prefect Server's rule) and has no version group or the
    run's flow's. With no active hook in the tenant no event is built at all."""
    return f"""
        events AS (
            SELECT r.id AS flow_run_id, r.tenant_id, r.state, f.version_group_id,
                   {event_sql('r', 's', 'f', 't')} AS payload
            FROM {runs} r
            JOIN {states} s ON s.flow_run_id = r.id
            JOIN flow f ON f.id = r.flow_id
            JOIN tenant t ON t.id = r.tenant_id
            WHERE EXISTS (SELECT 1 FROM cloud_hook h WHERE h.tenant_id = r.tenant_id AND h.active)
        ), hooks AS (
            INSERT INTO cloud_hook_delivery (tenant_id, cloud_hook_id, flow_run_id, state, payload)
            SELECT e.tenant_id, h.id, e.flow_run_id, e.state, e.payload
            FROM events e
            JOIN cloud_hook h ON h.tenant_id = e.tenant_id AND h.active
                 AND jsonb_exists(h.states, upper(e.state))
                 AND (h.version_group_id IS NULL OR h.version_group_id = e.version_group_id)
            RETURNING id
        )"""


ENQUEUE_FOR_NEW_RUNS = text(
    "WITH new_runs AS (SELECT * FROM flow_run WHERE id = ANY(:ids)), "
    "new_states AS (SELECT s.* FROM flow_run_state s JOIN new_runs r ON r.id = s.flow_run_id AND s.version = r.version), "
    + enqueue_ctes("new_runs", "new_states")
    + " SELECT count(*) FROM hooks"
).bindparams(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True))))


async def enqueue_for_new_runs(session: AsyncSession, flow_run_ids: list[uuid.UUID]) -> int:
    """The hooks of new runs' first state (Prefect Server's create_flow_run set it, firing them)."""
    count = (await session.execute(ENQUEUE_FOR_NEW_RUNS, {"ids": flow_run_ids})).scalar_one()
    if count:
        note_enqueued(session)
    return count


# --- waking the delivery service of this process once an outbox row is committed ------------

_wakers: set[Callable[[], None]] = set()
_PENDING_KEY = "headwater_hook_deliveries"


def note_enqueued(session: AsyncSession) -> None:
    """Remember that this transaction queued deliveries; the wakers run once it commits."""
    session.info[_PENDING_KEY] = True


def add_waker(waker: Callable[[], None]) -> None:
    _wakers.add(waker)


def remove_waker(waker: Callable[[], None]) -> None:
    _wakers.discard(waker)


def wake_delivery() -> None:
    """Deliveries were committed (by an autocommit statement, or a transaction's commit)."""
    for waker in list(_wakers):
        waker()


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(_PENDING_KEY, False):
        wake_delivery()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)


# --- claiming and settling ------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A delivery this process may send now, with the hook as it is at the claim."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    hook_id: uuid.UUID
    hook_type: str
    config: dict[str, Any]
    payload: dict[str, Any]
    attempts: int


CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM cloud_hook_delivery
        WHERE status = 'pending' AND next_attempt_at <= :now
        ORDER BY next_attempt_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE cloud_hook_delivery d
    SET attempts = d.attempts + 1, next_attempt_at = :lease_until
    FROM due, cloud_hook h
    WHERE d.id = due.id AND h.id = d.cloud_hook_id
    RETURNING d.id, d.tenant_id, h.id AS hook_id, h.type, h.config, d.payload, d.attempts
    """
).bindparams(
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("lease_until", type_=DateTime(timezone=True)),
    bindparam("limit", type_=Integer),
).columns(config=JSONB, payload=JSONB)


async def claim_due(session: AsyncSession, *, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Claimed]:
    rows = (await session.execute(CLAIM, {"now": now, "lease_until": now + lease, "limit": limit})).all()
    return [Claimed(r.id, r.tenant_id, r.hook_id, r.type, dict(r.config or {}), r.payload, r.attempts) for r in rows]


_SETTLE_WHERE = "WHERE id = :id AND attempts = :attempts AND status = 'pending'"

MARK_DELIVERED = text(
    "UPDATE cloud_hook_delivery SET status = 'delivered', delivered_at = :now, last_http_status = :http_status, "
    "last_error = NULL " + _SETTLE_WHERE
).bindparams(
    bindparam("id", type_=PG_UUID(as_uuid=True)),
    bindparam("now", type_=DateTime(timezone=True)),
    bindparam("http_status", type_=Integer),
    bindparam("attempts", type_=Integer),
)

MARK_FAILED_ATTEMPT = text(
    "UPDATE cloud_hook_delivery SET status = :status, next_attempt_at = :next_attempt_at, "
    "last_error = :error, last_http_status = :http_status " + _SETTLE_WHERE
).bindparams(
    bindparam("id", type_=PG_UUID(as_uuid=True)),
    bindparam("status", type_=String),
    bindparam("next_attempt_at", type_=DateTime(timezone=True)),
    bindparam("error", type_=String),
    bindparam("http_status", type_=Integer),
    bindparam("attempts", type_=Integer),
)


async def mark_delivered(
    session: AsyncSession, delivery: Claimed, *, now: dt.datetime, http_status: int | None
) -> bool:
    """True when this claim still held the row (and so the delivery counts)."""
    result = await session.execute(
        MARK_DELIVERED, {"id": delivery.id, "now": now, "http_status": http_status, "attempts": delivery.attempts}
    )
    return result.rowcount == 1


def backoff(attempts: int, base: float, cap: float) -> dt.timedelta:
    """The wait after the `attempts`-th failure: base, 2x base, 4x base ... at most `cap` seconds."""
    return dt.timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


async def mark_attempt_failed(
    session: AsyncSession,
    delivery: Claimed,
    *,
    now: dt.datetime,
    error: str,
    http_status: int | None,
    max_attempts: int,
    retry_base: float,
    retry_cap: float,
) -> str:
    """Record a failed attempt: due again after the backoff, or `failed` after the last attempt."""
    status = "failed" if delivery.attempts >= max_attempts else "pending"
    await session.execute(
        MARK_FAILED_ATTEMPT,
        {
            "id": delivery.id, "status": status, "attempts": delivery.attempts,
            "next_attempt_at": now + backoff(delivery.attempts, retry_base, retry_cap),
            "error": error[:2000], "http_status": http_status,
        },
    )
    return status
