"""The drivers' own errors, as SQLAlchemy's: what units of work raise looks like the ORM's.

Units run on the drivers without SQLAlchemy in between (bridge/db/runner.py), so a
refused statement raises `sqlite3.IntegrityError` or `asyncpg.UniqueViolationError`
where the ORM raises `sqlalchemy.exc.IntegrityError`. Translated, every caller reads one
family: the API answers a duplicate 409, a bad value 422 and an outage 503
(bridge/api/errors.py), and a transaction aborted to break a deadlock is run again
(bridge/db/retry.py), whichever path raised it.
"""

from __future__ import annotations

import sqlite3

import asyncpg
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

# SQLSTATE classes: 22 a data exception (too long, out of range), 23 an integrity
# constraint violation (a duplicate key); anything else (a deadlock, a lost connection,
# a server shutting down) is the store's trouble, not the request's.
_BY_CLASS: dict[str, type[DBAPIError]] = {"22": DataError, "23": IntegrityError}


def as_dbapi_error(exc: BaseException) -> DBAPIError | None:
    """SQLAlchemy's error for a driver's `exc` (keeping it as `orig`), or None for any
    other exception (a unit's own, such as ConversationNotFound)."""
    if isinstance(exc, sqlite3.Error):
        # Picks SQLAlchemy's class of the same name (IntegrityError, OperationalError...).
        translated = DBAPIError.instance(None, None, exc, sqlite3.Error)
        return (
            translated if isinstance(translated, DBAPIError) else OperationalError(None, None, exc)
        )
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return _BY_CLASS.get(sqlstate[:2], OperationalError)(None, None, exc)
    if isinstance(exc, asyncpg.exceptions.DataError):
        # A value asyncpg could not encode for its column, refused before it was sent.
        return DataError(None, None, exc)
    if isinstance(exc, asyncpg.InterfaceError | ConnectionError):
        return OperationalError(None, None, exc)
    return None
