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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from federation.server import ServerTls, start_standby_server
from node import errors
from node.config import NodeConfig
from node.files import FolderLock

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


def _app(config: NodeConfig) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        where = active_at(config.data_dir)
        if request.path == "/health" and request.method == "GET":
            return web.json_response(
                {"status": "standby", "role": "standby", "region": config.region, "active": where}
            )
        refusal = errors.NotActive(
            f"this node is the standby of {config.region}; the active node serves at {where}"
        )
        return web.json_response(refusal.to_json(), status=503, headers={"Retry-After": "1"})

    app = web.Application(client_max_size=config.max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def stand_by(
    config: NodeConfig,
    lock: FolderLock,
    host: str,
    port: int,
    grpc_port: int | None,
    tls: ServerTls | None,
) -> tuple[bool, int, int | None]:
    """Answer as the standby on ``host:port`` (and the federation port) until ``lock`` is
    ours, or until SIGTERM or SIGINT. Returns whether the lock is ours and the ports bound
    (a port 0 becomes one the node then serves on too), every port released."""
    runner = web.AppRunner(_app(config), access_log=None)
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
            lambda: active_at(config.data_dir),
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logger.info(
        "node %s standing by on port %d: the active one serves at %s",
        config.region,
        port,
        active_at(config.data_dir),
    )
    try:
        while not stop.is_set():
            if lock.try_acquire() is None:
                logger.info("node %s: the lock is ours; taking over", config.region)
                return True, port, grpc_port
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
        return False, port, grpc_port
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
        if grpc_server is not None:
            await grpc_server.stop(None)
