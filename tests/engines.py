"""Which engine the tests' nodes keep their books on: SQLite (the default), or PostgreSQL when
``SUANLI_TEST_ENGINE=postgresql`` (``make test-postgres``). On PostgreSQL every node gets a
database of its own in one throwaway cluster per test process (node/tools/pgcluster.py), and
connects as the cluster's ``suanli`` role with its password in a 0600 file, as a city would."""

from __future__ import annotations

import atexit
import itertools
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from node.config import load as load_config
from node.files import write_private
from node.store.engine import connect_writer
from node.tools.pgcluster import PASSWORD, PgCluster

ENGINE = os.environ.get("SUANLI_TEST_ENGINE", "sqlite")
POSTGRES = ENGINE == "postgresql"
# What the books' own refusals (a CHECK, a trigger) raise on each engine.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
if POSTGRES:
    import psycopg

    INTEGRITY_ERRORS = (psycopg.errors.IntegrityError,)

# Tests of SQLite's own machinery (its file, PRAGMAs, migrations from older SQLite schemas):
# PostgreSQL starts at the baseline, and tests/test_pg.py holds the two schemas together.
sqlite_only = pytest.mark.skipif(POSTGRES, reason="SQLite's own file and migrations")

_cluster: PgCluster | None = None
_names = itertools.count(1)


def cluster() -> PgCluster:
    global _cluster
    if _cluster is None:
        _cluster = PgCluster.create()
        atexit.register(close)  # also when a worker ends without its session's teardown
    return _cluster


def close() -> None:
    global _cluster
    if _cluster is not None:
        _cluster.close()
        _cluster = None


def storage(folder: Path) -> dict[str, str] | None:
    """``init_node``'s storage settings for a new node: None on SQLite; on PostgreSQL a new
    database, and the role's password in a 0600 file in ``folder``."""
    if not POSTGRES:
        return None
    name = f"books_{next(_names)}_{uuid.uuid4().hex[:8]}"
    dsn = cluster().create_database(name)
    folder.mkdir(parents=True, exist_ok=True)
    password = folder / f"{name}.password"
    write_private(password, PASSWORD + "\n")
    return {"backend": "postgresql", "dsn": dsn, "password_file": str(password)}


def open_books(data: Path) -> Any:
    """A read-write connection (each statement committed) to the books of the node in
    ``data``, on its engine: for tests that read them, or corrupt them on purpose."""
    return connect_writer(load_config(data))
