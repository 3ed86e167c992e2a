"""Whether a failure means the database is not there right now (rather than a bad statement).

Requests answer it with 503 and `DATABASE_UNAVAILABLE` (server/graphql/errors.py); loop services
log it as one line, not a traceback a pass (services/loop.py).
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATEs of a server that is not there right now: connection exceptions (08...), and one
# shutting down, crashed or still starting up (57P01-57P03, e.g. just after a restart).
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def database_unreachable(error: BaseException) -> bool:
    """The database could not be reached or dropped the connection: nothing was applied."""
    if isinstance(error, (OperationalError, InterfaceError, PoolTimeout, ConnectionError, OSError)):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # asyncpg's "cannot connect now" arrives as a generic driver error: look at the SQLSTATE
    # anywhere in the chain of causes.
    cause: BaseException | None = error
    for _ in range(5):
        if cause is None:
            break
        sqlstate = str(getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None) or "")
        if sqlstate.startswith(UNAVAILABLE_SQLSTATES):
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__
    return False
