"""SQLite through one door, with group commit.

One writer thread owns the write connection. Every write transaction goes through
``Database.run(name, fn)`` (or ``run_sync`` from synchronous code): the caller's ``fn(conn)`` is
queued, and the writer runs it inside a transaction, then answers the caller. This is also the
one place that times transactions for metrics (Synapse's ``runInteraction``).

**Group commit.** The writer takes every transaction waiting in its queue (up to
``MAX_BATCH``), opens one ``BEGIN IMMEDIATE``, runs each in its own SAVEPOINT (a failing one is
rolled back to its savepoint and gets its exception; the others are unaffected), then COMMITs
once: one fsync for the whole batch. No caller is answered before the COMMIT that holds its
writes has returned, so an answered request is durable exactly as with one commit per request;
under load, many requests share an fsync. A failed COMMIT fails every transaction of the batch.

Reads that need no write lock go through ``Database.read(name, fn)`` on a reader thread with
its own connection: WAL lets them run beside the writer and see the last committed state.

Durability: WAL with ``synchronous=FULL`` by default. Foreign keys are on. The schema is
versioned with ``PRAGMA user_version`` and migrated forward only; a node refuses a database
newer than itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from node.store.schema import MIGRATIONS, SCHEMA_VERSION

logger = logging.getLogger(__name__)

T = TypeVar("T")
Observer = Callable[[str, float], None]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
MAX_BATCH = 256


class SchemaTooNew(RuntimeError):
    pass


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}")
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=30.0, cached_statements=512
    )
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


class _Job:
    __slots__ = ("fn", "name", "ok", "resolve", "value")

    def __init__(
        self,
        name: str,
        fn: Callable[[sqlite3.Connection], Any],
        resolve: Callable[[bool, Any], None],
    ) -> None:
        self.name = name
        self.fn = fn
        self.resolve = resolve
        self.ok = False
        self.value: Any = None


class Database:
    """The node's SQLite file: one writer thread (group commit), one reader thread."""

    def __init__(self, path: Path, synchronous: str = "FULL", observer: Observer | None = None):
        self.path = Path(path)
        self._writer = connect(self.path, synchronous)
        migrate(self._writer)
        self._reader = connect(self.path, synchronous)
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-reader")
        self._observer = observer
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="db-writer", daemon=True)
        self._thread.start()
        self._closed = False

    def set_observer(self, observer: Observer | None) -> None:
        self._observer = observer

    # The writer ---------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[_Job]) -> None:
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            for job in batch:
                job.resolve(False, exc)
            return
        alone = len(batch) == 1  # a lone job needs no savepoint: ROLLBACK undoes it
        for job in batch:
            started = time.perf_counter()
            if not alone:
                conn.execute("SAVEPOINT job")
            try:
                job.value = job.fn(conn)
                job.ok = True
                if not alone:
                    conn.execute("RELEASE job")
            except BaseException as exc:
                job.value = exc
                if alone:
                    conn.execute("ROLLBACK")
                    if self._observer is not None:
                        self._observer(job.name, time.perf_counter() - started)
                    job.resolve(False, exc)
                    return
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            if self._observer is not None:
                self._observer(job.name, time.perf_counter() - started)
        started = time.perf_counter()
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in batch:
                job.resolve(False, exc)
            return
        if self._observer is not None:
            self._observer("commit", time.perf_counter() - started)
        for job in batch:
            job.resolve(job.ok, job.value)

    async def run(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write transaction; answered once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(ok: bool, value: Any) -> None:
            if not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

        def resolve(ok: bool, value: Any) -> None:
            loop.call_soon_threadsafe(settle, ok, value)

        self._queue.put(_Job(name, fn, resolve))
        return await future

    def run_sync(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write transaction from synchronous code (the CLI, start-up), waiting for its commit."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def resolve(ok: bool, value: Any) -> None:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

        self._queue.put(_Job(name, fn, resolve))
        return future.result()

    # The reader ---------------------------------------------------------------------------

    async def read(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only transaction (a consistent snapshot) on the reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._timed_read, name, fn)

    def _timed_read(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        started = time.perf_counter()
        self._reader.execute("BEGIN")
        try:
            return fn(self._reader)
        finally:
            self._reader.execute("ROLLBACK")
            if self._observer is not None:
                self._observer(name, time.perf_counter() - started)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._read_pool.shutdown(wait=True)
        self._writer.close()
        self._reader.close()
