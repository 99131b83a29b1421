"""A PostgreSQL connection with the face the store expects of SQLite's (node/store/pg.py
says why and how the engine is used): rows read by name or position, ``?`` placeholders
rewritten once per statement, NUMERIC fen as ``int``, pipeline mode in a batch, reads sent
ahead; and connecting, with the password from its 0600 file."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg.adapt import Buffer, Loader

from node.files import read_private
from node.store.db import DatabaseUnreachable
from node.store.pgpipe import SQL_TOKENS, PgPipeline, Prepared, Slot


class PgRowBase(tuple):  # type: ignore[type-arg]
    """A row read by position or by column name, like ``sqlite3.Row``."""

    _index: ClassVar[dict[str, int]] = {}
    _names: ClassVar[tuple[str, ...]] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.cache
def _row_class(raw_names: tuple[bytes, ...]) -> type[PgRowBase]:
    names = tuple(n.decode() for n in raw_names)
    return type(
        "PgRow",
        (PgRowBase,),
        {"__slots__": (), "_names": names, "_index": {n: i for i, n in enumerate(names)}},
    )


def row_class_of(result: Any) -> Callable[[Sequence[Any]], Any]:
    """The row class of a result, from its column names as libpq has them (a cursor's
    ``description`` would build a Column object per column per result: measured, a quarter
    of a redemption's time in the driver)."""
    if result is None or not result.nfields:
        return tuple
    return _row_class(tuple(result.fname(i) for i in range(result.nfields)))


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    return row_class_of(cursor.pgresult)


@functools.cache
def pg_sql(sql: str) -> str:
    """A store statement in psycopg's style: ``?`` → ``%s``, ``:name`` → ``%(name)s``, a
    literal ``%`` doubled; quoted text and ``::`` casts untouched. Once per statement text."""

    def one(m: re.Match[str]) -> str:
        t = m.group(0)
        if t == "?":
            return "%s"
        if t == "%":
            return "%%"
        if t.startswith(":") and t != "::":
            return f"%({t[1:]})s"
        return t

    return SQL_TOKENS.sub(one, sql)


class _IntNumeric(Loader):
    """``SUM`` of a BIGINT column is NUMERIC in PostgreSQL: fen come back as ``int`` (never a
    Decimal, never a float), as they do from SQLite."""

    def load(self, data: Buffer) -> Any:
        text = bytes(data).decode()
        if "." in text or "e" in text.lower() or text in ("NaN", "Infinity", "-Infinity"):
            return Decimal(text)
        return int(text)


# Statements after which a read sent ahead still holds: reads, and marking a savepoint (a
# ROLLBACK TO, which undoes writes, drops them like a write).
_KEEPS_AHEAD = frozenset({"SELECT", "SAVEPO", "RELEAS"})
_WRITES = re.compile(r"\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)
_READS = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)", re.IGNORECASE)
# What a write to a table also writes, through the schema's triggers (node/store/pgschema.py;
# tests/test_pg.py holds this to it): the running totals.
TRIGGERED: dict[str, frozenset[str]] = {
    "vouchers": frozenset({"voucher_totals"}),
    "holds": frozenset({"voucher_totals"}),
}


@functools.cache
def _tables_read(sql: str) -> frozenset[str]:
    return frozenset(t.lower() for t in _READS.findall(sql))


@functools.cache
def _tables_written(sql: str) -> frozenset[str] | None:
    """The tables a statement writes (with what its triggers write), None if not a plain
    INSERT, UPDATE or DELETE (then it may change anything)."""
    m = _WRITES.match(sql)
    if m is None:
        return None
    table = m.group(1).lower()
    return frozenset({table}) | TRIGGERED.get(table, frozenset())


class PgConnection:
    """The part of ``sqlite3.Connection`` the store uses, on a psycopg connection.

    In a batch the write connection is in libpq's pipeline mode (``pipe``, node/store/pgpipe.py):
    a statement is sent without waiting for its answer, and the round trip is paid only where
    the code reads a result (a fetch, a row count) and at the end of each transaction. A write
    that the books refuse (a CHECK, a trigger) then raises at that next read or at the end of
    its transaction, which fails and rolls back the same way."""

    __slots__ = ("_ahead", "pipe", "prepared", "raw")
    engine = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.pipe: PgPipeline | None = None
        self.prepared = Prepared()
        self._ahead: dict[tuple[str, Any], Slot] = {}

    def pipeline(self) -> PgPipeline:
        """This connection in pipeline mode, for one batch (``with``)."""
        return PgPipeline(self.raw, self.prepared, row_class_of)

    def prefetch(self, sql: str, params: tuple[Any, ...]) -> None:
        """Send a read now (``node.store.rows.ahead``): the same statement with the same
        parameters, executed next in this transaction before any write, is answered by it.
        A write first drops what was sent ahead of the tables it writes and not yet asked for
        (any other statement, all of it), so a read answered ahead is always what it would
        have been at its own place."""
        if self.pipe is not None and (sql, params) not in self._ahead:
            self._ahead[(sql, params)] = self.pipe.send(sql, params)

    def forget_ahead(self) -> None:
        self._ahead.clear()

    def _drop_ahead(self, sql: str) -> None:
        written = _tables_written(sql)
        if written is None:
            self._ahead.clear()
            return
        for key in [k for k in self._ahead if _tables_read(k[0]) & written]:
            del self._ahead[key]

    def execute(self, sql: str, params: Any = ()) -> Any:
        if self._ahead:
            sent = self._ahead.pop((sql, params), None) if isinstance(params, tuple) else None
            if sent is not None:
                return sent
            if sql.lstrip()[:6].upper() not in _KEEPS_AHEAD:
                self._drop_ahead(sql)  # a write: what was read ahead of it may not hold
        if self.pipe is not None:
            return self.pipe.send(sql, params)
        return self.raw.execute(pg_sql(sql), params or None)

    def executemany(self, sql: str, seq: Any) -> Any:
        if self.pipe is not None:
            for params in seq:
                self.execute(sql, params)
            return None
        cur = self.raw.cursor()
        cur.executemany(pg_sql(sql), seq)
        return cur

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def password_of(password_file: Path | None) -> str | None:
    """The role's password from its 0600 file (``[storage] password_file``), else None: libpq
    then uses ``PGPASSWORD`` or ``PGPASSFILE`` as usual. Never logged."""
    if password_file is None:
        return None
    return read_private(password_file).strip()


def connect(dsn: str, password: str | None, autocommit: bool = True) -> psycopg.Connection[Any]:
    try:
        # application_name names the node in pg_stat_activity; a password from the file
        # goes in as a keyword, never into a string that could be logged.
        extra: dict[str, Any] = {"application_name": "suanli"}
        if password:
            extra["password"] = password
        raw = psycopg.connect(dsn, autocommit=autocommit, row_factory=_row_factory, **extra)
    except psycopg.OperationalError as exc:
        # libpq's message names the host and the reason, never the password.
        raise DatabaseUnreachable(f"cannot reach the database: {first_line(exc)}") from None
    raw.adapters.register_loader("numeric", _IntNumeric)
    return raw


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
