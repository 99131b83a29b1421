"""PostgreSQL clusters of our own, in temporary folders, on loopback: for the tests and the
benchmark (never for production, where the city's DBAs run the database).

``PgCluster.create()`` runs ``initdb`` in a new folder, starts the server on a free loopback
port and makes the role the nodes connect as (``suanli``, with a password checked by
SCRAM, as a city's database would), so the node's password path is the real one. A cluster
can take a synchronous streaming standby (``pg_basebackup -R``), be killed with SIGKILL and
have its standby promoted: what issue 19's failover tests need.

PostgreSQL refuses to run as root: when this process is root, every server command runs as
the ``postgres`` user Debian's package creates, and the folders are made theirs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)
ROLE = "suanli"
PASSWORD = "suanli-test-password"  # a throwaway cluster's; a city's lives in a 0600 file


class PgUnavailable(RuntimeError):
    pass


def pg_bin() -> Path:
    """The folder of PostgreSQL's server programs (Debian keeps them off the PATH)."""
    for d in BIN_DIRS:
        if (Path(d) / "initdb").exists():
            return Path(d)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PgUnavailable("PostgreSQL's initdb is not installed (Debian: apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner() -> dict[str, object]:
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def _run(*cmd: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
        **_as_owner(),  # type: ignore[call-overload]
    )
    return done


def _give(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class PgServer:
    """One PostgreSQL server (a primary or a standby) of a test cluster."""

    data: Path
    port: int
    name: str
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / f"{self.name}.log"

    def start(self) -> None:
        _run(pg_bin() / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        _run(pg_bin() / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend it started: the machine is gone."""
        pid = self.pid()
        if pid is None:
            return
        children = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        for p in [pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        (self.data / "postmaster.pid").unlink(missing_ok=True)

    def promote(self) -> None:
        _run(pg_bin() / "pg_ctl", "-D", self.data, "-w", "promote")

    def sql(self, statement: str, db: str = "postgres") -> str:
        """One statement as the superuser (trusted on loopback here); its first value."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} dbname={db} user=postgres connect_timeout=10",
            autocommit=True,
        ) as conn:
            cur = conn.execute(statement)
            row = cur.fetchone() if cur.description else None
        return "" if row is None or row[0] is None else str(row[0])


@dataclass
class PgCluster:
    """A primary (and, once asked, a synchronous standby) in one temporary folder."""

    root: Path
    primary: PgServer
    standby: PgServer | None = None

    @classmethod
    def create(cls) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="suanli-pg-"))
        _give(root)
        data = root / "primary"
        port = _free_port()
        _run(
            pg_bin() / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        )
        conf = (
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{root}'\n"
            "max_connections = 300\n"
            "shared_buffers = 64MB\n"
            "fsync = on\n"
            "synchronous_commit = on\n"
            "wal_level = replica\n"
            "max_wal_senders = 4\n"
            "hot_standby = on\n"
            # A node that vanished without closing its connection loses its lease (an
            # advisory lock on that connection) within about five seconds.
            "tcp_keepalives_idle = 2\n"
            "tcp_keepalives_interval = 1\n"
            "tcp_keepalives_count = 3\n"
        )
        with open(data / "postgresql.conf", "a") as f:
            f.write(conf)
        # The nodes' role signs in with a password (SCRAM), over TCP or the Unix socket;
        # everything else is trusted here.
        hba = data / "pg_hba.conf"
        hba.write_text(
            f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
            f"local all {ROLE} scram-sha-256\n" + hba.read_text()
        )
        cluster = cls(root, PgServer(data, port, "primary"))
        cluster.primary.start()
        cluster.primary.sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        return cluster

    def dsn(self, dbname: str, *, both: bool = False, local: bool = False) -> str:
        """A libpq connection string without the password. ``both``: the primary's and the
        standby's addresses, read-write session wanted (it follows a promotion). ``local``:
        through the primary's Unix socket, as a database on the node's own machine is
        reached, instead of TCP."""
        servers = [self.primary] + ([self.standby] if both and self.standby else [])
        host = str(self.root) if local else "127.0.0.1"
        hosts = ",".join(host for _ in servers)
        ports = ",".join(str(s.port) for s in servers)
        extra = " target_session_attrs=read-write" if both else ""
        return f"host={hosts} port={ports} dbname={dbname} user={ROLE} connect_timeout=3{extra}"

    def create_database(self, name: str, *, local: bool = False) -> str:
        self.primary.sql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.dsn(name, local=local)

    def drop_database(self, name: str) -> None:
        self.primary.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def add_standby(self) -> PgServer:
        """A streaming standby made with ``pg_basebackup -R``, and the primary made to wait
        for it at every commit (``synchronous_standby_names``)."""
        data = self.root / "standby"
        port = _free_port()
        _run(
            pg_bin() / "pg_basebackup",
            "-D",
            data,
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-X",
            "stream",
            "-R",
            "--no-sync",
            "-c",
            "fast",
            "-d",
            f"application_name=standby1 port={self.primary.port}",
        )
        with open(data / "postgresql.auto.conf", "a") as f:
            f.write(f"port = {port}\n")
        self.standby = PgServer(data, port, "standby")
        self.standby.start()
        self.primary.sql("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
        self.primary.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = self.primary.sql(
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'"
            )
            if state == "sync":
                return self.standby
            time.sleep(0.1)
        raise PgUnavailable("the standby did not become synchronous within 30 s")

    def close(self) -> None:
        for server in (self.standby, self.primary):
            if server is not None:
                server.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
