"""SQLite through one door, with group commit.

Every write transaction goes through ``Database.run(name, fn)`` (or ``run_sync`` from
synchronous code): the caller's ``fn(conn)`` is queued, run inside a transaction on the one
write connection, and the caller is answered once it is committed. This is also the one place
that times transactions for metrics (Synapse's ``runInteraction``).

**Group commit.** The waiting transactions (up to ``MAX_BATCH``) share one ``BEGIN IMMEDIATE``,
each in its own SAVEPOINT (a failing one is rolled back to its savepoint and gets its
exception; the others are unaffected), and one COMMIT: one fsync for the whole batch. No caller
is answered before the COMMIT that holds its writes has returned, so an answered request is
durable exactly as with one commit per request; under load, many requests share an fsync. A
failed COMMIT fails every transaction of the batch. Transactions that arrive during a COMMIT
wait for the next batch.

**Threads.** A batch's transaction functions run on the event loop's own thread (they are
short: a few SQL statements and some Python), and the COMMIT of a batch of several runs in a
commit thread, so their fsync does not block the loop. A lone transaction (no load) commits
on the loop itself: handing its COMMIT to a thread and back cost more than the fsync. Running them in a writer thread instead made every SQL
statement a GIL hand-off with the busy loop thread (the sqlite3 module releases the GIL around
each statement): measured, a transaction took 2–5 times longer under load. A transaction
function must therefore never block; long scans belong in ``read``.

Reads that need no write lock go through ``Database.read(name, fn)`` on a reader thread with
its own connection: WAL lets them run beside the writer and see the last committed state.

Durability: WAL with ``synchronous=FULL`` by default. Foreign keys are on. The schema is
versioned with ``PRAGMA user_version`` and migrated forward only; a node refuses a database
newer than itself.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import heapq
import logging
import re
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from node.files import private, private_database
from node.store.schema import MIGRATIONS, SCHEMA_VERSION

logger = logging.getLogger(__name__)

T = TypeVar("T")
Observer = Callable[[str, float], None]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
WRITER_CHECKPOINT_PAGES = (
    4_000  # the writer restarts the WAL here; by then the thread has copied most
)
MAX_BATCH = 16  # per COMMIT; more would hold the event loop for longer between its I/O
SCAN_CHUNK = 1_000  # rows per event-loop turn of a scan: ~1-2 ms here


class SchemaTooNew(RuntimeError):
    pass


_NAME = re.compile(r"[a-z_]{1,32}")


@contextlib.contextmanager
def savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """A block in its own savepoint inside the current transaction: if it raises, its writes
    are undone and the exception goes on, while the transaction's other writes stay (the
    issuer stores a refusal in the transaction whose effect it rolled back)."""
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"not a savepoint name: {name!r}")
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


class BackupFailed(RuntimeError):
    pass


class DatabaseUnreachable(RuntimeError):
    """PostgreSQL cannot be reached (at start-up, or by a standby asking for the lease).
    Here, without psycopg, so that the command line can name it on any installation."""


def backup(db_path: Path, out: Path) -> int:
    """Copy the books with SQLite's online backup API: consistent, while the node serves.
    The copy is 0600 from its first byte and must pass ``PRAGMA integrity_check``; returns its
    schema version."""
    if out.exists():
        raise BackupFailed(f"{out} exists; refusing to overwrite a backup")
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    private(out)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst, pages=1024)
        if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupFailed(f"{out} failed its integrity check")
        version = int(dst.execute("PRAGMA user_version").fetchone()[0])
    finally:
        dst.close()
        src.close()
    return version


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    if synchronous not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS}")
    private_database(path)  # 0600, and so are the WAL and shared memory SQLite makes beside it
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=30.0, cached_statements=512
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


class _Checkpointer:
    """Copies the WAL back into the database file from its own thread and connection, so
    commits rarely pay for a checkpoint (with SQLite's automatic checkpoint at 1,000 pages, the
    commit that crossed it did the whole copy and an extra fsync while its callers waited: the
    p99 spikes of a large database). PASSIVE never blocks the writer or the readers.

    The WAL only starts again from the top when a write begins with every frame copied, which
    under steady writes almost never happens by itself: the WAL then grows, and every page
    read searches a larger WAL index (measured: a node slowing down run after run). So the
    writer keeps its own automatic checkpoint, at ``WRITER_CHECKPOINT_PAGES``: by then this
    thread has copied nearly everything, the writer's checkpoint finishes the remainder and
    the WAL restarts, bounded at about 16 MiB."""

    INTERVAL_SECONDS = 0.25

    def __init__(self, path: Path, synchronous: str) -> None:
        self._conn = connect(path, synchronous)
        self.commits = 0  # bumped by the writer; a checkpoint runs only when it has moved
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="db-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        seen = 0
        while not self._stop.wait(self.INTERVAL_SECONDS):
            if self.commits == seen:
                continue
            seen = self.commits
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:  # busy or I/O: the next round (or the backstop) retries
                logger.warning("WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


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


async def merge_scans(
    scans: list[AsyncGenerator[list[tuple[Any, ...]], None]],
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """The rows of several scans, each in the order of its rows' first column, merged into
    that order, in chunks. Memory: a chunk per scan. Each scan reads its own snapshot: merge
    only rows that no longer change (a closed window's). Both engines' doors use it."""

    buffers: list[list[tuple[Any, ...]]] = [[] for _ in scans]
    live = list(range(len(scans)))
    try:
        while live:
            for i in list(live):
                if not buffers[i]:
                    buffers[i] = await anext(scans[i], [])
                    if not buffers[i]:
                        live.remove(i)
            if not live:
                return
            # Every row up to the smallest of the live buffers' last keys can go now: no
            # later row of any query comes before it.
            bound = min(buffers[i][-1][0] for i in live)
            ready = []
            for i in live:
                cut = bisect.bisect_right(buffers[i], bound, key=lambda r: r[0])
                ready.append(buffers[i][:cut])
                buffers[i] = buffers[i][cut:]
            yield list(heapq.merge(*ready, key=lambda r: r[0]))
    finally:
        for s in scans:
            await s.aclose()


class _Job:
    """A transaction waiting for the next batch, with its caller's context: the batch runs it
    in that context, so what it logs (and what it reads of ``node.logs.REQUEST_ID``, such as
    the request id an outbox message keeps) is its caller's, not the batch's first job's.
    Both engines' doors queue these (``fn`` takes either engine's connection)."""

    __slots__ = ("context", "fn", "future", "name")

    def __init__(self, name: str, fn: Callable[[Any], Any], future: asyncio.Future[Any]) -> None:
        self.name = name
        self.fn = fn
        self.future = future
        self.context = contextvars.copy_context()


class Database:
    """The node's SQLite file: one write connection (group commit), one reader thread, and
    long read-only scans in chunks on the event loop."""

    engine = "sqlite"

    def __init__(self, path: Path, synchronous: str = "FULL", observer: Observer | None = None):
        self.path = Path(path)
        self._writer = connect(self.path, synchronous)
        self._writer.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        self._writer.execute("PRAGMA journal_size_limit=67108864")  # WAL file kept ≤ 64 MiB
        migrate(self._writer)
        self.schema_version = SCHEMA_VERSION
        self._checkpointer = _Checkpointer(self.path, synchronous)
        self._reader = connect(self.path, synchronous)
        self._read_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-reader")
        self._commit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-commit")
        self._observer = observer
        # Whoever holds this lock owns the write connection: the event loop while it runs a
        # batch's transactions, then the commit thread until that batch's COMMIT returns, or a
        # synchronous caller (run_sync) for its whole transaction.
        self._lock = threading.Lock()
        self._waiting: list[_Job] = []
        self._busy = False  # a batch is being run or committed; new jobs wait for the next one
        self._closed = False

    def set_observer(self, observer: Observer | None) -> None:
        self._observer = observer

    async def alive(self) -> bool:
        """Always: the folder's lock is held for the life of the process (PostgreSQL's lease
        can be lost, ``PgDatabase.alive``)."""
        return not self._closed

    def mark_active(self, where: str) -> None:
        """Nothing to do: on SQLite the standby reads ``serve.json`` in the shared folder."""

    def connect_readonly(self) -> sqlite3.Connection:
        """A read-only connection of its own (the metrics' scrape-time reads)."""
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    # The writer ---------------------------------------------------------------------------

    async def run(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a write transaction; answered once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append(_Job(name, fn, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._start_batch, loop)
        return await future

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the waiting transactions on the event loop's thread, then COMMIT them in the
        commit thread: the transactions (short, CPU-bound Python and SQL) never contend with
        the loop for the GIL, and a batch's fsync does not block the loop (a lone
        transaction's does: that is cheaper than two thread hops when nothing else waits)."""
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if not batch:
            self._busy = False
            return
        self._lock.acquire()
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self._lock.release()
            self._finish(loop, [(job, False, exc) for job in batch])
            return
        try:
            done = self._run_jobs(conn, batch)
        except BaseException as exc:  # the savepoint machinery itself failed: undo the batch
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            finally:
                self._lock.release()
                self._finish(loop, [(job, False, exc) for job in batch])
            return
        if len(batch) == 1 and not done[0][1]:
            try:
                conn.execute("ROLLBACK")  # a lone job needs no savepoint and no COMMIT
            finally:
                self._lock.release()
                self._finish(loop, done)
            return
        if len(batch) == 1:  # alone: commit here, two thread hops cost more than the fsync
            try:
                self._commit()
            except BaseException as exc:
                done = [(job, False, exc) for job, _, _ in done]
            self._finish(loop, done)
            return
        committed = loop.run_in_executor(self._commit_pool, self._commit)
        committed.add_done_callback(lambda f: self._committed(loop, done, f))

    def _run_jobs(
        self, conn: sqlite3.Connection, batch: list[_Job]
    ) -> list[tuple[_Job, bool, Any]]:
        """Each job in its own savepoint: a failing one is undone alone and gets its exception."""
        alone = len(batch) == 1
        done: list[tuple[_Job, bool, Any]] = []
        observer = self._observer
        # The savepoints spelled out rather than through ``savepoint()``: this loop runs for
        # every write the node makes, and the context manager costs a few microseconds a job.
        for job in batch:
            started = time.perf_counter()
            if not alone:
                conn.execute("SAVEPOINT job")
            try:
                done.append((job, True, job.context.run(job.fn, conn)))
                if not alone:
                    conn.execute("RELEASE job")
            except Exception as exc:
                done.append((job, False, exc))
                if not alone:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
            if observer is not None:
                observer(job.name, time.perf_counter() - started)
        return done

    def _commit(self) -> None:
        """In the commit thread, holding the lock the loop took for the batch."""
        conn = self._writer
        started = time.perf_counter()
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._lock.release()
        self._checkpointer.commits += 1
        if self._observer is not None:
            self._observer("commit", time.perf_counter() - started)

    def _committed(
        self,
        loop: asyncio.AbstractEventLoop,
        done: list[tuple[_Job, bool, Any]],
        committed: asyncio.Future[None],
    ) -> None:
        exc = committed.exception()
        if exc is not None:  # a failed COMMIT fails every transaction of the batch
            done = [(job, False, exc) for job, _, _ in done]
        self._finish(loop, done)

    def _finish(self, loop: asyncio.AbstractEventLoop, done: list[tuple[_Job, bool, Any]]) -> None:
        """Answer a batch's callers and start the next batch if anyone is waiting."""
        for job, ok, value in done:
            future = job.future
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if self._waiting:
            loop.call_soon(self._start_batch, loop)
        else:
            self._busy = False

    def run_sync(self, name: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A write transaction from synchronous code (the CLI, start-up), committed on return.

        Never call it from a coroutine of a serving node: it holds the connection for its whole
        transaction, waiting for a batch's COMMIT if one is running."""
        with self._lock:
            conn = self._writer
            started = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            try:
                value = fn(conn)
                conn.execute("COMMIT")
                self._checkpointer.commits += 1
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                if self._observer is not None:
                    self._observer(name, time.perf_counter() - started)
            return value

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

    async def scan(
        self, name: str, sql: str, params: Sequence[Any], chunk: int = SCAN_CHUNK
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """The rows of one long read-only query (plain tuples), ``chunk`` at a time, from one
        snapshot on a read-only connection of its own, ended when the scan is.

        It runs on the event loop, one chunk per turn, so a query over millions of rows costs
        other requests a millisecond or two per turn. On the reader thread it would hold the
        reader for seconds, and beside a busy loop it would get the GIL back once per switch
        interval for one row (every SQLite step releases it): 100,000 rows took 14.8 s there
        instead of 0.19 s. The query should read its rows in index order: a sort would run in
        full inside the first chunk."""
        started = time.perf_counter()
        conn = sqlite3.connect(
            f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("BEGIN")
            cursor = conn.execute(sql, params)
            while rows := cursor.fetchmany(chunk):
                yield rows
                await asyncio.sleep(0)
        finally:
            conn.close()
            if self._observer is not None:
                self._observer(name, time.perf_counter() - started)

    async def scan_merged(
        self, name: str, queries: Sequence[tuple[str, Sequence[Any]]], chunk: int = SCAN_CHUNK
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """The rows of several ``scan``s, each in the order of its rows' first column, merged
        into that order, in chunks (``merge_scans``)."""
        async for rows in merge_scans([self.scan(name, s, p, chunk) for s, p in queries]):
            yield rows

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._commit_pool.shutdown(wait=True)
        with self._lock:  # a batch's COMMIT, if any, has returned
            pass
        self._read_pool.shutdown(wait=True)
        self._checkpointer.close()
        self._writer.close()
        self._reader.close()
