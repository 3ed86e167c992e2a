"""Prefect Core 1.x states as the server sees them: names, families, and serialized form.

A state arrives as Core's `StateSchema` dump (`{"type": "Running", "message": ..., ...}`) and is
stored verbatim in `serialized_state`; the server reads only the type, the message, the result
and the start time. States the server creates itself (Scheduled on a new run, Pending on a new
task run, Cancelled, Failed from the services) are written in the same form, so Core can load them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from headwater.server.domain.errors import InvalidInput
from headwater.server.domain.limits import has_nul_escape
from headwater.server.domain.time_ranges import utc_timestamp

CORE_VERSION = "1.4.1"

# Core's class tree, child -> parent (names are stored verbatim in `state` columns).
PARENT = {
    "Pending": "State",
    "Scheduled": "Pending",
    "Paused": "Scheduled",
    "Resume": "Scheduled",
    "Retrying": "Scheduled",
    "ClientFailed": "_MetaState",
    "Submitted": "_MetaState",
    "Queued": "_MetaState",
    "Running": "State",
    "Cancelling": "Running",
    "Finished": "State",
    "Looped": "Finished",
    "Success": "Finished",
    "Cached": "Success",
    "Mapped": "Success",
    "Skipped": "Success",
    "Cancelled": "Finished",
    "Failed": "Finished",
    "TimedOut": "Failed",
    "TriggerFailed": "Failed",
    "ValidationFailed": "Failed",
}
STATE_NAMES = frozenset(PARENT) | {"State", "_MetaState"}

SCHEDULED_STATES = frozenset({"Scheduled", "Paused", "Resume", "Retrying", "Queued"})
RUNNING_STATES = frozenset({"Running", "Cancelling"})
# States whose class carries a start_time.
TIMED_STATES = frozenset({"Scheduled", "Paused", "Resume", "Retrying", "Queued"})
# Entering one of these sets the run's end_time (Prefect Server's list).
END_TIME_STATES = frozenset({"Success", "Failed", "Cached", "TimedOut", "Looped", "Cancelled"})


def ancestors(name: str) -> list[str]:
    chain = [name]
    while chain[-1] in PARENT:
        chain.append(PARENT[chain[-1]])
    return chain


def is_finished(name: str | None) -> bool:
    return name is not None and "Finished" in ancestors(name)


def is_running(name: str | None) -> bool:
    return name in RUNNING_STATES


@dataclass(frozen=True)
class State:
    """A parsed state: what the server stores besides the serialized dict itself."""

    type: str
    message: str | None
    result: Any
    start_time: dt.datetime | None
    serialized: dict[str, Any]

    @property
    def is_running(self) -> bool:
        return is_running(self.type)

    @property
    def is_finished(self) -> bool:
        return is_finished(self.type)


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"Invalid state start_time: {value!r}") from None
    try:
        return utc_timestamp(parsed)
    except ValueError as error:
        raise InvalidInput(f"Invalid state start_time: {error}.") from None


def parse_state(serialized: Any, max_bytes: int) -> State:
    """Validate a serialized state; a bad one is refused before anything is written."""
    if not isinstance(serialized, dict):
        raise InvalidInput("A state must be a serialized Prefect state object.")
    encoded = json.dumps(serialized)
    if len(encoded) > max_bytes:
        raise InvalidInput("State payload is too large.")
    if has_nul_escape(encoded):
        raise InvalidInput("The state contains a NUL character (\\u0000), which cannot be stored.")
    name = serialized.get("type")
    if name not in STATE_NAMES or name in ("State", "_MetaState"):
        raise InvalidInput(f"Unknown state type: {name!r}.")
    message = serialized.get("message")
    if message is not None and not isinstance(message, str):
        message = str(message)
    return State(
        type=name,
        message=message,
        result=serialized.get("_result", serialized.get("result")),
        start_time=_parse_time(serialized.get("start_time")) if name in TIMED_STATES else None,
        serialized=serialized,
    )


def make_state(name: str, message: str | None = None, start_time: dt.datetime | None = None, **extra: Any) -> State:
    """A state created by the server, serialized the way Core's StateSchema writes it."""
    serialized: dict[str, Any] = {
        "type": name,
        "message": message,
        "context": {},
        "cached_inputs": {},
        "_result": {"type": "NoResultType", "__version__": CORE_VERSION},
        "__version__": CORE_VERSION,
        **extra,
    }
    if name in TIMED_STATES:
        start_time = start_time or dt.datetime.now(dt.timezone.utc)
        serialized["start_time"] = start_time.isoformat()
    return State(name, message, serialized["_result"], start_time, serialized)


# The state every task run is born in.
TASK_RUN_CREATED = make_state("Pending", "Task run created")
