"""Cloud hooks: notifications of flow-run state changes (Prefect Server's `api/cloud_hooks.py`).

A hook names a type (where the notification goes), the states it fires on (exact, upper-cased
state names: `FAILED` does not fire for `TimedOut`, as in Prefect Server) and optionally a
version group. Firing is not done here: every flow-run state change writes one outbox row per
matching hook in its own transaction (`hook_outbox.py`), and the delivery service sends it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from headwater.server.db.models import CloudHook, Flow, FlowRun, Tenant
from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.states import PARENT

HOOK_TYPES = ("WEBHOOK", "SLACK_WEBHOOK", "PREFECT_MESSAGE", "TWILIO", "PAGERDUTY")
# Prefect Server's ALL_STATES: the upper-cased names of every public Core state class.
ALL_STATES = frozenset(name.upper() for name in PARENT)
PAGERDUTY_SEVERITIES = ("info", "warning", "error", "critical")
# The states `test_cloud_hook` can send, by its `state_type`.
TEST_STATES = {"SCHEDULED": "Scheduled", "SUBMITTED": "Submitted", "RUNNING": "Running",
               "SUCCESS": "Success", "FAILED": "Failed"}

INVALID_ID = "Invalid ID"

# Config keys per type: Prefect Server's required keys (with its messages), plus headwater's
# optional ones: a webhook's HMAC `secret`, and `api_url` to point Twilio or PagerDuty elsewhere
# (a proxy, a regional endpoint, a test receiver).
_REQUIRED: dict[str, tuple[frozenset[str], str]] = {
    "WEBHOOK": (frozenset({"url"}), "Invalid config; expected `url`"),
    "SLACK_WEBHOOK": (frozenset({"url"}), "Invalid config; expected `url`"),
    "TWILIO": (
        frozenset({"account_sid", "auth_token", "messaging_service_sid", "to"}),
        "Invalid config; expected `account_sid`, `auth_token`, `messaging_service_sid`, and `to`",
    ),
    "PAGERDUTY": (
        frozenset({"api_token", "routing_key", "severity"}),
        "Invalid config; expected `api_token`, `routing_key`, & `severity`",
    ),
}
_OPTIONAL = {"WEBHOOK": {"secret"}, "SLACK_WEBHOOK": set(), "TWILIO": {"api_url"}, "PAGERDUTY": {"api_url"}}


def _check_url(value: Any, key: str) -> None:
    """Only http(s) leaves the server: a `file:` or `gopher:` URL in a hook is refused at once."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"Invalid config; `{key}` must be an http:// or https:// URL")


def check_config(hook_type: str, config: dict[str, Any] | None) -> dict[str, Any]:
    config = dict(config or {})
    if hook_type == "PREFECT_MESSAGE":
        return config
    required, message = _REQUIRED[hook_type]
    keys = set(config)
    if not required <= keys or keys - required - _OPTIONAL[hook_type]:
        raise InvalidInput(message)
    if hook_type in ("WEBHOOK", "SLACK_WEBHOOK"):
        _check_url(config["url"], "url")
    if "api_url" in config:
        _check_url(config["api_url"], "api_url")
    if hook_type == "WEBHOOK" and "secret" in config and not (isinstance(config["secret"], str) and config["secret"]):
        raise InvalidInput("Invalid config; `secret` must be a non-empty string")
    if hook_type == "TWILIO":
        to = config["to"]
        if isinstance(to, str):
            to = [to]
        if not to or not isinstance(to, list) or not all(isinstance(n, str) and n for n in to):
            raise InvalidInput(message)
        config["to"] = to
    if hook_type == "PAGERDUTY" and config["severity"] not in PAGERDUTY_SEVERITIES:
        raise InvalidInput("Invalid config; severity must be one of {info, warning, error, critical}")
    return config


def check_states(states: Any) -> list[str]:
    """Upper-cased, deduplicated state names (Prefect Server's order is lost too; ours is sorted)."""
    if not states or not isinstance(states, list) or not all(isinstance(s, str) for s in states):
        raise InvalidInput("Invalid states")
    names = sorted({s.upper() for s in states})
    if any(name not in ALL_STATES for name in names):
        raise InvalidInput("Invalid states")
    return names


async def create_cloud_hook(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    hook_type: str,
    states: list[str],
    *,
    config: dict[str, Any] | None = None,
    version_group_id: str | None = None,
    name: str | None = None,
) -> uuid.UUID:
    """Prefect Server's checks, in its order; an unknown tenant is a foreign-key violation."""
    if not tenant_id:
        raise InvalidInput("Invalid tenant ID")
    names = check_states(states)
    if hook_type not in HOOK_TYPES:
        raise InvalidInput("Invalid cloud hook type")
    config = check_config(hook_type, config)
    hook = CloudHook(
        tenant_id=tenant_id, type=hook_type, states=names, config=config,
        version_group_id=version_group_id or None, name=name, active=True,
    )
    session.add(hook)
    await session.flush()
    return hook.id


async def delete_cloud_hook(session: AsyncSession, hook_id: uuid.UUID | None) -> bool:
    """Whether it existed; its queued deliveries go with it (foreign-key cascade)."""
    if not hook_id:
        raise InvalidInput(INVALID_ID)
    result = await session.execute(delete(CloudHook).where(CloudHook.id == hook_id))
    return result.rowcount == 1


async def set_cloud_hook_active(session: AsyncSession, hook_id: uuid.UUID | None, active: bool) -> bool:
    """Idempotent; whether the hook exists. An inactive hook queues nothing new; deliveries
    already queued are still sent."""
    if not hook_id:
        raise InvalidInput(INVALID_ID)
    result = await session.execute(update(CloudHook).where(CloudHook.id == hook_id).values(active=active))
    return result.rowcount == 1


@dataclass(frozen=True)
class TestDelivery:
    """What `test_cloud_hook` sends: the hook as it is, and an event built for the test."""

    hook_id: uuid.UUID
    tenant_id: uuid.UUID
    type: str
    config: dict[str, Any]
    event: dict[str, Any]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def test_event(
    session: AsyncSession, hook_id: uuid.UUID | None, flow_run_id: uuid.UUID | None = None,
    state_type: str | None = None,
) -> TestDelivery:
    """Prefect Server's test event: from a real run when one is named (its `flow_run` marked
    `is_test_event`, at the next version, in the test state), else a dummy run of a dummy flow."""
    hook = await session.get(CloudHook, hook_id) if hook_id else None
    if hook is None:
        raise InvalidInput(INVALID_ID)
    state_name = TEST_STATES.get(state_type or "SUCCESS", "Success")
    message = f"Test {state_name.lower()} state"
    now = dt.datetime.now(dt.timezone.utc)
    run = await session.get(FlowRun, flow_run_id) if flow_run_id else None
    if flow_run_id and run is None:
        raise InvalidInput(f"Invalid flow run ID: {flow_run_id}.")
    if run is not None:
        flow = await session.get(Flow, run.flow_id)
        tenant = await session.get(Tenant, run.tenant_id)
        flow_info = {"id": str(flow.id), "name": flow.name, "flow_group_id": str(flow.flow_group_id),
                     "version_group_id": flow.version_group_id}
        tenant_info = {"id": str(tenant.id), "slug": tenant.slug}
        run_info = {"id": str(run.id), "name": run.name, "version": run.version + 1, "flow_id": str(run.flow_id),
                    "tenant_id": str(run.tenant_id), "labels": run.labels, "parameters": run.parameters,
                    "scheduled_start_time": _iso(run.scheduled_start_time)}
        top_level_test = False
    else:
        run_id = uuid.uuid4()
        flow_info = {"id": str(uuid.uuid4()), "name": "Cloud Hook Test Flow", "flow_group_id": str(uuid.uuid4()),
                     "version_group_id": str(uuid.uuid4())}
        tenant_info = {"id": str(hook.tenant_id), "slug": "test-slug"}
        run_info = {"id": str(run_id), "name": f"test-run-{str(run_id)[:8]}", "version": 1,
                    "flow_id": flow_info["id"], "tenant_id": str(hook.tenant_id), "labels": [], "parameters": {},
                    "scheduled_start_time": now.isoformat()}
        top_level_test = True
    state = {
        "id": str(uuid.uuid4()), "flow_run_id": run_info["id"], "tenant_id": tenant_info["id"],
        "timestamp": now.isoformat(), "state": state_name, "message": message, "result": None,
        "start_time": None, "serialized_state": {"type": state_name, "message": message},
        "version": run_info["version"],
    }
    event = {
        "id": str(uuid.uuid4()),
        "timestamp": now.isoformat(),
        "type": "FlowRunStateChange",
        "flow_run": {**run_info, "state": state_name, "is_test_event": True, "flow": flow_info, "tenant": tenant_info},
        "state": state,
        "flow": flow_info,
        "tenant": tenant_info,
        "is_test_event": top_level_test,
    }
    return TestDelivery(hook.id, hook.tenant_id, hook.type, dict(hook.config or {}), event)

