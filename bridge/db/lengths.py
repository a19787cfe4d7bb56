"""The lengths of String(n) columns, for input checks that must agree with the schema."""

from __future__ import annotations

from sqlalchemy import String

from bridge.db.tables import Base


def column_length(table: type[Base], column: str) -> int:
    """The length of a String(n) column, so a limit taken from it cannot drift."""
    kind = table.__table__.c[column].type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{table.__name__}.{column} is not a String(n) column")
    return kind.length
