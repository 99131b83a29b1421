"""A serving node's background lifetimes, tied to the web app's (``cleanup_ctx``): the sweeper,
the scheduled backups, and the federation's gRPC server and outbox workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from federation.server import start_server
from node.node import Node

logger = logging.getLogger(__name__)


async def sweeper(node: Node) -> None:
    """Expire holds and vouchers, close due windows, pick up the CLI's changes, and (in the
    background, so that a dead peer never holds it up) announce cards and send statements."""
    background: dict[str, asyncio.Task[int]] = {}

    def start(name: str, work: Callable[[], Awaitable[int]]) -> None:
        task = background.get(name)
        if task is None or task.done():
            background[name] = asyncio.create_task(_logged(name, work), name=name)

    while True:
        try:
            await node.policies.refresh()
            if node.federation is not None:
                fed = node.federation
                await fed.directory.refresh()
                fed.outbox.ensure_workers()
                await fed.acquirer.sweep()
                start("announce", fed.announcer.announce)
                start("window_notices", fed.notifier.notify)
                start("statements", fed.settler.tick)
            await node.catalog.sweep()
            result = await node.spending.sweep()
            if any(result.values()):
                logger.info("sweep: %s", result)
            closed = await node.settlement.tick()
            if closed:
                logger.info("closed settlement windows %s", ", ".join(closed))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("sweep failed; will retry")
        await asyncio.sleep(node.config.sweep_interval_seconds)


async def _logged(name: str, work: Callable[[], Awaitable[int]]) -> int:
    try:
        return await work()
    except Exception:
        logger.exception("%s failed; will retry", name)
        return 0


async def backups(node: Node) -> None:
    """Take a backup set now and every interval, keep the newest ``keep`` (node/backups.py).
    A failure is logged and retried at the next interval; the metrics say when the last
    one succeeded, which the SuanliBackupStale alert watches."""
    from node import backups as sets

    config = node.config
    folder = Path(config.backup_folder)
    folder = folder if folder.is_absolute() else config.data_dir / folder
    interval = config.backup_interval_minutes * 60
    metrics = node.metrics
    metrics.backup_interval.set(interval)
    known = sets.sets(folder, config.region)
    if known:
        metrics.backup_last.set(known[-1].taken_at_ms / 1000)
    while True:
        try:
            started = time.monotonic()
            taken = await asyncio.to_thread(sets.take, config, folder)
            removed = await asyncio.to_thread(sets.prune, folder, config.region, config.backup_keep)
            metrics.backup_last.set(taken.taken_at_ms / 1000)
            logger.info(
                "backup set %s taken in %.1f s (%d older removed)",
                taken.path,
                time.monotonic() - started,
                len(removed),
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("backup to %s failed; will retry in %.0f s", folder, interval)
        await asyncio.sleep(interval)


def _background(
    name: str, work: Callable[[], Coroutine[Any, Any, None]]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A task that runs for the app's lifetime and is cancelled when it ends."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(work(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def backup_ctx(node: Node) -> Callable[[web.Application], AsyncIterator[None]]:
    return _background("backups", lambda: backups(node))


def sweeper_ctx(node: Node) -> Callable[[web.Application], AsyncIterator[None]]:
    return _background("sweeper", lambda: sweeper(node))


def federation_ctx(node: Node) -> Callable[[web.Application], AsyncIterator[None]]:
    """The gRPC server and the outbox workers, for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        fed = node.federation
        assert fed is not None
        server, bound = await start_server(
            fed.servicer, fed.config.host, fed.config.port, fed.server_tls
        )
        node.grpc_port = bound
        logger.info(
            "federation gRPC on %s:%d (%s)",
            fed.config.host,
            bound,
            "plaintext" if fed.server_tls is None else "TLS",
        )
        fed.outbox.ensure_workers()
        offers = asyncio.create_task(
            fed.offers.run(node.config.sweep_interval_seconds), name="offers"
        )
        yield
        offers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await offers
        await fed.offers.close()
        await fed.outbox.close()
        await server.stop(grace=2.0)
        await fed.clients.close()

    return ctx
