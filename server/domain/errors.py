"""Domain exceptions: the expected failures, each mapped once to a GraphQL error at the edge.

The message is what the caller sees, so it is written for them; where the Prefect client
recognises a message (`Uniqueness violation.`) it is kept verbatim, or, where a clearer message
names the subject, carried alongside it in `extensions.reason` (the Prefect client matches the
text anywhere in the error).
"""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure. `code` goes to the GraphQL error's `extensions.code`."""

    code = "BAD_REQUEST"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        # Extra, machine-readable word on the error, sent as `extensions.reason`.
        self.reason = reason


class InvalidInput(DomainError):
    """The request is well-formed GraphQL but its values make no sense."""


class NotFound(DomainError):
    """A referenced object does not exist."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """The change would break a uniqueness rule."""

    code = "CONFLICT"


class VersionLockError(DomainError):
    """A state update lost a compare-and-set on the run's version; the client re-reads."""

    code = "VERSION_LOCKING_ERROR"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


UNIQUENESS_VIOLATION = "Uniqueness violation."
FOREIGN_KEY_VIOLATION = "Foreign key violation."


class Forbidden(DomainError):
    """The caller is authenticated, but its key's role does not allow the operation."""

    code = "FORBIDDEN"
