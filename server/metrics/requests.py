"""What one GraphQL operation adds to the metrics: one histogram observation, and a counter
increment per error. Label children are looked up once per label pair and kept here."""

from __future__ import annotations

from typing import Any

from headwater.server.metrics.families import GRAPHQL_ERRORS, GRAPHQL_REQUEST_SECONDS
from headwater.server.metrics.operations import INVALID

NO_OPERATION = ("", INVALID)
# Codes come from server/graphql/errors.py (a handful); the cap only guards against a surprise.
MAX_CODES = 50

_timers: dict[tuple[str, str], Any] = {}
_errors: dict[tuple[str, str, str], Any] = {}
_codes: set[str] = set()


def record_request(operation: tuple[str, str] | None, seconds: float, errors: list[dict] | None) -> None:
    labels = operation or NO_OPERATION
    timer = _timers.get(labels)
    if timer is None:
        timer = _timers[labels] = GRAPHQL_REQUEST_SECONDS.labels(*labels)
    timer.observe(seconds)
    if errors:
        for error in errors:
            code = str((error.get("extensions") or {}).get("code") or "UNKNOWN")
            if code not in _codes:
                if len(_codes) >= MAX_CODES:
                    code = "_other"
                _codes.add(code)
            key = (*labels, code)
            counter = _errors.get(key)
            if counter is None:
                counter = _errors[key] = GRAPHQL_ERRORS.labels(*key)
            counter.inc()
