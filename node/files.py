"""Files at rest are private, and one ``suanli serve`` owns a data folder.

Everything a node writes in its data folder is readable by its owner only: the database and
its WAL and shared-memory files (SQLite creates those with the database file's own mode, so
the database is created 0600 before SQLite opens it), ``node.toml``, keys, backups. ``suanli``
also runs with umask 077, so anything else it creates (exports, logs it redirects) is too.

``serve.lock`` holds an exclusive ``flock`` for as long as a ``suanli serve`` runs, with its
pid inside; a second one on the same folder refuses to start and names that pid. The kernel
drops the lock when the process ends, however it ends (kill -9 included), so a stale lock
file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

PRIVATE = 0o600
LOCK_FILE = "serve.lock"


class FolderBusy(RuntimeError):
    """Another ``suanli serve`` holds the data folder."""


def private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist; make it 0600 if it does (without
    opening it: see ``private_database``)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    os.chmod(path, PRIVATE)


def private_database(path: Path) -> None:
    """The database file, and its WAL and shared memory if they exist, made 0600 before
    SQLite opens it (and creates the others with the same mode).

    An existing database is never opened here, only chmod-ed: closing any descriptor of a
    file drops every POSIX lock this process holds on it, the locks of SQLite connections
    already open included (SQLite's documentation, "How To Corrupt An SQLite Database File",
    §2.2). A new one is created and closed before any connection to it can exist."""
    private(path)
    for name in (f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, PRIVATE)


def write_private(path: Path, text: str) -> None:
    """Write a whole file readable by its owner only (never, even briefly, by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    os.fchmod(fd, PRIVATE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


class FolderLock:
    """An exclusive lock on a data folder for one serving process."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        holder = self.try_acquire()
        if holder is not None:
            raise FolderBusy(
                f"another suanli serve (pid {holder}) is running on {self.path.parent}; "
                "stop it first, or give this one another data folder"
            )

    def try_acquire(self) -> str | None:
        """Take the lock if it is free (None), else return the holder's pid and keep nothing
        open: a standby (node/standby.py) asks again until the active process is gone."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the descriptor; the file stays
            self._fd = None


def read_private(path: Path) -> str:
    """A secret's file (a database password): refused unless only its owner can read it."""
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(
            f"{path} is readable by others (mode {mode:o}); chmod 600 it: it holds a secret"
        )
    return path.read_text(encoding="utf-8")
