"""Rows to values: a dataclass is built from the columns named like its fields."""

from __future__ import annotations

import sqlite3
from typing import Any, TypeVar

from node.domain.model import field_names

T = TypeVar("T")


def ahead(conn: Any, sql: str, params: tuple[Any, ...]) -> None:
    """Announce a read the transaction will make soon, before it writes the tables read: on
    PostgreSQL it is sent now (``PgConnection.prefetch``), so several independent reads share
    one round trip; on SQLite, nothing (a read there costs microseconds). The read itself is
    then made as usual, with the same statement and parameters, and gets the same rows (a
    write to its tables in between drops what was sent ahead)."""
    send = getattr(conn, "prefetch", None)
    if send is not None:
        send(sql, params)


# "No limit" for ``LIMIT ?``: SQLite reads a negative limit as none and refuses NULL;
# PostgreSQL refuses a negative one. Both take this.
NO_LIMIT = 2**63 - 1


def limit_of(limit: int) -> int:
    """A store function's ``limit`` (-1: all) as both engines read ``LIMIT ?``."""
    return NO_LIMIT if limit < 0 else limit


def from_row(cls: type[T], row: sqlite3.Row, **override: Any) -> T:
    """Build ``cls`` from the row's columns of the same names; ``override`` replaces some."""
    if override:
        return cls(
            **{name: override[name] if name in override else row[name] for name in field_names(cls)}
        )
    return cls(*(row[name] for name in field_names(cls)))


def insert(conn: sqlite3.Connection, table: str, value: Any, **extra: Any) -> None:
    """Insert a dataclass as a row: its fields, plus ``extra`` columns, by name."""
    row = {name: getattr(value, name) for name in field_names(type(value))}
    row.update(extra)
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))
