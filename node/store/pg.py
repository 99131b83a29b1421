"""PostgreSQL through the same door as SQLite (docs/operations.md, "Choosing an engine").

A city that already runs PostgreSQL (or openGauss, KingbaseES, PolarDB) with replication,
failover and backups its DBAs know can keep the node's books there. The services and the store
functions are the same for both engines: every store function takes a connection and calls
``conn.execute(sql, params)`` with ``?`` placeholders, exactly as on SQLite, and reads rows by
column name or position. ``PgConnection`` gives a psycopg connection that face. Statements are
written in the subset both engines speak (``INSERT … ON CONFLICT``, ``RETURNING``, ``COALESCE``);
the few that cannot be (a month from a timestamp) are chosen per engine
(``node.store.execution.month_sql``).
The placeholder style is rewritten once per distinct statement text (``pg_sql``, cached for the
process) and psycopg prepares a statement on the server after its fifth use.

**Driver.** psycopg 3: the maintained successor of psycopg2, built on libpq (so multi-host
connection strings, ``target_session_attrs``, ``PGPASSFILE`` and every libpq setting a DBA
knows work unchanged), with server-side prepared statements and a binary wheel. asyncpg was the
other candidate; it reimplements the protocol without libpq (no multi-host failover strings as
libpq has them) and is async-only, while the store's functions are synchronous by design.

**The door, as on SQLite.** One write connection runs batches of waiting transactions (group
commit): ``BEGIN``, the city's write lock, each transaction in its own SAVEPOINT, one ``COMMIT``.
A caller is answered only after the COMMIT that holds its writes returned, and with
``synchronous_commit = on`` (and a synchronous standby) PostgreSQL returns from COMMIT only when
the WAL is durable (on the standby too). Unlike SQLite, every statement is a round trip, so the
batch runs on the writer's own thread, never on the event loop, and reads run on a reader
thread; a long scan runs its fetches on a thread of its own.

**Round trips.** On this project's 2-core machine a round trip to a PostgreSQL on the same
machine costs about 170 µs over TCP, as much as a whole SQLite transaction. So a batch runs in
libpq's pipeline mode, driven by ``node/store/pgpipe.py`` (a write is sent without waiting for
its answer; the buffer goes out in one send where the code reads a result and at the end of
each transaction), and a transaction announces the reads it makes (``node.store.rows.ahead``),
which are then sent together. A batch of one sends its COMMIT with its own statements; in a
larger batch each transaction's writes are answered (a Sync) before the next begins, so that a
refusal of the books is that transaction's alone, and the savepoints of the jobs that succeed
are left to nest (the COMMIT ends them). docs/benchmarks.md has what each step bought.

**One writer per city.** Every write transaction, from the serving node or from a command such as
``suanli check``, first takes ``pg_advisory_xact_lock`` on the city's write key: writers of one
database queue on it as SQLite's writers queue on ``BEGIN IMMEDIATE``, so a check made inside a
transaction holds until its COMMIT.

**The lease (who is active).** A serving node holds a session-level advisory lock (the lease key)
*on its write connection*. The lock and the connection live and die together: if the node dies,
the database ends its session and frees the lock (at once when the process ends, within the
server's TCP keepalive time when its machine vanishes), and a standby node that asks for the lock
(``PgLease.try_acquire``) gets it. A node whose write connection breaks has lost the lease with
it and can never write on it again: the door refuses every later transaction, and ``suanli
serve`` (which asks ``alive`` every second) exits so that its supervisor starts it again as a
standby. It does not reconnect and carry on: another node may have been active meanwhile, and
what this one holds in memory would be stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from node import errors
from node.store.db import DatabaseUnreachable, _Job
from node.store.pgconn import (
    PgConnection,
    connect,
    first_line,
    pg_sql,
)
from node.store.pgpipe import PgPipeline
from node.store.pgschema import LEASE_KEY, LOCK_SPACE, WRITE_KEY, migrate

logger = logging.getLogger(__name__)

T = TypeVar("T")
Observer = Callable[[str, float], None]

MAX_BATCH = 32
SCAN_CHUNK = 1_000


class PgLease:
    """The lease of the active node: ``pg_try_advisory_lock`` on what becomes its write
    connection. The same face as ``node.files.FolderLock``: ``try_acquire`` returns None once
    the lease is ours, else who holds it."""

    def __init__(self, dsn: str, password: str | None) -> None:
        self._dsn = dsn
        self._password = password
        self._probe: psycopg.Connection[Any] | None = None  # kept between asks
        self.conn: psycopg.Connection[Any] | None = None  # the lease's, once ours

    def try_acquire(self) -> str | None:
        """Ask once (a connection is kept for the next ask): None if the lease is now ours,
        else where its holder serves, as it wrote it in the books."""
        try:
            if self._probe is None or self._probe.broken or self._probe.closed:
                self._probe = connect(self._dsn, self._password)
            raw = self._probe
            row = raw.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, LEASE_KEY)
            ).fetchone()
            if row is not None and row[0]:
                self.conn, self._probe = raw, None
                return None
            holder = raw.execute("SELECT value FROM node_meta WHERE key = 'active_at'").fetchone()
        except DatabaseUnreachable as exc:
            return f"unknown ({exc})"
        except psycopg.Error as exc:
            self._drop_probe()
            return f"unknown ({first_line(exc)})"
        return str(holder[0]) if holder else "another node"

    def _drop_probe(self) -> None:
        if self._probe is not None:
            with contextlib.suppress(psycopg.Error):
                self._probe.close()
            self._probe = None

    def acquire(self) -> None:
        holder = self.try_acquire()
        if holder is not None:
            raise errors.NotActive(
                f"another node of this city holds the database lease ({holder}); "
                "start this one with --standby, or stop the other"
            )

    def release(self) -> None:
        self._drop_probe()
        if self.conn is not None:
            self.conn.close()  # the session ends and the lock with it
            self.conn = None


class PgDatabase:
    """The city's books in PostgreSQL: one write connection (group commit, holding the lease
    when the node serves), one reader connection, scans on connections of their own."""

    engine = "postgresql"

    def __init__(
        self,
        dsn: str,
        password: str | None = None,
        observer: Observer | None = None,
        lease: PgLease | None = None,
    ) -> None:
        self.dsn = dsn
        self.path = Path()  # no file: the SQLite-only tools refuse a PostgreSQL node
        self._password = password
        if lease is not None and lease.conn is not None:
            raw, lease.conn = lease.conn, None
        else:
            raw = connect(dsn, password)
        self._writer = PgConnection(raw)
        self.schema_version = migrate(self._writer)
        self._reader = PgConnection(connect(dsn, password, autocommit=True))
        self._observer = observer
        self._lost: str | None = None
        self._write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-writer")
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-reader")
        self._lock = threading.Lock()  # the write connection: a batch, or a run_sync
        self._waiting: list[_Job] = []
        self._busy = False
        self._closed = False

    def set_observer(self, observer: Observer | None) -> None:
        self._observer = observer

    def connect_readonly(self) -> PgConnection:
        """A connection for the metrics' scrape-time reads (each statement its own snapshot)."""
        return PgConnection(connect(self.dsn, self._password))

    # The writer ---------------------------------------------------------------------------

    async def run(self, name: str, fn: Callable[[Any], T]) -> T:
        """Run a write transaction; answered once it is committed (durably)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append(_Job(name, fn, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._start_batch, loop)
        return await future

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if not batch:
            self._busy = False
            return
        done = loop.run_in_executor(self._write_pool, self._run_batch, batch)
        done.add_done_callback(lambda f: self._finish(loop, batch, f))

    def _begin(self) -> None:
        self._writer.raw.execute(f"BEGIN; SELECT pg_advisory_xact_lock({LOCK_SPACE}, {WRITE_KEY})")

    def _run_batch(self, batch: list[_Job]) -> list[tuple[_Job, bool, Any]]:
        """On the writer thread: the batch's transactions, then one COMMIT, in pipeline mode
        (``PgConnection``): each transaction ends with a sync, so a refusal of the books is
        its own transaction's, and is rolled back to its savepoint (or, alone, entirely)."""
        with self._lock:
            self._check_lost()
            conn = self._writer
            alone = len(batch) == 1
            try:
                with conn.pipeline() as pipe:
                    conn.pipe = pipe
                    try:
                        return self._pipelined(conn, pipe, batch, alone)
                    finally:
                        conn.pipe = None
                        conn.forget_ahead()
            except BaseException as exc:
                failure = self._failed(exc)
                return [(job, False, failure) for job in batch]

    def _pipelined(
        self, conn: PgConnection, pipe: PgPipeline, batch: list[_Job], alone: bool
    ) -> list[tuple[_Job, bool, Any]]:
        pipe.send("BEGIN")
        pipe.send("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_SPACE, WRITE_KEY))
        done: list[tuple[_Job, bool, Any]] = []
        for job in batch:
            started = time.perf_counter()
            if not alone:
                # Savepoints nest: a job's is left open when it succeeds (one statement
                # fewer; the COMMIT ends them all), and ROLLBACK TO goes to the newest.
                pipe.send("SAVEPOINT job")
            try:
                value = job.context.run(job.fn, conn)
                if alone:
                    # Alone, its COMMIT goes with it: a refusal fails that sync, and the
                    # transaction is rolled back below (one round trip fewer).
                    pipe.send("COMMIT")
                pipe.sync()  # this transaction's writes answered: a refusal is its own
                done.append((job, True, value))
            except Exception as exc:
                if self._broken():
                    raise
                # (psycopg's own error for a refusal of the books, as sqlite3's on SQLite:
                # the transports answer anything not a service error as ``internal``)
                done.append((job, False, exc))
                _clear_abort(pipe)
                if not alone:
                    pipe.send("ROLLBACK TO job")
                    pipe.send("RELEASE job")
                    pipe.sync()
                else:
                    pipe.send("ROLLBACK")  # (after a failed COMMIT, a harmless no-op)
                    pipe.sync()
                    return done
            conn.forget_ahead()
            if self._observer is not None:
                self._observer(job.name, time.perf_counter() - started)
        if alone:
            return done
        started = time.perf_counter()
        pipe.send("COMMIT")
        pipe.sync()
        if self._observer is not None:
            self._observer("commit", time.perf_counter() - started)
        return done

    def _broken(self) -> bool:
        return bool(self._writer.raw.broken or self._writer.raw.closed)

    def _failed(self, exc: BaseException) -> BaseException:
        """A failure of the batch itself (not of one transaction): the COMMIT's outcome, if it
        was sent, is unknown, so nobody of the batch is told it succeeded."""
        if self._broken():
            self._lose(f"the write connection broke: {first_line(exc)}")
            return errors.NotActive(
                "this node lost its database connection and with it the lease: it is no longer "
                "the active node of its city; retry, and the active one will answer"
            )
        try:
            if self._writer.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self._writer.raw.execute("ROLLBACK")
        except psycopg.Error:
            self._lose("the write connection broke while rolling back")
        return exc

    def _lose(self, why: str) -> None:
        if self._lost is None:
            self._lost = why
            logger.error("lost the database lease: %s; this node stops writing", why)

    def _check_lost(self) -> None:
        if self._lost is not None:
            raise errors.NotActive(
                "this node lost its database lease and no longer writes; retry, and the active "
                "one will answer"
            )

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Job],
        result: asyncio.Future[list[tuple[_Job, bool, Any]]],
    ) -> None:
        exc = result.exception()
        done = [(job, False, exc) for job in batch] if exc is not None else result.result()
        for job, ok, value in done:
            if job.future.done():
                continue
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        if self._waiting:
            loop.call_soon(self._start_batch, loop)
        else:
            self._busy = False

    def run_sync(self, name: str, fn: Callable[[Any], T]) -> T:
        """A write transaction from synchronous code (the CLI, start-up), committed on return."""
        with self._lock:
            self._check_lost()
            started = time.perf_counter()
            try:
                self._begin()
                value = fn(self._writer)
                self._writer.raw.execute("COMMIT")
                return value
            except BaseException as exc:
                failure = self._failed(exc)
                if failure is exc:
                    raise
                raise failure from exc
            finally:
                if self._observer is not None:
                    self._observer(name, time.perf_counter() - started)

    # The readers --------------------------------------------------------------------------

    async def read(self, name: str, fn: Callable[[Any], T]) -> T:
        """A read-only transaction (one snapshot) on the reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_pool, self._timed_read, name, fn)

    def _timed_read(self, name: str, fn: Callable[[Any], T]) -> T:
        started = time.perf_counter()
        raw = self._reader.raw
        if raw.broken or raw.closed:
            self._reader = PgConnection(connect(self.dsn, self._password))
            raw = self._reader.raw
        raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            return fn(self._reader)
        finally:
            if not raw.broken and not raw.closed:
                raw.execute("ROLLBACK")
            if self._observer is not None:
                self._observer(name, time.perf_counter() - started)

    async def scan(
        self, name: str, sql: str, params: Sequence[Any], chunk: int = SCAN_CHUNK
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """The rows of one long read-only query, ``chunk`` at a time, from one snapshot, on a
        connection and a server-side cursor of its own; each fetch runs on a thread."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-scan")
        raw = await loop.run_in_executor(pool, connect, self.dsn, self._password, False)
        try:
            raw.row_factory = psycopg.rows.tuple_row
            cur = raw.cursor(name="scan")
            await loop.run_in_executor(pool, _open_scan, raw, cur, pg_sql(sql), params)
            while rows := await loop.run_in_executor(pool, cur.fetchmany, chunk):
                yield rows
        finally:
            await loop.run_in_executor(pool, raw.close)
            pool.shutdown(wait=False)
            if self._observer is not None:
                self._observer(name, time.perf_counter() - started)

    async def scan_merged(
        self, name: str, queries: Sequence[tuple[str, Sequence[Any]]], chunk: int = SCAN_CHUNK
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        from node.store.db import merge_scans

        async for rows in merge_scans([self.scan(name, s, p, chunk) for s, p in queries]):
            yield rows

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._write_pool.shutdown(wait=True)
        self._read_pool.shutdown(wait=True)
        for conn in (self._writer, self._reader):
            with contextlib.suppress(psycopg.Error):
                conn.close()

    async def alive(self) -> bool:
        """Is the lease still ours? A round trip on the write connection (``suanli serve``
        asks every second, so a node that lost its database stops even with nothing to
        write, and its /health stops saying it is active)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_pool, self._ping)

    def _ping(self) -> bool:
        with self._lock:
            if self._lost is not None:
                return False
            try:
                self._writer.raw.execute("SELECT 1")
            except psycopg.Error as exc:
                if self._broken():
                    self._lose(f"the write connection broke: {first_line(exc)}")
                return False
            return True

    def mark_active(self, where: str) -> None:
        """Say in the books where the active node serves (a standby elsewhere reads it)."""

        def txn(conn: Any) -> None:
            conn.execute(
                "INSERT INTO node_meta (key, value) VALUES ('active_at', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (where,),
            )

        self.run_sync("mark_active", txn)


def _clear_abort(pipe: PgPipeline) -> None:
    """After an error in pipeline mode, until a Sync the pipeline refuses everything sent
    (``PipelineAborted``): sync it, so that the failed transaction can be rolled back. What
    that sync reports is the same failure, already the job's."""
    with contextlib.suppress(psycopg.Error):
        pipe.sync()


def _open_scan(raw: psycopg.Connection[Any], cur: Any, sql: str, params: Sequence[Any]) -> None:
    raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    cur.execute(sql, params or None)
