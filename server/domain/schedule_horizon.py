"""Which schedules need the scheduler's full pass: a set-based pre-check.

Most passes find every schedule already holding its next `max_runs` runs. Loading each flow and
deployment as ORM objects, reading every future run's key and evaluating each clock to learn that
cost about 0.3-0.4 ms per schedule. Instead a pass first reads every active schedule's id and
schedule text (one query), computes each distinct schedule's next events once (memoised, below),
and asks Postgres in one statement which (schedule owner, expected idempotency key) pairs have no
future run. Only the owners in that answer go through the full, locking path
(headwater.server.domain.scheduling / deployment_scheduling), which is unchanged. The pre-check
only decides what to skip, and skips exactly what the full path would leave alone: an owner all
of whose expected keys exist among its future runs (the same filters the full path reads them
with) gets no new run there either.

Memoised events: the next `n` events of a schedule after `t0` are also its next `n` events after
any `t` with `t0 <= t < first event - 1 s` (no event lies in between, and a later start only
shortens the search), so an evaluation is reused until a second before its first event; one that
found fewer than `n` events is not reused. (The second: like Core, a cron clock rounds an `after`
with microseconds up to the next second, so within the last second before an event a fresh
evaluation no longer sees it.) Schedules are keyed by their jsonb text, which Postgres writes in one
canonical form.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.domain.clocks import ClockEvent, Schedule, ScheduleError, cached_schedule
from headwater.server.domain.deployment_schedules import cached_schedule as cached_deployment_schedule
from headwater.server.domain.scheduling import auto_schedule_key

_CACHE_LIMIT = 50_000
_MARGIN = dt.timedelta(seconds=1)  # see "Memoised events" above


@dataclass(frozen=True)
class _Evaluation:
    """What is kept of one evaluation (not the events: thousands of schedules are memoised)."""

    after: dt.datetime
    found: int  # events found
    first: dt.datetime | None  # the first event's time
    keys: tuple[str, ...]  # what the owners' idempotency keys are made of (see KEY_PARTS)

    @classmethod
    def of(cls, after: dt.datetime, events: tuple[ClockEvent, ...], keys: tuple[str, ...]) -> "_Evaluation":
        return cls(after, len(events), events[0].start_time if events else None, keys)


class EventCache:
    """The next events of schedules by (kind, schedule text, n), reused while still exact."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, int], _Evaluation] = {}

    def get(self, kind: str, schedule: str, n: int, now: dt.datetime) -> tuple[str, ...] | None:
        entry = self._entries.get((kind, schedule, n))
        if entry is None or entry.found < n or entry.first is None or not entry.after <= now < entry.first - _MARGIN:
            return None
        return entry.keys

    def put(self, kind: str, schedule: str, n: int, now: dt.datetime, evaluation: _Evaluation) -> None:
        if evaluation.found < n:
            return
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[(kind, schedule, n)] = evaluation


EVENTS = EventCache()


def _flow_schedule(value: Any) -> Schedule:
    if not isinstance(value, dict):
        raise ScheduleError("not a schedule object")
    return cached_schedule(value)


def _deployment_schedule(value: Any) -> Schedule:
    if not isinstance(value, list):
        raise ScheduleError("not a list of schedules")
    return cached_deployment_schedule(value)



def _utc_iso(event: ClockEvent) -> str:
    return event.start_time.astimezone(dt.timezone.utc).isoformat()


# Per kind: how a schedule is parsed, and the part of each event's idempotency key that does
# not depend on the owner (a flow's whole key; a deployment's time, after its id).
_PARSERS: dict[str, Callable[[Any], Schedule]] = {"flow": _flow_schedule, "deployment": _deployment_schedule}
KEY_PARTS: dict[str, Callable[[ClockEvent], str]] = {"flow": auto_schedule_key, "deployment": _utc_iso}


def _evaluate(kind: str, schedules: list[str], now: dt.datetime, n: int) -> list[_Evaluation | None]:
    """Pure CPU work on cache misses, run in a worker thread; None = cannot be evaluated."""
    parse, key_part = _PARSERS[kind], KEY_PARTS[kind]
    results: list[_Evaluation | None] = []
    for schedule in schedules:
        try:
            events = tuple(parse(json.loads(schedule)).next_events(after=now, n=n))
        except (ScheduleError, ValueError, TypeError):
            results.append(None)
            continue
        results.append(_Evaluation.of(now, events, tuple(key_part(event) for event in events)))
    return results


async def _keys_by_schedule(kind: str, schedules: set[str], now: dt.datetime, n: int) -> dict[str, tuple[str, ...] | None]:
    found: dict[str, tuple[str, ...] | None] = {}
    missing = []
    for schedule in schedules:
        keys = EVENTS.get(kind, schedule, n, now)
        if keys is None:
            missing.append(schedule)
        else:
            found[schedule] = keys
    if missing:
        for schedule, evaluation in zip(missing, await asyncio.to_thread(_evaluate, kind, missing, now, n)):
            found[schedule] = None if evaluation is None else evaluation.keys
            if evaluation is not None:
                EVENTS.put(kind, schedule, n, now, evaluation)
    return found


@dataclass(frozen=True)
class Precheck:
    seen: int  # active schedule owners (flows or deployments)
    needing_work: list[uuid.UUID]  # owners for the full path, in id order


_ACTIVE_FLOWS = text(
    """
    SELECT f.id, COALESCE(NULLIF(NULLIF(g.schedule, 'null'::jsonb), '{}'::jsonb), f.schedule)::text
    FROM flow f JOIN flow_group g ON g.id = f.flow_group_id
    WHERE f.is_schedule_active AND NOT f.archived
      AND (jsonb_typeof(f.schedule) = 'object' OR jsonb_typeof(g.schedule) = 'object')
    ORDER BY f.id
    """
)
# Each pair is looked up by its unique key ((idempotency_key, flow_id) and (deployment_id,
# idempotency_key); LIMIT 1 keeps the planner from turning it into a join), one index probe per
# pair, whatever the statistics say: right after a pass
# inserted 100,000 future runs, a NOT EXISTS with the time filter was planned as a scan of
# "1" future run materialised and compared with every pair (10^10 comparisons, minutes).
_FLOWS_MISSING_KEYS = text(
    """
    SELECT DISTINCT p.owner
    FROM unnest(CAST(:owners AS uuid[]), CAST(:keys AS text[])) AS p(owner, key)
    LEFT JOIN LATERAL (
        SELECT r.auto_scheduled, r.scheduled_start_time FROM flow_run r
        WHERE r.idempotency_key = p.key AND r.flow_id = p.owner LIMIT 1) r ON true
    WHERE r.scheduled_start_time IS NULL OR NOT (r.auto_scheduled AND r.scheduled_start_time > :now)
    """
)
_ACTIVE_DEPLOYMENTS = text(
    """
    SELECT id, schedule::text FROM deployment
    WHERE is_schedule_active AND jsonb_array_length(schedule) > 0
    ORDER BY id
    """
)
_DEPLOYMENTS_MISSING_KEYS = text(
    """
    SELECT DISTINCT p.owner
    FROM unnest(CAST(:owners AS uuid[]), CAST(:keys AS text[])) AS p(owner, key)
    LEFT JOIN LATERAL (
        SELECT r.scheduled_start_time FROM flow_run r
        WHERE r.deployment_id = p.owner AND r.idempotency_key = p.key LIMIT 1) r ON true
    WHERE r.scheduled_start_time IS NULL OR r.scheduled_start_time <= :now
    """
)


async def _precheck(
    session: AsyncSession, kind: str, active: Any, missing_keys: Any, now: dt.datetime, n: int,
    keys_of: Callable[[uuid.UUID, tuple[str, ...]], Any],
) -> Precheck:
    rows = (await session.execute(active)).all()
    by_schedule = await _keys_by_schedule(kind, {schedule for _, schedule in rows if schedule}, now, n)
    unknown: set[uuid.UUID] = set()
    owners: list[uuid.UUID] = []
    keys: list[str] = []
    for owner, schedule in rows:
        parts = by_schedule.get(schedule) if schedule else None
        if parts is None:
            unknown.add(owner)  # the full path reports it (or finds nothing to do)
            continue
        owners.extend([owner] * len(parts))
        keys.extend(keys_of(owner, parts))
    short: set[uuid.UUID] = set()
    if keys:
        result = await session.execute(missing_keys, {"owners": owners, "keys": keys, "now": now})
        short = set(result.scalars().all())
    return Precheck(len(rows), sorted(unknown | short))


def _flow_keys(_: uuid.UUID, parts: tuple[str, ...]) -> tuple[str, ...]:
    return parts


def _deployment_keys(deployment_id: uuid.UUID, times: tuple[str, ...]) -> list[str]:
    prefix = f"deployment:{deployment_id}:"  # deployment_scheduling.deployment_run_key
    return [prefix + time for time in times]


async def flows_needing_runs(session: AsyncSession, *, now: dt.datetime, max_runs: int) -> Precheck:
    """Flows with an active schedule that lack some of their next `max_runs` runs (or whose
    schedule cannot be evaluated here): the only ones the full pass must look at."""
    return await _precheck(session, "flow", _ACTIVE_FLOWS, _FLOWS_MISSING_KEYS, now, max_runs, _flow_keys)


async def deployments_needing_runs(session: AsyncSession, *, now: dt.datetime, max_runs: int) -> Precheck:
    """The same for deployments with an active, non-empty schedule."""
    return await _precheck(
        session, "deployment", _ACTIVE_DEPLOYMENTS, _DEPLOYMENTS_MISSING_KEYS, now, max_runs, _deployment_keys
    )
