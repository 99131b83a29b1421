"""The standby of an active/standby pair (docs/operations.md, "An active/standby pair").

Two ``suanli serve`` processes share one data folder, and so one database, each on its own
ports. The one that holds the folder's lock (``serve.lock``, ``node.files.FolderLock``) is
active: it is the only one that opens the database, so at most one ever writes. ``suanli serve
--standby`` waits for that lock. While it waits it answers on its own ports and touches nothing:

* REST: ``GET /health`` says ``{"status": "standby", ...}`` and where the active one serves
  (from its ``serve.json``); every other request is refused with 503 ``not_active``, naming the
  active node's address, so that a provider's retry can go there;
* the federation port refuses every call as UNAVAILABLE with the code ``not_active``, so a peer
  tries the city's next endpoint (the card lists both, docs/protocol.md §6), and the gRPC health
  service says NOT_SERVING.

The kernel drops the active process's lock the moment it ends, kill -9 included. The standby
asks for it every ``POLL_SECONDS``; once it holds it, it stops answering as the standby and
starts the node on the same ports, which then serves whatever the active one had committed
(each answer was given only after its commit). The lock, not the network, decides who is
active: a process that holds it is never told to stop, and one that does not never writes.

**On PostgreSQL** the two nodes run on two machines, each with its own data folder (the same
node.toml settings and the same node key), over one database. What the standby waits for is
then the database lease (``node.store.pg.PgLease``): an advisory lock on the active node's
write connection, which the database frees when that session ends. Everything else is as
above; where the active one serves is read from the books, where it wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from federation.server import ServerTls, start_standby_server
from node import errors
from node.config import NodeConfig

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.1
SERVE_FILE = "serve.json"


def active_at(data_dir: Path) -> str:
    """Where the active process serves, as its ``serve.json`` says (REST and gRPC ports; not
    its pid, which is nobody's business outside this machine)."""
    try:
        state = json.loads((data_dir / SERVE_FILE).read_text())
        host = state.get("host") or "127.0.0.1"
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        grpc = f", gRPC port {state['grpc_port']}" if state.get("grpc_port") else ""
        return f"http://{host}:{int(state['http_port'])}{grpc}"
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown (no active node has said where it serves)"


class Lock(Protocol):
    """What the standby waits for: the folder's lock (SQLite) or the database lease
    (PostgreSQL, ``node.store.pg.PgLease``). ``try_acquire`` is None once it is ours."""

    def try_acquire(self) -> str | None: ...


def _app(config: NodeConfig, where: Callable[[], str]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        where_now = where()
        if request.path == "/health" and request.method == "GET":
            return web.json_response(
                {
                    "status": "standby",
                    "role": "standby",
                    "region": config.region,
                    "active": where_now,
                }
            )
        refusal = errors.NotActive(
            f"this node is the standby of {config.region}; the active node serves at {where_now}"
        )
        return web.json_response(refusal.to_json(), status=503, headers={"Retry-After": "1"})

    app = web.Application(client_max_size=config.max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def stand_by(
    config: NodeConfig,
    lock: Lock,
    host: str,
    port: int,
    grpc_port: int | None,
    tls: ServerTls | None,
) -> tuple[bool, int, int | None]:
    """Answer as the standby on ``host:port`` (and the federation port) until ``lock`` is
    ours, or until SIGTERM or SIGINT. Returns whether the lock is ours and the ports bound
    (a port 0 becomes one the node then serves on too), every port released.

    Where the active node serves: on SQLite its ``serve.json`` in the shared folder; on
    PostgreSQL what the lease's holder wrote in the books (``PgDatabase.mark_active``), as
    the last ask for the lease read it (the two nodes have folders on different machines)."""
    first = await asyncio.to_thread(lock.try_acquire)
    if first is None:  # nobody was active: serve at once
        logger.info("node %s: the lock is ours; serving", config.region)
        return True, port, grpc_port
    holder = [first]

    def where() -> str:
        return active_at(config.data_dir) if config.backend == "sqlite" else holder[0]

    runner = web.AppRunner(_app(config, where), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    port = runner.addresses[0][1]
    grpc_server: Any = None
    fed = config.federation
    if fed is not None:
        grpc_server, grpc_port = await start_standby_server(
            fed.host,
            fed.port if grpc_port is None else grpc_port,
            tls,
            where,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger.info(
        "node %s standing by on port %d: the active one serves at %s",
        config.region,
        port,
        where(),
    )
    try:
        while not stop.is_set():
            seen = await asyncio.to_thread(lock.try_acquire)  # PostgreSQL: a round trip
            if seen is None:
                logger.info("node %s: the lock is ours; taking over", config.region)
                return True, port, grpc_port
            holder[0] = seen
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        return False, port, grpc_port
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        if grpc_server is not None:
            await grpc_server.stop(None)
