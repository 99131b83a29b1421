"""The database door: group commit on the event loop, and checkpoints off the commit path."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

from node.store import outbox as outbox_rows
from node.store import remote_holds
from node.store.db import WRITER_CHECKPOINT_PAGES, Database


def _wal_index(path: Path) -> tuple[int, int]:
    """(frames in the WAL, frames already copied into the database), read from the WAL index
    (the -shm file, native byte order: mxFrame at byte 16, nBackfill at byte 96)."""
    shm = Path(f"{path}-shm").read_bytes()
    return (
        int.from_bytes(shm[16:20], sys.byteorder),
        int.from_bytes(shm[96:100], sys.byteorder),
    )


def _add(conn: sqlite3.Connection, i: int) -> int:
    conn.execute(
        "INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, 't', 'a', ?, '{}')",
        (i, f"s{i}"),
    )
    return i


def test_the_checkpoint_thread_copies_the_wal_so_no_commit_has_to(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    try:
        for i in range(300):  # each commit alone: hundreds of WAL frames
            db.run_sync("add", lambda c, i=i: _add(c, i))
        frames, copied = _wal_index(db.path)
        assert frames > 0
        deadline = time.monotonic() + 5
        while copied < frames and time.monotonic() < deadline:
            time.sleep(0.05)
            frames, copied = _wal_index(db.path)
        # 300 frames: far below the writer's own automatic checkpoint, so the thread did it
        assert copied == frames, (frames, copied)
        assert (
            db._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WRITER_CHECKPOINT_PAGES
        )
    finally:
        db.close()


def test_the_wal_stays_bounded_under_steady_writes(tmp_path: Path) -> None:
    """With the checkpoint thread copying concurrently, the WAL must still start again from
    the top: it never grows far past the writer's own checkpoint mark."""
    db = Database(tmp_path / "t.db")
    try:
        most, restarted, last = 0, False, 0
        for i in range(2500):  # ~3 frames each: about twice the writer's mark
            db.run_sync("add", lambda c, i=i: _add(c, i))
            frames, _ = _wal_index(db.path)
            restarted = restarted or frames < last
            most, last = max(most, frames), frames
        assert restarted and most <= WRITER_CHECKPOINT_PAGES + 100, (most, restarted)
    finally:
        db.close()


async def test_group_commit_answers_each_transaction_with_its_own_outcome(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    try:

        def fail(conn: sqlite3.Connection) -> None:
            _add(conn, -1)
            raise ValueError("refused")

        jobs = [db.run("add", lambda c, i=i: _add(c, i)) for i in range(40)]
        jobs.insert(7, db.run("fail", fail))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert isinstance(results[7], ValueError)
        assert results[:7] + results[8:] == list(range(40))
        # the failed one left nothing behind; every other one is committed
        count = await db.read(
            "n", lambda c: c.execute("SELECT COUNT(*), MIN(at) FROM audit").fetchone()
        )
        assert tuple(count) == (40, 0)
    finally:
        db.close()


def test_a_failed_commit_fails_the_whole_batch(tmp_path: Path) -> None:
    """A constraint checked only at COMMIT (a deferred foreign key) fails every transaction of
    the batch, and nothing of it is stored."""
    db = Database(tmp_path / "t.db")

    def setup(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE c (id INTEGER PRIMARY KEY, "
            "p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)"
        )

    db.run_sync("setup", setup)

    async def batch() -> list[object]:
        return await asyncio.gather(
            db.run("ok", lambda c: c.execute("INSERT INTO p (id) VALUES (1)").rowcount),
            db.run("orphan", lambda c: c.execute("INSERT INTO c (id, p) VALUES (1, 99)").rowcount),
            return_exceptions=True,
        )

    try:
        results = asyncio.run(batch())
        assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
        assert db.run_sync("n", lambda c: c.execute("SELECT COUNT(*) FROM p").fetchone()[0]) == 0
    finally:
        db.close()


def test_the_sweepers_never_scan_a_table_that_grows(tmp_path: Path) -> None:
    """Every statement the sweepers run finds its rows through an index (EXPLAIN QUERY PLAN):
    a sweep costs what has expired, not everything ever written."""
    from node.store import vouchers

    db = Database(tmp_path / "t.db")
    statements: list[str] = []
    try:

        def sweep(conn: sqlite3.Connection) -> None:
            conn.set_trace_callback(statements.append)
            try:
                vouchers.expired_holds(conn, 10**13, 100)
                vouchers.expire_authorizations(conn, 10**13)
                vouchers.expired_vouchers(conn, 10**13, 100)
                remote_holds.expire_remote_holds(conn, 10**13)
                outbox_rows.outbox_due(conn, "520100", 10**13, 100)
            finally:
                conn.set_trace_callback(None)

        db.run_sync("sweep", sweep)
        plans = {
            sql: [row[3] for row in db._writer.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in statements
            if sql.lstrip().upper().startswith(("SELECT", "UPDATE"))
        }
        assert len(plans) == 5
        for sql, plan in plans.items():
            assert plan[0].startswith("SEARCH") and " USING " in plan[0], (sql, plan)
            assert not any(step.startswith("SCAN") for step in plan), (
                sql,
                plan,
            )
    finally:
        db.close()


def test_a_savepoint_undoes_only_its_block(tmp_path: Path) -> None:
    """The door's savepoint: what a failing block wrote is undone, the rest of the transaction
    is kept (the issuer commits a refusal in the transaction whose effect it rolled back)."""
    import sqlite3

    import pytest

    from node.store.db import savepoint

    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES ('before')")
    with pytest.raises(RuntimeError), savepoint(conn, "request"):
        conn.execute("INSERT INTO t VALUES ('undone')")
        raise RuntimeError("refused")
    with savepoint(conn, "request"):
        conn.execute("INSERT INTO t VALUES ('kept')")
    conn.execute("COMMIT")
    assert [r[0] for r in conn.execute("SELECT v FROM t ORDER BY rowid")] == ["before", "kept"]
    with pytest.raises(ValueError):
        savepoint(conn, "x; DROP TABLE t").__enter__()
