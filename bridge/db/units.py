"""Units of work for the hot paths, written once and run on either backend.

A unit is a generator that yields statements and receives their results: it holds the
logic (what to write, what a result means, when to give up) and no I/O. A runner (see
bridge/db/runner.py) executes what it yields on a plain DB-API connection, with no ORM
between: on SQLite a whole batch of units runs in the driver's thread in one
transaction (group commit), on PostgreSQL each unit runs in a transaction of its own on
asyncpg. An exception raised by a unit rolls back everything that unit wrote, and only
that: the other units of a batch commit.

Statements are written once with `:name` parameters; PostgreSQL's `$n` form is derived
when the statement is defined. Values are Python values: aware datetimes and JSON
(dicts and lists) are stored exactly as the ORM stores them, so rows written here read
the same through SQLAlchemy and the other way round.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Fetch = Literal["none", "row", "rows", "scalar", "count"]
Row = dict[str, Any]

# A parameter is `:name`, never PostgreSQL's `::type` cast.
_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """PostgreSQL's form of a statement: `$1`, `$2`... and the names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAMETER.sub(number, sql), tuple(names)


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement: its text per dialect, what it returns, and which columns need reading.

    `postgresql=None` runs the SQLite text there too; `sqlite=None` (with a PostgreSQL
    text) skips the statement on SQLite, answering None. `json` and `times` name result
    columns that SQLite gives back as text.
    """

    sqlite: str | None
    fetch: Fetch = "none"
    postgresql: str | None = None
    json: frozenset[str] = frozenset()
    times: frozenset[str] = frozenset()
    numbered: tuple[str, tuple[str, ...]] | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        sql: str | None,
        fetch: Fetch = "none",
        *,
        postgresql: str | None = None,
        json: Sequence[str] = (),
        times: Sequence[str] = (),
    ) -> Sql:
        """A statement, with its PostgreSQL form computed once."""
        pg_text = postgresql if postgresql is not None else sql
        if pg_text is None:
            raise ValueError("a statement needs a text for at least one dialect")
        return cls(
            sql,
            fetch,
            postgresql,
            frozenset(json),
            frozenset(times),
            _numbered(pg_text),
        )


@dataclass(frozen=True, slots=True)
class Step:
    """A statement to run with its values, or once per set of values in `many`."""

    sql: Sql
    values: Mapping[str, Any]
    many: Sequence[Mapping[str, Any]] | None = None


# A unit yields steps, is sent each step's result, and returns its own result.
Unit = Generator[Step, Any, T]


def run(sql: Sql, values: Mapping[str, Any] | None = None) -> Step:
    """A step running `sql` once."""
    return Step(sql, values or {})


def run_many(sql: Sql, values: Sequence[Mapping[str, Any]]) -> Step:
    """A step running `sql` once per set of values."""
    return Step(sql, {}, many=values)


@functools.lru_cache(maxsize=256)
def _insert_rows(table: str, columns: tuple[str, ...], count: int, returning: str | None) -> Sql:
    rows = ", ".join(
        "({})".format(", ".join(f":{column}_{i}" for column in columns)) for i in range(count)
    )
    text = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {rows}"
    if returning is None:
        return Sql.of(text)
    return Sql.of(f"{text} RETURNING {returning}", "rows")


def insert_many(
    table: str, rows: Sequence[Mapping[str, Any]], *, returning: str | None = None
) -> Step:
    """Insert `rows` (each with the same columns) in one statement: one round trip on
    PostgreSQL, however many rows. With `returning`, answers rows of that column (in no
    promised order: an increasing key is assigned in the order given, so sort them)."""
    if not rows:
        raise ValueError("nothing to insert")
    columns = tuple(rows[0])
    values = {f"{column}_{i}": row[column] for i, row in enumerate(rows) for column in columns}
    return run(_insert_rows(table, columns, len(rows), returning), values)


def single(step: Step) -> Unit[Any]:
    """A unit of work of one statement, answering its result."""
    result = yield step
    return result


def sqlite_time(value: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime on SQLite (naive, with microseconds)."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is C code, strftime parses its format on every call; same text.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


# Values every driver takes as they are (exact types: a str or int subclass, such as an
# enum member, is converted by `sqlite_value`).
PLAIN = frozenset({str, int, float, bool, bytes, type(None)})


def sqlite_value(value: Any) -> Any:
    """A value as the SQLite driver takes it, stored as the ORM would."""
    if isinstance(value, datetime):
        return sqlite_time(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, Enum):
        return value.value
    return value


def postgres_value(value: Any) -> Any:
    """A value as asyncpg takes it, stored as the ORM would (JSON as text)."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
    return value


def read_sqlite_row(sql: Sql, row: Row) -> Row:
    """A SQLite row with its JSON and time columns read back into Python values."""
    for name in sql.json:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = json.loads(value)
    for name in sql.times:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return row


def read_postgres_row(sql: Sql, row: Row) -> Row:
    """A PostgreSQL row with its JSON columns read (when the connection kept them as text)."""
    for name in sql.json:
        value = row.get(name)
        if isinstance(value, str):
            row[name] = json.loads(value)
    return row
