"""The one door to the books, whichever the engine (``[storage] backend`` in node.toml).

``Books`` is what the services see: ``run`` (a write transaction, answered after its durable
commit), ``run_sync``, ``read``, ``scan`` and ``scan_merged``. ``node.store.db.Database``
(SQLite, the default) and ``node.store.pg.PgDatabase`` (PostgreSQL) both provide it, and
``open_database`` picks one from the configuration, once, at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from node.config import NodeConfig
    from node.store.pg import PgLease

T = TypeVar("T")


Observer = Callable[[str, float], None]


class Books(Protocol):
    engine: str
    schema_version: int

    async def run(self, name: str, fn: Callable[[Any], T]) -> T: ...

    def run_sync(self, name: str, fn: Callable[[Any], T]) -> T: ...

    async def read(self, name: str, fn: Callable[[Any], T]) -> T: ...

    def scan(
        self, name: str, sql: str, params: Sequence[Any], chunk: int = ...
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]: ...

    def scan_merged(
        self, name: str, queries: Sequence[tuple[str, Sequence[Any]]], chunk: int = ...
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]: ...

    def connect_readonly(self) -> Any: ...

    async def alive(self) -> bool: ...

    def mark_active(self, where: str) -> None: ...

    def set_observer(self, observer: Observer | None) -> None: ...

    def close(self) -> None: ...


def open_database(
    config: NodeConfig,
    observer: Observer | None = None,
    lease: PgLease | None = None,
) -> Books:
    """The node's books on its configured engine, migrated to this node's schema version.
    ``lease``: a PostgreSQL lease already held (``suanli serve``), whose connection becomes
    the write connection."""
    if config.backend == "postgresql":
        from node.store.pg import PgDatabase
        from node.store.pgconn import password_of

        return PgDatabase(config.dsn, password_of(config.password_path), observer, lease=lease)
    from node.store.db import Database

    return Database(config.db_path, config.synchronous, observer=observer)


def connect_readonly(config: NodeConfig) -> Any:
    """A connection for reading only, without opening the door (exports from the command
    line while the node serves)."""
    if config.backend == "postgresql":
        return _pg_connection(config)
    import sqlite3

    conn = sqlite3.connect(f"file:{config.db_path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def connect_writer(config: NodeConfig) -> Any:
    """A connection outside the door, each statement committed unless the caller says
    BEGIN: for the benchmark's bulk loader into a stopped node's books, never while serving."""
    if config.backend == "postgresql":
        return _pg_connection(config)  # the role may write; each statement its own commit
    import sqlite3

    conn = sqlite3.connect(config.db_path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # a bulk load redone from scratch if it fails
    conn.row_factory = sqlite3.Row
    return conn


def _pg_connection(config: NodeConfig) -> Any:
    from node.store.pgconn import PgConnection, connect, password_of

    return PgConnection(connect(config.dsn, password_of(config.password_path)))


def lease_of(config: NodeConfig) -> PgLease:
    """The PostgreSQL lease of ``config``'s city (``suanli serve`` on PostgreSQL)."""
    from node.store.pg import PgLease
    from node.store.pgconn import password_of

    return PgLease(config.dsn, password_of(config.password_path))
