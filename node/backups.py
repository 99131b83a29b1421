"""Backup sets and restores: a warm standby on SQLite (docs/operations.md, "Backups and a warm
standby").

A **backup set** is a folder ``<region>-<UTC time>`` holding everything a node needs to start
again elsewhere: the books (``suanli.db``, copied with SQLite's online backup API while the
node serves, integrity-checked), ``node.toml``, ``node.key`` and ``keys/`` (the retired seeds),
and ``MANIFEST.json`` (region, schema version, when, the SHA-256 of each file). It is written
under a temporary name and renamed when complete, so a set that exists is whole. Everything
in it is its owner's only (0700 / 0600): it holds the node's signing key.

A serving node with ``[backup] folder`` set takes a set when it starts and every
``interval_minutes`` after, keeping the newest ``keep``. ``suanli backup --to FOLDER`` takes
one by hand. ``suanli restore --from SET --data FOLDER`` checks the manifest, copies the set
into a new data folder (or, with ``--replace``, into one whose node is stopped: the folder lock
refuses while a ``suanli serve`` holds it), and checks the books.

What a restore loses is what was committed after the set was taken: the recovery point is the
interval. Peers keep their side of anything they answered since (the issuer's inbox and
receipts; the acquirer's outbox resends what it never got an answer to), and the pair
statements of the window show any difference record by record (docs/settlement.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from node.config import CONFIG_FILE, DB_FILE, KEY_FILE, NodeConfig
from node.files import PRIVATE, FolderLock
from node.store.db import backup

KEYS_DIR = "keys"
MANIFEST = "MANIFEST.json"


class RestoreRefused(ValueError):
    """A set that is incomplete or altered, or a destination that is not free."""


@dataclass(frozen=True)
class BackupSet:
    path: Path
    region: str
    taken_at_ms: int
    schema_version: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_private(src: Path, dst: Path) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out)
        out.flush()
        os.fsync(out.fileno())


def _files(root: Path) -> list[Path]:
    """The set's files, relative to it, the manifest aside."""
    return sorted(
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST
    )


def take(config: NodeConfig, folder: Path, now: float | None = None) -> BackupSet:
    """A complete backup set of the node in ``folder`` (created 0700 if need be)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    moment = dt.datetime.fromtimestamp(now if now is not None else time.time(), dt.UTC)
    name = f"{config.region}-{moment.strftime('%Y%m%dT%H%M%S')}.{moment.microsecond // 1000:03d}Z"
    tmp = folder / f".{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    try:
        version = backup(config.db_path, tmp / DB_FILE)
        for single in (CONFIG_FILE, KEY_FILE):
            _copy_private(config.data_dir / single, tmp / single)
        keys = config.data_dir / KEYS_DIR
        if keys.is_dir():
            (tmp / KEYS_DIR).mkdir(mode=0o700)
            for seed in sorted(keys.iterdir()):
                _copy_private(seed, tmp / KEYS_DIR / seed.name)
        taken = int(moment.timestamp() * 1000)
        manifest = {
            "region": config.region,
            "taken_at_ms": taken,
            "taken_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "schema_version": version,
            "files": {str(f): _sha256(tmp / f) for f in _files(tmp)},
        }
        fd = os.open(tmp / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
        with os.fdopen(fd, "w") as out:
            json.dump(manifest, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        final = folder / name
        os.rename(tmp, final)  # a set that exists is complete
        dirfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BackupSet(final, config.region, taken, version)


def read(path: Path) -> BackupSet:
    """A set's manifest, its files checked against it."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
        region, taken, version = (
            str(manifest["region"]),
            int(manifest["taken_at_ms"]),
            int(manifest["schema_version"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RestoreRefused(
            f"{path} is not a backup set (no readable {MANIFEST}): {exc}"
        ) from None
    present = {str(f) for f in _files(path)}
    if present != set(files):
        raise RestoreRefused(
            f"{path}: the files differ from its manifest (missing or extra: "
            f"{', '.join(sorted(present ^ set(files)))})"
        )
    for name, digest in files.items():
        if _sha256(path / name) != digest:
            raise RestoreRefused(f"{path}: {name} does not match its manifest (altered or damaged)")
    for needed in (DB_FILE, CONFIG_FILE, KEY_FILE):
        if needed not in files:
            raise RestoreRefused(f"{path}: the set has no {needed}")
    return BackupSet(path, region, taken, version)


def sets(folder: Path, region: str) -> list[BackupSet]:
    """This region's complete sets in ``folder``, oldest first (manifests read, not checked)."""
    out = []
    for path in folder.glob(f"{region}-*Z") if folder.is_dir() else ():
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            out.append(
                BackupSet(
                    path, region, int(manifest["taken_at_ms"]), int(manifest["schema_version"])
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda s: s.taken_at_ms)


def prune(folder: Path, region: str, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` sets; returns what was removed."""
    old = sets(folder, region)[:-keep]
    for s in old:
        shutil.rmtree(s.path)
    return [s.path for s in old]


def restore(source: Path, data_dir: Path, replace: bool = False) -> BackupSet:
    """Copy a checked set into ``data_dir``: a new folder, or with ``replace`` one whose node
    is stopped (its files are moved aside to ``<data_dir>.replaced-<time>``, never deleted).
    The caller then checks the books (``suanli check``) before serving."""
    found = read(source)
    lock: FolderLock | None = None
    if data_dir.exists() and any(data_dir.iterdir()):
        if not replace:
            raise RestoreRefused(
                f"{data_dir} is not empty; restore into a new folder, or pass --replace "
                "(its node must be stopped: the files there are moved aside, not deleted)"
            )
        lock = FolderLock(data_dir)
        lock.acquire()  # FolderBusy while a suanli serve holds it: the old node still runs
    try:
        if lock is not None:
            aside = data_dir.with_name(f"{data_dir.name}.replaced-{int(time.time())}")
            aside.mkdir(mode=0o700)
            for item in data_dir.iterdir():
                if item.name != "serve.lock":
                    os.rename(item, aside / item.name)
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        for name in _files(source):
            target = data_dir / name
            target.parent.mkdir(mode=0o700, exist_ok=True)
            _copy_private(source / name, target)
    finally:
        if lock is not None:
            lock.release()
    return found
