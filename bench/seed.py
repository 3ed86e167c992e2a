"""Set-based seeding through headwater's own tables: one run (or flow) made by the server is the
template, and generate_series copies it as often as needed in one statement.

Copying whole rows (every column but the id, read from information_schema) keeps the copies
exactly what the server writes, whatever columns the tables grow.
"""

from __future__ import annotations

import time

import asyncpg


async def columns(connection: asyncpg.Connection, table: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = $1 AND column_name <> 'id' AND is_generated = 'NEVER' ORDER BY ordinal_position",
        table,
    )
    return [row["column_name"] for row in rows]


def _select(cols: list[str], alias: str, overrides: dict[str, str]) -> str:
    return ", ".join(overrides.get(col, f'{alias}."{col}"') for col in cols)


def _names(cols: list[str]) -> str:
    return ", ".join(f'"{col}"' for col in cols)


async def clone_runs(connection: asyncpg.Connection, template: str, count: int,
                     overrides: dict[str, str] | None = None, children: bool = True, start: int = 1) -> list[str]:
    """`count` copies of flow run `template`; with `children`, its state history, task runs and
    their state histories too. `overrides` maps flow_run columns to SQL over `t` (the template)
    and `g` (start..start+count-1). Returns the new ids in order of `g`."""
    run_cols = await columns(connection, "flow_run")
    overrides = {"idempotency_key": "NULL", **(overrides or {})}
    parts = [
        "ids AS MATERIALIZED (SELECT gen_random_uuid() AS new_id, g FROM generate_series($3::int, $3::int + $2::int - 1) g)",
        f"runs AS (INSERT INTO flow_run (id, {_names(run_cols)}) "
        f"SELECT ids.new_id, {_select(run_cols, 't', overrides)} FROM flow_run t, ids WHERE t.id = $1::uuid)",
    ]
    if children:
        state_cols = await columns(connection, "flow_run_state")
        task_cols = await columns(connection, "task_run")
        task_state_cols = await columns(connection, "task_run_state")
        parts += [
            f"run_states AS (INSERT INTO flow_run_state ({_names(state_cols)}) "
            f"SELECT {_select(state_cols, 's', {'flow_run_id': 'ids.new_id'})} "
            "FROM flow_run_state s, ids WHERE s.flow_run_id = $1::uuid)",
            "task_ids AS MATERIALIZED (SELECT tr.id AS old_id, gen_random_uuid() AS new_id, ids.new_id AS run_id "
            "FROM task_run tr, ids WHERE tr.flow_run_id = $1::uuid)",
            f"task_runs AS (INSERT INTO task_run (id, {_names(task_cols)}) "
            f"SELECT task_ids.new_id, {_select(task_cols, 'tr', {'flow_run_id': 'task_ids.run_id'})} "
            "FROM task_run tr JOIN task_ids ON tr.id = task_ids.old_id)",
            f"task_states AS (INSERT INTO task_run_state ({_names(task_state_cols)}) "
            f"SELECT {_select(task_state_cols, 's', {'task_run_id': 'task_ids.new_id'})} "
            "FROM task_run_state s JOIN task_ids ON s.task_run_id = task_ids.old_id)",
        ]
    rows = await connection.fetch("WITH " + ",\n".join(parts) + " SELECT new_id FROM ids ORDER BY g",
                                  template, count, start)
    return [str(row["new_id"]) for row in rows]


async def task_runs_of(connection: asyncpg.Connection, run_ids: list[str]) -> list[tuple[str, str, str]]:
    """(flow_run_id, task_id, task_run_id) for the runs, in the runs' order."""
    rows = await connection.fetch(
        "SELECT tr.flow_run_id, tr.task_id, tr.id FROM task_run tr "
        "JOIN unnest($1::uuid[]) WITH ORDINALITY AS r(id, n) ON tr.flow_run_id = r.id ORDER BY r.n, tr.id",
        run_ids,
    )
    return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]


# The queue a big, old installation has: almost every run finished long ago, a few waiting for
# a future time, a few due now (the poll's answer), a few Running. One in 1,000 is due.
QUEUE_ROWS = {
    "name": "'bench-queue-' || g",
    "labels": """'["bench"]'::jsonb""",
    "state": "CASE WHEN g % 1000 = 0 THEN 'Scheduled' WHEN g % 1000 < 20 THEN 'Scheduled' "
             "WHEN g % 1000 = 500 THEN 'Running' ELSE 'Success' END",
    "state_start_time": "CASE WHEN g % 1000 = 0 THEN now() - interval '1 minute' * (g % 60 + 1) "
                        "WHEN g % 1000 < 20 THEN now() + interval '1 second' * g "
                        "ELSE now() - interval '1 second' * g END",
    "scheduled_start_time": "CASE WHEN g % 1000 < 20 THEN now() + interval '1 second' * g "
                            "ELSE now() - interval '1 second' * g END",
}


async def grow_queue(connection: asyncpg.Connection, template: str, have: int, want: int,
                     deadline: float, chunk: int = 100_000) -> int:
    """Add flow_run rows (no history: the poll reads none) until `want`, or until `deadline`
    (time.monotonic) passes. Returns how many rows there are now."""
    while have < want and time.monotonic() < deadline:
        step = min(chunk, want - have)
        await clone_runs(connection, template, step, QUEUE_ROWS, children=False, start=have + 1)
        have += step
    await connection.execute("ANALYZE flow_run")
    return have


async def clone_scheduled_flows(connection: asyncpg.Connection, template: str, count: int) -> None:
    """`count` flows (each its own group, with the template's tasks) whose schedule is active."""
    flow_cols = await columns(connection, "flow")
    task_cols = await columns(connection, "task")
    flow_overrides = {"flow_group_id": "groups.id", "version": "1", "version_group_id": "groups.name",
                      "name": "groups.name", "is_schedule_active": "true", "serialized_flow": "NULL"}
    await connection.execute(
        f"""
        WITH groups AS (
            INSERT INTO flow_group (tenant_id, name, settings)
            SELECT tenant_id, 'bench-' || g || '-' || $3::text, '{{}}'::jsonb
            FROM flow, generate_series(1, $2::int) g WHERE id = $1::uuid
            RETURNING id, name
        ), flows AS (
            INSERT INTO flow ({_names(flow_cols)})
            SELECT {_select(flow_cols, 'f', flow_overrides)} FROM flow f, groups WHERE f.id = $1::uuid
            RETURNING id
        )
        INSERT INTO task ({_names(task_cols)})
        SELECT {_select(task_cols, 't', {'flow_id': 'flows.id'})} FROM flows, task t WHERE t.flow_id = $1::uuid
        """,
        template, count, str(time.time_ns()),
    )
