"""Builders for the payloads the Prefect client sends, written by hand so unit tests do not need
Prefect Core (compatibility tests use the real package instead)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

CORE_VERSION = "1.4.1"


def task(slug: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "prefect.tasks.core.function.FunctionTask",
        "name": name or slug.rsplit("-", 1)[0],
        "slug": slug,
        "tags": [],
        "max_retries": 0,
        "retry_delay": None,
        "trigger": {"fn": "prefect.triggers.all_successful", "kwargs": {}},
        "cache_key": None,
        "auto_generated": False,
        "__version__": CORE_VERSION,
        **extra,
    }


def edge(upstream: str, downstream: str, key: str | None = None, mapped: bool = False) -> dict[str, Any]:
    return {
        "upstream_task": {"slug": upstream, "__version__": CORE_VERSION},
        "downstream_task": {"slug": downstream, "__version__": CORE_VERSION},
        "key": key,
        "mapped": mapped,
        "flattened": False,
        "__version__": CORE_VERSION,
    }


def parameter(name: str, default: Any = None, required: bool = False) -> dict[str, Any]:
    return {
        "type": "prefect.core.parameter.Parameter",
        "name": name,
        "slug": name,
        "default": default,
        "required": required,
        "tags": [],
        "outputs": "typing.Any",
        "__version__": CORE_VERSION,
    }


def interval_schedule(seconds: int = 3600, parameter_defaults: dict | None = None) -> dict[str, Any]:
    clock: dict[str, Any] = {
        "type": "IntervalClock",
        "interval": seconds * 1_000_000,
        "start_date": {"dt": "2024-01-01T00:00:00", "tz": "UTC"},
        "__version__": CORE_VERSION,
    }
    if parameter_defaults is not None:
        clock["parameter_defaults"] = parameter_defaults
    return {"type": "Schedule", "clocks": [clock], "__version__": CORE_VERSION}


def flow(
    name: str = "etl",
    tasks: list[dict] | None = None,
    edges: list[dict] | None = None,
    parameters: list[dict] | None = None,
    schedule: dict | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A serialized flow: by default two tasks `extract -> load`."""
    if tasks is None:
        tasks = [task("extract-1"), task("load-1")]
        edges = [edge("extract-1", "load-1", key="rows")] if edges is None else edges
    parameters = parameters or []
    return {
        "name": name,
        "type": "prefect.core.flow.Flow",
        "schedule": schedule,
        "parameters": parameters,
        "tasks": [*tasks, *(task(p["slug"], p["name"], type=p["type"]) for p in parameters)],
        "edges": edges or [],
        "reference_tasks": [],
        "run_config": {"env": None, "labels": ["dev"], "__version__": CORE_VERSION, "type": "UniversalRun"},
        "__version__": CORE_VERSION,
        "storage": {
            "flows": {name: f"/tmp/flows/{name}.prefect"},
            "secrets": [],
            "directory": "/tmp/flows",
            "path": None,
            "stored_as_script": False,
            "__version__": CORE_VERSION,
            "type": "Local",
        },
        **extra,
    }


def compress(value: Any) -> str:
    """What Prefect's `compress` produces: base64 of gzip of JSON."""
    return base64.b64encode(gzip.compress(json.dumps(value).encode())).decode()
