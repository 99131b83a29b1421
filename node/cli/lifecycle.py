"""Commands that set a node up and keep it running: init, federation enable, serve, health, check, backup, restore, demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from node import logs
from node.app import build_node, make_app, tls_of
from node.cli.options import (
    PORT,
    SERVE_FILE,
    federation_of,
    federation_options,
    operator_of,
    with_data,
)
from node.clock import iso
from node.config import ConfigError, NodeConfig
from node.config import load as load_config
from node.files import FolderLock
from node.node import Node
from node.provision import init_node
from node.store.db import backup

logger = logging.getLogger(__name__)


def _cmd_init(args: argparse.Namespace) -> int:
    federation = federation_of(args) if args.grpc_port is not None else None
    token = init_node(
        args.data,
        args.region,
        args.name,
        Path(args.policy).read_text(),
        args.port,
        args.synchronous,
        federation=federation,
        who=operator_of(args),
        storage=(
            {
                "backend": "postgresql",
                "dsn": args.dsn,
                "password_file": str(Path(args.password_file).resolve())
                if args.password_file
                else "",
            }
            if args.backend == "postgresql"
            else None
        ),
    )
    print(f"node {args.region} ({args.name}) created in {args.data}")
    print(f"operator token (shown once, stored hashed): {token}")
    return 0


def _cmd_federation(args: argparse.Namespace) -> int:
    from node.provision import enable_federation

    federation = federation_of(args)
    enable_federation(args.data, federation, args.replace)
    print(
        f"federation {'changed' if args.replace else 'enabled'}: gRPC on {federation.host}:"
        f"{federation.port}, peers dial {federation.advertised}"
        + (" (plaintext: loopback only)" if federation.plaintext else " (TLS)")
    )
    print("restart the node to serve it; then exchange cards (suanli card export)")
    return 0


LEASE_CHECK_SECONDS = 1.0
LEASE_LOST_EXIT = 75  # EX_TEMPFAIL: the supervisor starts the node again (as a standby)


async def serve(node: Node, host: str, port: int) -> bool:
    """Serve until SIGTERM or SIGINT, or until the database lease is lost (PostgreSQL; then
    returns False). Writes ``serve.json`` (pid, bound port) once listening, and says in the
    books where it serves (a standby on another machine reads it there)."""
    from node.api.http import Runner

    runner = Runner(make_app(node), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    state = node.config.data_dir / SERVE_FILE
    tmp = state.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {"pid": os.getpid(), "host": host, "http_port": bound, "grpc_port": node.grpc_port}
        )
    )
    tmp.replace(state)
    logger.info("node %s serving http://%s:%d", node.config.region, host, bound)
    grpc = f", gRPC port {node.grpc_port}" if node.grpc_port else ""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    await asyncio.to_thread(node.db.mark_active, f"http://{shown}:{bound}{grpc}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    held = True
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LEASE_CHECK_SECONDS)
            if not stop.is_set() and not await node.db.alive():
                held = False
                logger.error(
                    "node %s lost its database lease: stopping, so that its standby serves",
                    node.config.region,
                )
                break
        return held
    finally:
        state.unlink(missing_ok=True)
        await runner.cleanup()
        logger.info("node %s stopped", node.config.region)


def _cmd_serve(args: argparse.Namespace) -> int:
    lock = FolderLock(Path(args.data))
    config = load_config(Path(args.data))
    if config.backend == "postgresql":
        return _serve_postgresql(args, config, lock)
    if args.standby:
        # The standby of a pair (node/standby.py): answer as such until the lock is ours.
        if not _stand_by(args, config, lock):
            return 0
    else:
        lock.acquire()  # before anything is opened: a second serve changes nothing
    try:
        return _serve_locked(args)
    finally:
        lock.release()


def _serve_postgresql(args: argparse.Namespace, config: NodeConfig, lock: FolderLock) -> int:
    """On PostgreSQL the folder is this machine's alone (its lock still keeps a second serve
    off it), and what makes a node active is the database lease (node/store/pg.py)."""
    from node.store.engine import lease_of

    lock.acquire()
    lease = lease_of(config)
    try:
        if args.standby:
            if not _stand_by(args, config, lease):
                return 0
        else:
            lease.acquire()
        return _serve_locked(args, lease)
    finally:
        lease.release()
        lock.release()


def _stand_by(args: argparse.Namespace, config: NodeConfig, lock: Any) -> bool:
    """Answer as the standby until ``lock`` (the folder's, or the database lease) is ours;
    False if stopped first. The ports it bound are the ones the node then serves on."""
    from node.standby import stand_by

    logs.setup(config.region, fmt=args.log_format or config.log_format)
    host = args.host or config.http_host
    port = config.http_port if args.port is None else args.port
    tls = tls_of(config, config.federation)[1] if config.federation else None
    taken, args.port, args.grpc_port = asyncio.run(
        stand_by(config, lock, host, port, args.grpc_port, tls)
    )
    return taken


def _serve_locked(args: argparse.Namespace, lease: Any = None) -> int:
    node = build_node(args.data, lease=lease)
    logs.setup(node.config.region, fmt=args.log_format or node.config.log_format)
    host = args.host or node.config.http_host
    port = node.config.http_port if args.port is None else args.port
    if args.grpc_port is not None and node.federation is not None:
        # This process's own federation port (the two of a pair on one machine differ).
        node.federation.config = dataclasses.replace(node.federation.config, port=args.grpc_port)
    # SUANLI_PROFILE=DIR: profile the whole run (cProfile) into DIR/serve-<region>.pstats when
    # the node stops; for benchmarks (docs/benchmarks.md), never in production.
    profile_dir = os.environ.get("SUANLI_PROFILE")
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        held = asyncio.run(serve(node, host, port))
    finally:
        if profiler is not None and profile_dir:
            profiler.disable()
            profiler.dump_stats(Path(profile_dir) / f"serve-{node.config.region}.pstats")
        node.close()
    return 0 if held else LEASE_LOST_EXIT


def _cmd_health(args: argparse.Namespace) -> int:
    """Is the node in DATA serving? Its REST /health answers ok and, if federated, its gRPC
    port accepts connections (TLS or not), on this machine, at the ports ``serve.json``
    names: for container and service health checks. Exit 0 if healthy, 1 if not, saying why."""
    import socket
    import urllib.request

    state = Path(args.data) / SERVE_FILE
    try:
        serving = json.loads(state.read_text())
        port, grpc_port = int(serving["http_port"]), serving.get("grpc_port")
        fed = load_config(Path(args.data)).federation
    except (OSError, ValueError, KeyError) as exc:
        print(f"unhealthy: {state} is not readable ({exc}): the node is not serving")
        return 1

    def reachable(host: str) -> str:  # a wildcard bind is reached on loopback
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host

    try:
        url = f"http://{reachable(str(serving.get('host', '')))}:{port}/health"
        with urllib.request.urlopen(url, timeout=3) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        print(f"unhealthy: GET /health on port {port}: {exc}")
        return 1
    if body.get("status") != "ok":
        print(f"unhealthy: /health says {body}")
        return 1
    if grpc_port:
        try:
            host = reachable(fed.host if fed else "")
            socket.create_connection((host, int(grpc_port)), timeout=3).close()
        except OSError as exc:
            print(f"unhealthy: the federation port {grpc_port} refuses connections: {exc}")
            return 1
    print(f"healthy: {body['region']} {body['version']}, REST {port}, gRPC {grpc_port or '-'}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    node = build_node(args.data)
    try:
        problems = node.check()
    finally:
        node.close()
    if problems:
        for p in problems:
            print(f"VIOLATION: {p}")
        return 1
    print("books balance: every invariant holds")
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    from node import backups
    from node.config import load as load_config

    config = load_config(args.data)
    if config.backend == "postgresql":
        raise ConfigError(
            "this node's books are in PostgreSQL: back them up with the database's own tools "
            "(pg_dump, pgBackRest, the cloud's snapshots), and node.toml and node.key as files "
            "(docs/operations.md, Choosing an engine)"
        )
    if args.to:
        taken = backups.take(config, Path(args.to))
        print(
            f"backup set {taken.path} (schema version {taken.schema_version}): the books, "
            "node.toml and the keys; keep it as secret as node.key"
        )
        return 0
    if not args.out:
        raise ConfigError("give a file for the books (suanli backup FILE) or --to FOLDER for a set")
    version = backup(config.db_path, Path(args.out))
    print(
        f"books backed up to {args.out} (schema version {version}); back up node.key and keys/ separately"
    )
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from node import backups

    try:
        found = backups.restore(Path(args.source), Path(args.data), args.replace)
    except backups.RestoreRefused as exc:
        print(f"not restored: {exc}", file=sys.stderr)
        return 2
    print(
        f"restored {found.region} from the set taken at {iso(found.taken_at_ms)} into {args.data}"
    )
    print(
        "anything this node committed after that moment is not in it: peers keep their side "
        "(see docs/operations.md, Backups and a warm standby)"
    )
    node = build_node(Path(args.data))  # migrates a set from an older version forward
    try:
        problems = node.check()
    finally:
        node.close()
    for problem in problems:
        print(f"VIOLATION: {problem}")
    if problems:
        return 1
    print("books balance: every invariant holds; start it with suanli serve --data " + args.data)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from node.tools.demo import run_demo

    code: int = asyncio.run(run_demo(args))
    return code


def register(sub: Any) -> None:
    sp = with_data(
        sub.add_parser("init", help="create a node: folder, key, database, policy, first token")
    )
    sp.add_argument("--region", required=True, help="GB/T 2260 code, e.g. 330100")
    sp.add_argument("--name", required=True)
    sp.add_argument("--policy", required=True, help="the fiscal year's policy TOML")
    sp.add_argument("--port", type=PORT, default=8330)
    sp.add_argument("--synchronous", default="FULL", choices=["NORMAL", "FULL", "EXTRA"])
    sp.add_argument(
        "--backend",
        default="sqlite",
        choices=["sqlite", "postgresql"],
        help="where the books live (docs/operations.md, Choosing an engine)",
    )
    sp.add_argument(
        "--dsn",
        default="",
        help="postgresql: a libpq connection string without the password, e.g. "
        "'host=db1,db2 dbname=suanli user=suanli target_session_attrs=read-write'",
    )
    sp.add_argument(
        "--password-file",
        default="",
        help="postgresql: a 0600 file holding the role's password (else libpq's PGPASSFILE)",
    )
    federation_options(sp, required=False)
    sp.set_defaults(fn=_cmd_init)

    fp = sub.add_parser("federation", help="this node's part in the federation")
    fsub = fp.add_subparsers(dest="action", required=True)
    sp = with_data(
        fsub.add_parser(
            "enable", help="serve the federation on an existing node (writes node.toml)"
        )
    )
    federation_options(sp, required=True)
    sp.add_argument(
        "--replace",
        action="store_true",
        help="change the address or TLS files of a node already in",
    )
    fp.set_defaults(fn=_cmd_federation)

    sp = with_data(sub.add_parser("serve", help="serve the REST API"))
    sp.add_argument("--host")
    sp.add_argument("--port", type=PORT)
    sp.add_argument(
        "--grpc-port", type=PORT, help="this process's federation port (default: node.toml's)"
    )
    sp.add_argument(
        "--standby",
        action="store_true",
        help="the standby of an active/standby pair: wait for the active one to end, then serve",
    )
    sp.add_argument(
        "--log-format", choices=["text", "json"], help="default: [logging] format, else text"
    )
    sp.set_defaults(fn=_cmd_serve)

    with_data(sub.add_parser("check", help="verify the money invariants")).set_defaults(
        fn=_cmd_check
    )

    sp = with_data(
        sub.add_parser("health", help="exit 0 if the node in DATA serves (container health checks)")
    )
    sp.set_defaults(fn=_cmd_health)
    sp = with_data(
        sub.add_parser("backup", help="copy the books while the node serves (SQLite backup API)")
    )
    sp.add_argument("out", nargs="?", help="the books only, into this file")
    sp.add_argument(
        "--to", help="a whole backup set (books, node.toml, keys) in a new folder inside this one"
    )
    sp.set_defaults(fn=_cmd_backup)
    sp = sub.add_parser("restore", help="a new data folder from a backup set, checked")
    sp.add_argument("--from", dest="source", required=True, help="the backup set's folder")
    sp.add_argument("--data", required=True, help="the data folder to create")
    sp.add_argument(
        "--replace",
        action="store_true",
        help="into an existing folder whose node is stopped (its files are moved aside)",
    )
    sp.set_defaults(fn=_cmd_restore)

    sub.add_parser(
        "bench", help="the benchmark (docs/benchmarks.md): suanli bench [--quick] [--out FILE]"
    )

    sp = sub.add_parser("demo", help="start a demo node with example holders, providers and flows")
    sp.add_argument(
        "--data", type=Path, help="keep the demo's data here (default: a new temp folder)"
    )
    sp.add_argument("--port", type=PORT, default=8330)
    sp.add_argument("--once", action="store_true", help="run the scenario, check the books, exit")
    sp.set_defaults(fn=_cmd_demo)
