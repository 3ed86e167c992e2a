"""The rows of Hasura's tracked SQL functions, computed per call as a subquery.

Prefect Server defined `utility.downstream_tasks(start_task_ids uuid[], depth_limit int)` in
Postgres; headwater builds the same walk as a recursive CTE over `edge` (bound parameters
only), so the read layer filters, sorts, pages and joins its rows like any table's.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import ARRAY, Integer, func, literal, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.sql.expression import FromClause

from headwater.server.db.models import Edge
from headwater.server.graphql.hasura.catalog import TRAVERSAL

# Prefect's bound on the walk, whatever `depth_limit` asks for.
MAX_DEPTH = 50
# Without an `order_by`, rows come as the function returned them: by depth, then task id.
TRAVERSAL_ORDER = [{"depth": "asc"}, {"task_id": "asc"}]


def downstream_tasks(args: dict[str, Any] | None) -> FromClause:
    """Every task reachable downstream of the start tasks, each at its greatest depth (start
    tasks at 0, even without edges), walking while `depth < min(50, depth_limit)`."""
    args = args or {}
    start = list(dict.fromkeys(args.get("start_task_ids") or []))
    limit = args.get("depth_limit")
    bound = MAX_DEPTH if limit is None else min(MAX_DEPTH, limit)
    edge = Edge.__table__
    seed = select(
        func.unnest(literal(start, ARRAY(UUID(as_uuid=True)))).label("task_id"),
        literal(0, Integer).label("depth"),
    )
    walk = seed.cte("walk", recursive=True)
    step = (
        select(edge.c.downstream_task_id, walk.c.depth + 1)
        .join_from(walk, edge, edge.c.upstream_task_id == walk.c.task_id)
        .where(walk.c.depth < literal(bound, Integer))
    )
    # UNION, not UNION ALL: each (task, depth) once, so a diamond-shaped flow cannot multiply rows.
    walk = walk.union(step)
    rows = select(walk.c.task_id, func.max(walk.c.depth).label("depth")).group_by(walk.c.task_id)
    return rows.subquery(TRAVERSAL.name)


# Root field -> (its rows for the call's `args`, the order they come in without `order_by`).
SOURCES: dict[str, tuple[Callable[[dict[str, Any] | None], FromClause], list[dict[str, str]]]] = {
    "utility_downstream_tasks": (downstream_tasks, TRAVERSAL_ORDER),
}
