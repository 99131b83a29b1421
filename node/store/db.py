"""SQLite through one door.

One writer thread owns the write connection; every write transaction goes through
``Database.run(name, fn)``, which runs ``fn(conn)`` inside ``BEGIN IMMEDIATE … COMMIT`` on that
thread, rolls back on any exception, and times the transaction by name for metrics (the
pattern of Synapse's ``runInteraction``). Reads that need no write lock go through
``Database.read(name, fn)`` on a separate reader thread and connection: WAL lets them run
beside the writer and see the last committed state.

Durability: WAL with ``synchronous=FULL`` by default, so an answered request survives a crash
of the process or the machine. Foreign keys are on. The schema is versioned with
``PRAGMA user_version`` and migrated forward only; a node refuses a database newer than itself.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from node.store.schema import MIGRATIONS, SCHEMA_VERSION

logger = logging.getLogger(__name__)

T = TypeVar("T")
Observer = Callable[[str, float], None]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


class SchemaTooNew(RuntimeError):
    pass


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema forward to SCHEMA_VERSION; return the version it started at."""
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"database schema version {current} is newer than this node's {SCHEMA_VERSION}; "
            "upgrade the node, never downgrade a database"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        logger.info("migrated database to schema version %d", version)
    return current


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], begin: str) -> T:
    conn.execute(begin)
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class Database:
    """The node's SQLite file: one writer thread, one reader thread."""

    def __init__(self, path: Path, synchronous: str = "FULL", observer: Observer | None = None):
        self.path = Path(path)
        self._writer = connect(self.path, synchronous)
        migrate(self._writer)
        self._reader = connect(self.path, synchronous)
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-reader")
        self._observer = observer
        self._lock = threading.Lock()  # guards run_sync against the writer thread
        self._closed = False

    def set_observer(self, observer: Observer | None) -> None:
        self._observer = observer

    def _timed(
        self, name: str, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], begin: str
    ) -> T:
        start = time.perf_counter()
        try:
            with self._lock:
                return _transaction(conn, fn, begin)
        finally:
            if self._observer is not None:
                self._observer(name, time.perf_counter() - start)

    async def run(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write transaction on the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._write_pool, self._timed, name, self._writer, fn, "BEGIN IMMEDIATE"
        )

    async def read(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only transaction (a consistent snapshot) on the reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._timed_read, name, fn)

    def _timed_read(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        start = time.perf_counter()
        try:
            return _transaction(self._reader, fn, "BEGIN")
        finally:
            if self._observer is not None:
                self._observer(name, time.perf_counter() - start)

    def run_sync(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write transaction from synchronous code (the CLI), outside any event loop."""
        return self._timed(name, self._writer, fn, "BEGIN IMMEDIATE")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        self._writer.close()
        self._reader.close()
