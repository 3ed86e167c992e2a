"""Turns every failure into a GraphQL error the client understands, in one place.

Expected failures (domain exceptions, input coercion and validation errors) keep their message
and get an `extensions.code`. Database constraint errors become Prefect Server's messages.
Anything else is logged with its traceback and answered with a generic message, never the
traceback itself.
"""

from __future__ import annotations

import logging
import re
from typing import Sequence

from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, IntegrityError

from headwater.server.db.availability import database_unreachable
from headwater.server.domain.errors import FOREIGN_KEY_VIOLATION, UNIQUENESS_VIOLATION, DomainError

logger = logging.getLogger("headwater.graphql")

INTERNAL_ERROR = "An internal error occurred; it has been logged on the server."
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
TIMEOUT = "TIMEOUT"
# SQLSTATE query_canceled: raised by the statement timeout (and by an operator's pg_cancel_backend).
QUERY_CANCELED = "57014"


def _sqlstate(error: DBAPIError) -> str:
    """The Postgres SQLSTATE behind a driver error (asyncpg wraps it in a generic class)."""
    orig = error.orig
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def _integrity_message(error: IntegrityError) -> str:
    sqlstate = _sqlstate(error)
    text = str(error.orig)
    if sqlstate == "23505" or "UniqueViolation" in text or "unique constraint" in text:
        return UNIQUENESS_VIOLATION
    if sqlstate == "23503" or "ForeignKeyViolation" in text or "foreign key" in text:
        return FOREIGN_KEY_VIOLATION
    return "The change breaks a database constraint."


# asyncpg's own wording when it cannot encode a bound value: `invalid input for query argument
# $9: datetime.datetime(1, 1, ... (date value out of range)`. Only the parenthesised reason is
# meant for people; the position and the repr are the driver's.
_DRIVER_ENCODING_ERROR = re.compile(r"^invalid input for query argument \$\d+.*?: .* \((?P<reason>[^()]*)\)$")
# Driver internals a message must never show.
_INTERNALS = re.compile(r"\$\d|query argument|datetime\.|Decimal\(|UUID\(|asyncpg|sqlalchemy", re.IGNORECASE)
_NUL = "a text value contains a NUL character (\\u0000), which the database cannot store"
_FRIENDLY_REASONS = (
    ("0x00", _NUL),  # text: `invalid byte sequence for encoding "UTF8": 0x00`
    ("unsupported unicode escape sequence", _NUL),  # jsonb refuses \u0000 the same way
    ("date value out of range", "a date or time is out of range"),
    ("out of int32 range", "a number is out of range for a 32-bit integer"),
    ("out of int64 range", "a number is out of range for a 64-bit integer"),
    ("index row", "a value is too large for the database to index"),
)


def _invalid_value_message(error: DBAPIError, path: Sequence[str | int] | None = None) -> str:
    """What was wrong with a value the database refused, in the user's terms, and where.

    Never the driver's text with bind positions (`$9`) or Python reprs.
    """
    text = (str(error.orig).strip() or "rejected by the database").splitlines()[0]
    driver = _DRIVER_ENCODING_ERROR.match(text)
    reason = driver.group("reason") if driver else text
    for marker, friendly in _FRIENDLY_REASONS:
        if marker in reason.lower():
            reason = friendly
            break
    else:
        if _INTERNALS.search(reason):
            reason = "a value is out of range or malformed for the database"
    where = f" in `{'.'.join(str(part) for part in path)}`" if path else ""
    return f"Invalid value{where}: {reason}."


def statement_timed_out(error: BaseException) -> bool:
    return (
        isinstance(error, DBAPIError)
        and _sqlstate(error) == QUERY_CANCELED
        and "statement timeout" in str(error.orig)
    )


def _timeout_message(statement_timeout_seconds: float | None) -> str:
    limit = f" of {statement_timeout_seconds:g} s" if statement_timeout_seconds else ""
    return (
        f"The request took longer than the server's statement timeout{limit} "
        "(HEADWATER_STATEMENT_TIMEOUT_SECONDS); nothing was changed."
    )


def classify(error: GraphQLError, statement_timeout_seconds: float | None = None) -> tuple[str, str, bool]:
    """(message, code, is_unexpected) for one error produced while executing a request."""
    original = error.original_error
    if original is None:
        return error.message, "GRAPHQL_VALIDATION_FAILED", False
    if isinstance(original, DomainError):
        return original.message, original.code, False
    if statement_timed_out(original):
        # The transaction is rolled back; the message names the setting that decides.
        logger.warning("statement timeout: %s", str(getattr(original, "statement", "") or "")[:200])
        return _timeout_message(statement_timeout_seconds), TIMEOUT, False
    if database_unreachable(original):
        logger.warning("database unavailable: %s", original)
        return "The database is unavailable; nothing was changed. Retry shortly.", DATABASE_UNAVAILABLE, False
    if isinstance(original, IntegrityError):
        return _integrity_message(original), "CONFLICT", False
    if isinstance(original, DBAPIError) and _sqlstate(original)[:2] in ("22", "54"):
        # Class 22 "data exception" (a value Postgres cannot take) or 54 "program limit exceeded"
        # (a value too large to index): the input is at fault, whatever it was.
        return _invalid_value_message(original, error.path), "BAD_REQUEST", False
    if isinstance(original, GraphQLError):
        # The outer message: for a variable it names it and the path inside it
        # (`Variable '$input' has invalid value at .scheduled_start_time: ...`).
        return error.message, "BAD_REQUEST", False
    if isinstance(original, (ValueError, TypeError)) and error.path is None:
        # Raised by a scalar while coercing an argument: the message names the bad value.
        return error.message, "BAD_REQUEST", False
    return INTERNAL_ERROR, "INTERNAL_SERVER_ERROR", True


def format_error(
    error: GraphQLError, operation: str | None = None, statement_timeout_seconds: float | None = None
) -> dict:
    """The JSON form of one error, logging unexpected ones with context."""
    message, code, unexpected = classify(error, statement_timeout_seconds)
    if unexpected:
        logger.error(
            "unexpected error in %s at %s", operation or "request", error.path, exc_info=error.original_error
        )
    formatted: dict = {"message": message, "extensions": {"code": code}}
    if isinstance(error.original_error, DomainError) and error.original_error.reason:
        formatted["extensions"]["reason"] = error.original_error.reason
    if error.locations:
        formatted["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        formatted["path"] = error.path
    return formatted


def request_error(message: str, code: str = "BAD_REQUEST") -> dict:
    """A response body for a request that never reached the executor (bad JSON, too large)."""
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}
