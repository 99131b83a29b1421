"""The PostgreSQL engine's own machinery, against a real PostgreSQL (a throwaway cluster):
its schema is SQLite's, table by table and column by column; statements are rewritten once
into psycopg's style; secrets stay out of node.toml; one writer at a time per city; and the
lease fences a node that lost it. (The store, service and money tests run on PostgreSQL
through ``make test-postgres``.)"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from node import errors
from node.config import ConfigError, NodeConfig, check_storage
from node.store.db import migrate as sqlite_migrate
from node.store.pg import PgDatabase, PgLease
from node.store.pgconn import password_of, pg_sql
from node.store.pgpipe import dollar_sql
from node.tools.pgcluster import PASSWORD, PgCluster
from tests import engines


@pytest.fixture(scope="module")
def pg() -> Iterator[PgCluster]:
    cluster = engines.cluster() if engines.POSTGRES else PgCluster.create()
    yield cluster
    if not engines.POSTGRES:
        cluster.close()


def _database(pg: PgCluster, name: str, local: bool = False) -> str:
    return pg.create_database(f"{name}_{os.getpid()}_{id(pg) % 10_000}", local=local)


def test_statements_are_rewritten_once_into_psycopg_style() -> None:
    assert pg_sql("SELECT a FROM t WHERE b = ? AND c = ?") == (
        "SELECT a FROM t WHERE b = %s AND c = %s"
    )
    assert pg_sql("SELECT * FROM r WHERE x = :region") == "SELECT * FROM r WHERE x = %(region)s"
    # quoted text, casts and a literal % are left as they mean
    assert pg_sql("SELECT 'a?b:c', x::text, '100%' FROM t WHERE y LIKE '%?'") == (
        "SELECT 'a?b:c', x::text, '100%' FROM t WHERE y LIKE '%?'"
    )
    assert pg_sql("SELECT 5 % ?") == "SELECT 5 %% %s"
    before = pg_sql.cache_info().hits
    pg_sql("SELECT a FROM t WHERE b = ? AND c = ?")
    assert pg_sql.cache_info().hits == before + 1


def test_both_engines_have_the_same_tables_columns_and_indexes(pg: PgCluster) -> None:
    lite = sqlite3.connect(":memory:", isolation_level=None)
    sqlite_migrate(lite)
    lite_tables = {
        name: {r[1] for r in lite.execute(f"PRAGMA table_info({name})")}
        for (name,) in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence'"
        )
    }
    lite_indexes = {
        r[0]
        for r in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    lite_triggers = {
        r[0] for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    }
    db = PgDatabase(_database(pg, "parity"), PASSWORD)
    try:
        conn = db._writer.raw
        pg_tables: dict[str, set[str]] = {}
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            pg_tables.setdefault(table, set()).add(column)
        pg_tables.pop("schema_version")
        pg_indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                "AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'"
            )
        }
        pg_triggers = {
            r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        }
        # SQLite names its automatic indexes (UNIQUE constraints) sqlite_autoindex_*.
        assert pg_tables == lite_tables
        assert pg_indexes == {i for i in lite_indexes if not i.startswith("sqlite_autoindex")}
        assert pg_triggers == lite_triggers
        assert db.schema_version == max(
            int(v) for v in lite.execute("PRAGMA user_version").fetchone()
        )
    finally:
        db.close()


def test_a_secret_stays_out_of_node_toml(tmp_path: Path) -> None:
    config = NodeConfig(tmp_path, "330100", "x", backend="postgresql", dsn="host=db password=s3")
    with pytest.raises(ConfigError, match="must not carry a password"):
        check_storage(config, "node.toml")
    uri = NodeConfig(
        tmp_path, "330100", "x", backend="postgresql", dsn="postgresql://suanli:s3@db/suanli"
    )
    with pytest.raises(ConfigError, match="must not carry a password"):
        check_storage(uri, "node.toml")
    with pytest.raises(ConfigError, match="backend must be one of"):
        check_storage(NodeConfig(tmp_path, "330100", "x", backend="mysql"), "node.toml")
    secret = tmp_path / "pg.password"
    secret.write_text(PASSWORD)
    secret.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        password_of(secret)
    secret.chmod(0o600)
    assert password_of(secret) == PASSWORD


def test_a_wrong_password_is_refused_without_echoing_it(pg: PgCluster) -> None:
    from node.store.db import DatabaseUnreachable

    with pytest.raises(DatabaseUnreachable) as refused:
        PgDatabase(_database(pg, "wrongpw"), "not-the-password-xyz")
    assert "not-the-password-xyz" not in str(refused.value)
    assert "password authentication failed" in str(refused.value)
    # through the Unix socket (a database on the node's own machine) the same
    local = _database(pg, "local", local=True)
    assert "127.0.0.1" not in local
    with pytest.raises(DatabaseUnreachable, match="password authentication failed"):
        PgDatabase(local, "not-the-password-xyz")
    db = PgDatabase(local, PASSWORD)
    try:
        assert db.run_sync("one", lambda c: c.execute("SELECT 1").fetchone()[0]) == 1
    finally:
        db.close()


def test_one_writer_at_a_time_and_a_failed_transaction_changes_nothing(pg: PgCluster) -> None:
    """Two doors on one database (a node and a command such as ``suanli check``): their
    transactions queue on the city's write lock, so a read-then-write inside one is never
    interleaved with the other's; and a transaction that raises leaves nothing behind, alone
    or inside a batch."""
    dsn = _database(pg, "writers")
    a, b = PgDatabase(dsn, PASSWORD), PgDatabase(dsn, PASSWORD)

    def bump(conn: Any) -> int:
        (n,) = conn.execute("SELECT value FROM node_meta WHERE key = 'n'").fetchone()
        conn.execute("UPDATE node_meta SET value = ? WHERE key = 'n'", (str(int(n) + 1),))
        return int(n) + 1

    def fail(conn: Any) -> None:
        conn.execute("UPDATE node_meta SET value = '-1' WHERE key = 'n'")
        raise errors.InvalidRequest("refused after writing")

    async def main() -> None:
        await a.run("seed", lambda c: c.execute("INSERT INTO node_meta VALUES ('n', '0')"))
        jobs = [a.run("bump", bump) for _ in range(40)] + [b.run("bump", bump) for _ in range(40)]
        jobs += [a.run("fail", fail), b.run("fail", fail)]
        done = await asyncio.gather(*jobs, return_exceptions=True)
        assert sorted(x for x in done if isinstance(x, int)) == list(range(1, 81))
        assert sum(isinstance(x, errors.InvalidRequest) for x in done) == 2

    try:
        asyncio.run(main())
        value = a.run_sync(
            "read", lambda c: c.execute("SELECT value FROM node_meta WHERE key = 'n'").fetchone()
        )
        assert value[0] == "80"
    finally:
        a.close()
        b.close()


def test_the_lease_fences_a_node_that_lost_its_connection(pg: PgCluster) -> None:
    """The lease lives on the write connection: a second node cannot take it while the first
    holds it; once the first one's session is ended (its machine gone), the second takes it,
    and the first refuses to write ever again (not_active) and says so to ``alive``."""
    dsn = _database(pg, "lease")
    PgDatabase(dsn, PASSWORD).close()  # the schema
    first = PgLease(dsn, PASSWORD)
    assert first.try_acquire() is None
    active = PgDatabase(dsn, PASSWORD, lease=first)
    active.mark_active("http://127.0.0.1:8330")
    second = PgLease(dsn, PASSWORD)
    try:
        assert second.try_acquire() == "http://127.0.0.1:8330"
        (pid,) = active._writer.raw.execute("SELECT pg_backend_pid()").fetchone()
        pg.primary.sql(f"SELECT pg_terminate_backend({pid})")

        async def after() -> None:
            assert await active.alive() is False
            with pytest.raises(errors.NotActive):
                await active.run("write", lambda c: c.execute("SELECT 1"))

        asyncio.run(after())
        with pytest.raises(errors.NotActive):
            active.run_sync("write", lambda c: c.execute("SELECT 1"))
        assert second.try_acquire() is None
        taken = PgDatabase(dsn, PASSWORD, lease=second)
        try:
            assert asyncio.run(taken.alive()) is True
        finally:
            taken.close()
    finally:
        active.close()
        second.release()


def test_a_refusal_of_the_database_is_its_own_error_and_changes_nothing(pg: PgCluster) -> None:
    db = PgDatabase(_database(pg, "checks"), PASSWORD)

    def bad(conn: Any) -> None:
        conn.execute("INSERT INTO node_meta (key, value) VALUES ('kept', 'no')")
        conn.execute("INSERT INTO node_meta (key, value) VALUES ('k', ?)", (None,))

    try:
        with pytest.raises(psycopg.errors.NotNullViolation):
            db.run_sync("bad", bad)
        kept = db.run_sync(
            "read", lambda c: c.execute("SELECT COUNT(*) FROM node_meta").fetchone()[0]
        )
        assert kept == 0
    finally:
        db.close()


def test_what_a_trigger_writes_is_known_to_the_reads_sent_ahead() -> None:
    """A read sent ahead is dropped by a write to its tables, and to what that write's
    triggers write: TRIGGERED must name every table a trigger function writes."""
    import re

    from node.store.pgconn import TRIGGERED
    from node.store.pgschema import BASELINE

    writes = {
        fn: set(re.findall(r"INSERT INTO (\w+)|UPDATE (\w+) SET", body))
        for fn, body in re.findall(r"CREATE FUNCTION (\w+)\(\).*?AS \$\$(.*?)\$\$", BASELINE, re.S)
    }
    found: dict[str, set[str]] = {}
    for table, fn in re.findall(
        r"ON (\w+)\s+FOR EACH ROW.*?EXECUTE FUNCTION (\w+)\(", BASELINE, re.S
    ):
        for pair in writes.get(fn, set()):
            found.setdefault(table, set()).update(t for t in pair if t)
    assert found == {table: set(tables) for table, tables in TRIGGERED.items()}


def test_a_read_sent_ahead_is_what_it_would_have_been_at_its_place(pg: PgCluster) -> None:
    from node.store.rows import ahead

    db = PgDatabase(_database(pg, "ahead"), PASSWORD)
    meta = "SELECT value FROM node_meta WHERE key = ?"
    policies = "SELECT COUNT(*) FROM policies WHERE fiscal_year = ?"

    def txn(conn: Any) -> list[Any]:
        conn.execute("INSERT INTO node_meta VALUES ('k', 'before')")
        ahead(conn, meta, ("k",))
        ahead(conn, policies, (2026,))
        conn.execute("UPDATE node_meta SET value = 'after' WHERE key = 'k'")  # drops the first
        conn.execute(
            "INSERT INTO schema_version (version) SELECT version FROM schema_version WHERE false"
        )  # writes another table: the second is kept
        return [
            conn.execute(meta, ("k",)).fetchone()[0],
            conn.execute(policies, (2026,)).fetchone()[0],
        ]

    try:
        assert asyncio.run(db.run("ahead", txn)) == ["after", 0]
    finally:
        db.close()


def test_the_command_line_refuses_clearly_on_postgresql(tmp_path: Path, pg: PgCluster) -> None:
    """A second active node, a database that cannot be reached, a backup asked of a
    PostgreSQL node: each a sentence and exit 2, never a traceback, never the password."""
    from tests.conftest import policy_text
    from tests.proc import NodeProcess, suanli

    dsn = _database(pg, "cli")
    secret = tmp_path / "pg.password"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    data = tmp_path / "a"
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text())
    suanli(
        "init", "--data", str(data), "--region", "330100", "--name", "Hangzhou",
        "--policy", str(policy), "--port", "0", "--backend", "postgresql",
        "--dsn", dsn, "--password-file", str(secret),
    )  # fmt: skip
    assert 'backend = "postgresql"' in (data / "node.toml").read_text()
    assert PASSWORD not in (data / "node.toml").read_text()
    active = NodeProcess(data).start()
    try:
        second = tmp_path / "b"
        second.mkdir(mode=0o700)
        for name in ("node.toml", "node.key"):
            (second / name).write_bytes((data / name).read_bytes())
            (second / name).chmod(0o600)
        refused = suanli("serve", "--data", str(second), "--port", "0", check=False)
        assert refused.returncode == 2 and "holds the database lease" in refused.stderr
        assert f":{active.port}" in refused.stderr and "Traceback" not in refused.stderr
        backup = suanli("backup", "--data", str(data), str(tmp_path / "x.db"), check=False)
        assert backup.returncode == 2 and "pg_dump" in backup.stderr
        assert suanli("check", "--data", str(data)).returncode == 0
    finally:
        assert active.stop() == 0
    (second / "node.toml").write_text(
        (second / "node.toml").read_text().replace(f"port={pg.primary.port}", "port=1")
    )
    down = suanli("check", "--data", str(second), check=False)
    assert down.returncode == 2 and "cannot reach the database" in down.stderr
    assert "Traceback" not in down.stderr and PASSWORD not in down.stderr


def test_a_refusal_read_late_in_a_batch_fails_its_own_transaction_only(pg: PgCluster) -> None:
    """In a batch, a write the books refuse is reported where the transaction next reads (the
    pipeline sends writes without waiting): that transaction alone is rolled back, and the
    others of the batch commit."""
    db = PgDatabase(_database(pg, "late"), PASSWORD)

    def good(n: int) -> Any:
        return lambda c: c.execute("INSERT INTO node_meta VALUES (?, 'ok')", (f"k{n}",)) and n

    def bad(conn: Any) -> None:
        conn.execute("INSERT INTO node_meta VALUES ('bad', 'x')")
        conn.execute("INSERT INTO node_meta VALUES ('bad', 'again')")  # the primary key
        conn.execute("SELECT COUNT(*) FROM node_meta").fetchone()  # the refusal surfaces here

    async def main() -> list[Any]:
        jobs = [db.run("good", good(n)) for n in range(3)]
        jobs.insert(1, db.run("bad", bad))
        return await asyncio.gather(*jobs, return_exceptions=True)

    try:
        done = asyncio.run(main())
        assert isinstance(done[1], psycopg.errors.UniqueViolation), done
        assert [done[0], *done[2:]] == [0, 1, 2]
        keys = db.run_sync(
            "keys", lambda c: [r[0] for r in c.execute("SELECT key FROM node_meta ORDER BY key")]
        )
        assert keys == ["k0", "k1", "k2"]
    finally:
        db.close()


def test_placeholders_become_libpq_numbers_once() -> None:
    assert dollar_sql("SELECT a FROM t WHERE b = ? AND c = ?") == (
        b"SELECT a FROM t WHERE b = $1 AND c = $2",
        None,
    )
    # by name: each name one number, in order of first use, however often it is used
    assert dollar_sql("SELECT :b, :a, :b") == (b"SELECT $1, $2, $1", ("b", "a"))
    assert dollar_sql("SELECT 'a?b:c', x::text, '100%' FROM t -- ?") == (
        b"SELECT 'a?b:c', x::text, '100%' FROM t -- ?",
        None,
    )
    with pytest.raises(ValueError, match="mixes"):
        dollar_sql("SELECT ?, :a")


def test_the_pipeline_reads_what_the_store_writes_and_refuses_what_it_does_not(
    pg: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's statements go through node/store/pgpipe.py: every kind of value the store
    sends comes back as it went; a value of another kind, or a statement the server cannot
    prepare, fails its own transaction only, and the statement works again afterwards."""
    db = PgDatabase(_database(pg, "pipe"), PASSWORD)
    big = 2**40

    def values(conn: Any) -> Any:
        conn.execute(
            "INSERT INTO node_meta (key, value) VALUES (:k, CAST(:v AS TEXT))",
            {"k": "kinds", "v": f"{big}"},
        )
        row = conn.execute(
            "SELECT CAST(? AS BIGINT) AS small, CAST(? AS BIGINT) AS big, CAST(? AS TEXT) AS t, "
            "CAST(? AS BYTEA) AS b, CAST(? AS TEXT) AS nothing, "
            "(SELECT SUM(CAST(value AS BIGINT)) FROM node_meta WHERE key = 'kinds') AS total",
            (7, big, "杭州 'quoted' ?", b"\x00\xff", None),
        ).fetchone()
        many = conn.execute("SELECT generate_series(1, 5) AS n")
        first = many.fetchmany(2)
        rest = list(many)
        return row, row.keys(), [r["n"] for r in first] + [r[0] for r in rest]

    def odd_value(conn: Any) -> None:
        conn.execute("SELECT CAST(? AS TEXT)", (Decimal("1.5"),))

    def cannot_prepare(conn: Any) -> None:
        conn.execute("SELEC 1").fetchone()

    def after(conn: Any) -> Any:
        return conn.execute("SELECT COUNT(*) FROM node_meta").fetchone()[0]

    async def main() -> list[Any]:
        jobs = [db.run("values", values), db.run("odd", odd_value), db.run("bad", cannot_prepare)]
        return await asyncio.gather(*jobs, db.run("after", after), return_exceptions=True)

    try:
        monkeypatch.setattr("node.store.pgpipe.MAX_PREPARED", 3)  # then unnamed statements
        done = asyncio.run(main())
        row, keys, series = done[0]
        assert tuple(row) == (7, big, "杭州 'quoted' ?", b"\x00\xff", None, big)
        assert type(row["total"]) is int  # a SUM of BIGINT is NUMERIC: fen stay int
        assert keys == ["small", "big", "t", "b", "nothing", "total"]
        assert series == [1, 2, 3, 4, 5]
        assert isinstance(done[1], TypeError) and "Decimal" in str(done[1])
        assert isinstance(done[2], psycopg.errors.SyntaxError)
        assert done[3] == 1
        # the statement that failed to prepare, and the others, work in a later batch
        assert asyncio.run(db.run("again", after)) == 1
        with pytest.raises(psycopg.errors.SyntaxError):
            asyncio.run(db.run("bad again", cannot_prepare))
        series_again = asyncio.run(
            db.run("again", lambda c: [r[0] for r in c.execute("SELECT generate_series(1, 3)")])
        )
        assert series_again == [1, 2, 3]
    finally:
        db.close()


def test_the_month_function_is_sqlites_month_to_the_millisecond(pg: PgCluster) -> None:
    """PostgreSQL's ``suanli_month`` (schema version 19, written to be inlined) gives the China
    Standard Time month SQLite's ``strftime`` gives, at and around every month's edge."""
    from node.store.execution import MONTH_SQL

    db = PgDatabase(_database(pg, "month"), PASSWORD)
    lite = sqlite3.connect(":memory:")
    edges = [
        1_767_196_800_000 + delta  # 2026-01-01 00:00 CST is 1_767_196_800_000 ms
        for delta in (-1, 0, 1)
    ] + [ms for day in range(0, 800, 29) for ms in (day * 86_400_000 + 1_735_660_800_000,)]
    try:
        got = db.run_sync(
            "months",
            lambda c: [c.execute("SELECT suanli_month(?)", (ms,)).fetchone()[0] for ms in edges],
        )
        want = [
            lite.execute(f"SELECT {MONTH_SQL.format(col='?')}", (ms,)).fetchone()[0] for ms in edges
        ]
        assert got == want
        assert got[:3] == ["2025-12", "2026-01", "2026-01"]
    finally:
        db.close()
        lite.close()


def test_a_transaction_costs_a_send_per_round_trip_not_per_statement(
    pg: PgCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What made the PostgreSQL engine fast enough (docs/benchmarks.md): a transaction alone,
    with writes before and after a read, goes to the server in two sends, one where it reads
    and one with its COMMIT, whatever its number of statements."""
    from node.store.pgpipe import PgPipeline

    db = PgDatabase(_database(pg, "sends"), PASSWORD)
    sends: list[int] = []
    real = PgPipeline._send_buffered

    def counted(self: PgPipeline) -> None:
        sends.append(1)
        real(self)

    def txn(conn: Any) -> int:
        for n in range(3):
            conn.execute("INSERT INTO node_meta VALUES (?, 'before')", (f"b{n}",))
        count = conn.execute("SELECT COUNT(*) FROM node_meta").fetchone()[0]
        for n in range(2):
            conn.execute("INSERT INTO node_meta VALUES (?, 'after')", (f"a{n}",))
        return int(count)

    try:
        monkeypatch.setattr(PgPipeline, "_send_buffered", counted)
        assert asyncio.run(db.run("five writes and a read", txn)) == 3
        assert len(sends) == 2
        keys = db.run_sync("keys", lambda c: c.execute("SELECT COUNT(*) FROM node_meta").fetchone())
        assert keys[0] == 5
    finally:
        db.close()
