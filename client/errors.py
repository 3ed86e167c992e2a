"""Typed exceptions: every GraphQL error becomes one of these, carrying the server's message."""

from __future__ import annotations


class HeadwaterError(Exception):
    """Base class; `code` is the server's `extensions.code` when there was one."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class BadRequest(HeadwaterError):
    """The server refused the input (unknown field, bad value, invalid state...)."""


class NotFound(HeadwaterError):
    """A referenced project, flow, run... does not exist."""


class Conflict(HeadwaterError):
    """The change breaks a uniqueness rule (e.g. a project name already used)."""


class VersionLockError(HeadwaterError):
    """A state update lost a version-lock compare-and-set; re-read and decide."""


class Unauthenticated(HeadwaterError):
    """The server needs an API key, or refused the one given."""


class Forbidden(HeadwaterError):
    """The API key is valid, but its role (read, run, admin) does not allow this mutation."""


class ServerError(HeadwaterError):
    """The server failed unexpectedly (it has logged the details)."""


class ServerUnavailable(HeadwaterError):
    """The server could not be reached, even after retries."""


class RunTimeout(HeadwaterError):
    """`wait_for_flow_run` gave up before the run finished."""


_BY_CODE: dict[str, type[HeadwaterError]] = {
    "NOT_FOUND": NotFound,
    "CONFLICT": Conflict,
    "VERSION_LOCKING_ERROR": VersionLockError,
    "UNAUTHENTICATED": Unauthenticated,
    "FORBIDDEN": Forbidden,
    "INTERNAL_SERVER_ERROR": ServerError,
}


def error_from_response(errors: list[dict]) -> HeadwaterError:
    """The exception for a response's `errors` list (the first error decides the type)."""
    first = errors[0] if errors else {}
    message = str(first.get("message") or "Unknown error")
    code = (first.get("extensions") or {}).get("code")
    return _BY_CODE.get(code or "", BadRequest)(message, code)
