"""Reading a serialized Prefect Core flow (`flow.serialize()`), checking it before anything is stored.

The server never runs flow code; it keeps the metadata: tasks (by slug), edges, parameters,
schedule, storage and run config. Validation errors name the offending field, so a user who
hand-writes a flow sees what to fix.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.time_ranges import duration_from_seconds

# Flows built before this Core version lack fields the backend needs (Prefect Server's cutoff).
MIN_CORE_VERSION = (0, 6, 1)
# The longest wait between task retries a flow may declare (longer is surely a mistake).
MAX_RETRY_DELAY = dt.timedelta(days=365)


@dataclass(frozen=True)
class TaskSpec:
    slug: str
    name: str | None
    type: str | None
    tags: list[Any]
    max_retries: int
    retry_delay: dt.timedelta | None
    trigger: str | None
    cache_key: str | None
    auto_generated: bool
    raw: dict[str, Any]


@dataclass(frozen=True)
class EdgeSpec:
    upstream_slug: str
    downstream_slug: str
    key: str | None
    mapped: bool


@dataclass(frozen=True)
class FlowSpec:
    name: str
    core_version: str | None
    parameters: list[dict[str, Any]]
    schedule: dict[str, Any] | None
    storage: dict[str, Any] | None
    run_config: dict[str, Any] | None
    environment: dict[str, Any] | None
    reference_slugs: list[str]
    tasks: list[TaskSpec] = field(default_factory=list)
    edges: list[EdgeSpec] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def required_parameter_names(self) -> set[str]:
        return {p["name"] for p in self.parameters if p.get("required")}


def _inflate(text: str, max_bytes: int) -> bytes:
    packed = base64.b64decode(text, validate=False)
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
    data = inflater.decompress(packed, max_bytes + 1)
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise InvalidInput(f"The decompressed flow exceeds the limit of {max_bytes} bytes.")
    return data


async def decompress_flow(text: str, max_bytes: int) -> dict[str, Any]:
    """The flow inside `create_flow_from_compressed_string`: base64 of gzip of JSON.

    Decompression stops at `max_bytes`, so a small "zip bomb" cannot exhaust memory. It runs in
    a thread (zlib releases the GIL), and the JSON is decoded task by task with pauses for the
    event loop: a 10,000-task flow is megabytes of JSON, and `json.loads` of it in one call
    held the whole process for a few hundred milliseconds.
    """
    try:
        data = await asyncio.to_thread(_inflate, text, max_bytes)
        value = await decode_json_yielding(data.decode("utf-8"))
    except InvalidInput:
        raise
    except (binascii.Error, zlib.error, ValueError, TypeError):
        raise InvalidInput("Unable to decompress serialized flow: expected base64-encoded gzip of JSON.") from None
    if not isinstance(value, dict):
        raise InvalidInput("The serialized flow must be a JSON object.")
    return value


_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
# Values decoded between two pauses for the event loop (a few milliseconds of work).
VALUES_PER_PAUSE = 50


class _YieldingDecoder:
    """`json.loads` of a document whose big parts are lists one or two levels down (a flow's
    `tasks` and `edges`): those are decoded element by element with `raw_decode`, pausing every
    `VALUES_PER_PAUSE` elements. Deeper values are decoded in one `raw_decode` call each."""

    def __init__(self, text: str):
        self.text = text
        self.decoded = 0

    def skip_space(self, pos: int) -> int:
        return _SPACE.match(self.text, pos).end()  # type: ignore[union-attr]

    def expect(self, pos: int, char: str) -> int:
        if not self.text.startswith(char, pos):
            raise ValueError(f"expected {char!r} at offset {pos}")
        return pos + 1

    async def value(self, pos: int, levels: int) -> tuple[Any, int]:
        pos = self.skip_space(pos)
        if levels and self.text.startswith("{", pos):
            return await self.object(pos + 1, levels - 1)
        if levels and self.text.startswith("[", pos):
            return await self.array(pos + 1, levels - 1)
        value, end = _DECODER.raw_decode(self.text, pos)
        self.decoded += 1
        if self.decoded % VALUES_PER_PAUSE == 0:
            await asyncio.sleep(0)
        return value, end

    async def object(self, pos: int, levels: int) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        pos = self.skip_space(pos)
        if self.text.startswith("}", pos):
            return result, pos + 1
        while True:
            key, pos = _DECODER.raw_decode(self.text, self.skip_space(pos))
            if not isinstance(key, str):
                raise ValueError(f"object keys must be strings (offset {pos})")
            pos = self.expect(self.skip_space(pos), ":")
            result[key], pos = await self.value(pos, levels)
            pos = self.skip_space(pos)
            if self.text.startswith("}", pos):
                return result, pos + 1
            pos = self.expect(pos, ",")

    async def array(self, pos: int, levels: int) -> tuple[list[Any], int]:
        result: list[Any] = []
        pos = self.skip_space(pos)
        if self.text.startswith("]", pos):
            return result, pos + 1
        while True:
            item, pos = await self.value(pos, levels)
            result.append(item)
            pos = self.skip_space(pos)
            if self.text.startswith("]", pos):
                return result, pos + 1
            pos = self.expect(pos, ",")


async def decode_json_yielding(text: str) -> Any:
    """`json.loads(text)` (same values, same errors as ValueError) that lets the event loop run."""
    decoder = _YieldingDecoder(text)
    value, end = await decoder.value(0, levels=2)
    if decoder.skip_space(end) != len(text):
        raise ValueError(f"extra data at offset {end}")
    return value


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _optional_dict(raw: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"Serialized flow field `{key}` must be an object or null.")
    return value


def _slug_of(value: Any, where: str) -> str:
    slug = value.get("slug") if isinstance(value, dict) else value
    if not isinstance(slug, str) or not slug:
        raise InvalidInput(f"{where} is missing its `slug`.")
    return slug


def parse_retry_delay(value: Any, where: str) -> dt.timedelta | None:
    """Seconds between retries: finite, not negative, and at most MAX_RETRY_DELAY, so the
    retry time (now + delay) is a date the server and the client can compute."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where}: `retry_delay` must be a number of seconds, got {value!r}.")
    if value < 0:
        raise InvalidInput(f"{where}: `retry_delay` must not be negative.")
    try:
        return duration_from_seconds(value, MAX_RETRY_DELAY.total_seconds())
    except ValueError as error:
        raise InvalidInput(f"{where}: `retry_delay` is invalid: {error}.") from None


def parse_task(raw: Any, index: int) -> TaskSpec:
    where = f"Task {index}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object.")
    slug = _slug_of(raw, where)
    where = f"Task {slug!r}"
    tags = raw.get("tags") or []
    if not isinstance(tags, list):
        raise InvalidInput(f"{where}: `tags` must be a list.")
    max_retries = raw.get("max_retries") or 0
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidInput(f"{where}: `max_retries` must be a non-negative integer.")
    trigger = raw.get("trigger")
    if isinstance(trigger, dict):
        trigger = trigger.get("fn")
    cache_key = raw.get("cache_key")
    return TaskSpec(
        slug=slug,
        name=raw.get("name") if isinstance(raw.get("name"), str) else None,
        type=raw.get("type") if isinstance(raw.get("type"), str) else None,
        tags=tags,
        max_retries=max_retries,
        retry_delay=parse_retry_delay(raw.get("retry_delay"), where),
        trigger=trigger if isinstance(trigger, str) else None,
        cache_key=cache_key if isinstance(cache_key, str) else None,
        auto_generated=bool(raw.get("auto_generated", False)),
        raw=raw,
    )


def parse_edge(raw: Any, index: int) -> EdgeSpec:
    where = f"Edge {index}"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object.")
    key = raw.get("key")
    return EdgeSpec(
        upstream_slug=_slug_of(raw.get("upstream_task"), f"{where} upstream_task"),
        downstream_slug=_slug_of(raw.get("downstream_task"), f"{where} downstream_task"),
        key=key if isinstance(key, str) else None,
        mapped=bool(raw.get("mapped", False)),
    )


def check_count(kind: str, count: int, limit: int | None, setting: str) -> None:
    """Refuse a flow with more tasks or edges than the server accepts, before any row is written."""
    if limit is not None and count > limit:
        raise InvalidInput(
            f"The flow has {count:,} {kind}; the server accepts at most {limit:,} {kind} per flow ({setting})."
        )


def parse_tasks(raw: Any) -> list[TaskSpec]:
    """The tasks of one request; two with one slug are refused (they would be merged into one task)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("`tasks` must be a list of serialized tasks.")
    tasks = [parse_task(item, i) for i, item in enumerate(raw)]
    seen: set[str] = set()
    for task in tasks:
        if task.slug in seen:
            raise InvalidInput(f"Two tasks share the slug {task.slug!r}; each task of a flow needs its own slug.")
        seen.add(task.slug)
    return tasks


def parse_edges(raw: Any) -> list[EdgeSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("`edges` must be a list of serialized edges.")
    return [parse_edge(item, i) for i, item in enumerate(raw)]


# A cycle longer than this is named by its first tasks only.
CYCLE_NAMES_SHOWN = 10


def find_cycle(edges: list[tuple[str, str]]) -> list[str] | None:
    """A cycle of the graph as slugs `[a, b, ..., a]`, or None when it is acyclic.

    Kahn's algorithm, iterative and linear in tasks plus edges (no recursion, so a 100,000-task
    chain is fine). The tasks it cannot order each keep an unordered predecessor, so walking back
    along those from any of them must come round to a task already seen: that loop is a cycle.
    """
    downstream: dict[str, list[str]] = {}
    indegree: dict[str, int] = {}
    for up, down in edges:
        downstream.setdefault(up, []).append(down)
        indegree[down] = indegree.get(down, 0) + 1
        indegree.setdefault(up, 0)
    ready = [slug for slug, degree in indegree.items() if degree == 0]
    ordered = 0
    while ready:
        slug = ready.pop()
        ordered += 1
        for child in downstream.get(slug, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if ordered == len(indegree):
        return None
    upstream_left = {down: up for up, down in edges if indegree[up] > 0 and indegree[down] > 0}
    slug = next(iter(upstream_left))
    position: dict[str, int] = {}
    walk: list[str] = []
    while slug not in position:
        position[slug] = len(walk)
        walk.append(slug)
        slug = upstream_left[slug]
    cycle = walk[position[slug] :][::-1]  # walked against the edges: turn it round
    first = cycle.index(min(cycle))  # start at the smallest slug, so the message is stable
    cycle = cycle[first:] + cycle[:first]
    return [*cycle, cycle[0]]


def check_edges(task_slugs: set[str], edges: list[tuple[str, str]]) -> None:
    """Refuse edges a flow can never run with: to unknown tasks, from a task to itself, or in a cycle.

    `edges` are (upstream slug, downstream slug) pairs: the flow's whole graph, so a cycle that
    closes across two registration requests is found too.
    """
    missing = sorted({slug for edge in edges for slug in edge} - task_slugs)
    if missing:
        raise InvalidInput(
            "Edges could not be registered - some edges reference tasks that do not exist within "
            f"this flow: {', '.join(missing[:10])}."
        )
    for up, down in edges:
        if up == down:
            raise InvalidInput(f"Task {up!r} has an edge to itself; a task cannot depend on its own result.")
    cycle = find_cycle(edges)
    if cycle is not None:
        shown = cycle if len(cycle) <= CYCLE_NAMES_SHOWN + 1 else [*cycle[:CYCLE_NAMES_SHOWN], "..."]
        size = f" ({len(cycle) - 1:,} tasks)" if len(cycle) > CYCLE_NAMES_SHOWN + 1 else ""
        raise InvalidInput(
            f"The flow's edges form a cycle{size}: {' -> '.join(shown)}. A flow's tasks must form a DAG."
        )


def _parse_parameters(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("Serialized flow field `parameters` must be a list.")
    parameters = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidInput(f"Parameter {i} must be an object.")
        slug = item.get("slug") or item.get("name")
        name = item.get("name") or slug
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"Parameter {i} is missing its `name`.")
        parameters.append({**item, "name": name, "slug": slug, "required": bool(item.get("required", False))})
    return parameters


def _parse_schedule(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInput("Serialized flow field `schedule` must be an object or null.")
    clocks = raw.get("clocks", [])
    if not isinstance(clocks, list) or not all(isinstance(c, dict) for c in clocks):
        raise InvalidInput("`schedule.clocks` must be a list of clock objects.")
    return raw


def parse_flow(raw: Any, max_tasks: int | None = None, max_edges: int | None = None) -> FlowSpec:
    """Validate a serialized flow and pull out what the backend stores.

    Beyond the fields, the graph is checked: unique task slugs, edges between the flow's own
    tasks, no self edges, no cycles; and at most `max_tasks` tasks and `max_edges` edges.
    """
    if not isinstance(raw, dict):
        raise InvalidInput("The serialized flow must be a JSON object.")
    for kind, limit, setting in (
        ("tasks", max_tasks, "HEADWATER_MAX_FLOW_TASKS"),
        ("edges", max_edges, "HEADWATER_MAX_FLOW_EDGES"),
    ):
        if isinstance(raw.get(kind), list):
            check_count(kind, len(raw[kind]), limit, setting)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("The serialized flow has no `name`.")
    core_version = raw.get("__version__")
    if core_version is not None:
        if not isinstance(core_version, str):
            raise InvalidInput("Serialized flow field `__version__` must be a string.")
        if _version_tuple(core_version) < MIN_CORE_VERSION:
            raise InvalidInput(
                "Prefect backends require new flows to be built with Prefect 0.6.1+, "
                f"but this flow was built with Prefect {core_version}."
            )
    references = raw.get("reference_tasks") or []
    if not isinstance(references, list):
        raise InvalidInput("Serialized flow field `reference_tasks` must be a list.")
    tasks = parse_tasks(raw.get("tasks"))
    edges = parse_edges(raw.get("edges"))
    check_edges({task.slug for task in tasks}, [(e.upstream_slug, e.downstream_slug) for e in edges])
    return FlowSpec(
        name=name,
        core_version=core_version,
        parameters=_parse_parameters(raw.get("parameters")),
        schedule=_parse_schedule(raw.get("schedule")),
        storage=_optional_dict(raw, "storage"),
        run_config=_optional_dict(raw, "run_config"),
        environment=_optional_dict(raw, "environment"),
        reference_slugs=[_slug_of(r, "A reference task") for r in references],
        tasks=tasks,
        edges=edges,
        raw=raw,
    )
