"""Rows to values: a dataclass is built from the columns named like its fields."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any, TypeVar

T = TypeVar("T")


def from_row(cls: type[T], row: sqlite3.Row, **override: Any) -> T:
    """Build ``cls`` from the row's columns of the same names; ``override`` replaces some."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values = {name: override[name] if name in override else row[name] for name in names}
    return cls(**values)


def insert(conn: sqlite3.Connection, table: str, value: Any, **extra: Any) -> None:
    """Insert a dataclass as a row: its fields, plus ``extra`` columns, by name."""
    row = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    row.update(extra)
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    conn.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(row.values()))
