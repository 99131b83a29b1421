"""The composition root: the one place that builds a node's parts and wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from node.clock import Clock, SystemClock
from node.config import NodeConfig
from node.config import load as load_config
from node.keys import NodeKey
from node.metrics import BooksCollector, Metrics
from node.services.check import check_books
from node.services.issuance import Issuance
from node.services.policies import PolicyBook
from node.services.registry import Registry, Tokens
from node.services.spending import Spending
from node.services.views import Views
from node.store.db import Database

logger = logging.getLogger(__name__)


@dataclass
class Node:
    config: NodeConfig
    clock: Clock
    db: Database
    key: NodeKey
    metrics: Metrics
    books_collector: BooksCollector
    policies: PolicyBook
    registry: Registry
    tokens: Tokens
    issuance: Issuance
    spending: Spending
    views: Views

    def check(self) -> list[str]:
        """The money invariants, from the current books."""
        grace = int(self.config.sweep_interval_seconds * 1000) * 2

        def txn(conn: sqlite3.Connection) -> list[str]:
            years = {y: self.policies.for_year(y) for y in self.policies.years()}
            return check_books(
                conn, years, self.clock.now_ms(), grace, {self.key.key_id: self.key.public_key}
            )

        return self.db.run_sync("check", txn)

    def close(self) -> None:
        self.books_collector.close()
        self.db.close()


def build_node(data_dir: Path, clock: Clock | None = None) -> Node:
    config = load_config(data_dir)
    clock = clock or SystemClock()
    metrics = Metrics()
    db = Database(config.db_path, config.synchronous, observer=metrics.observe_db)
    key = NodeKey.load(config.key_path)
    policies = PolicyBook(db, clock, config.region)
    policies.reload_sync()
    books = BooksCollector(
        config.db_path, lambda: {y: policies.for_year(y) for y in policies.years()}
    )
    metrics.registry.register(books)
    return Node(
        config=config,
        clock=clock,
        db=db,
        key=key,
        metrics=metrics,
        books_collector=books,
        policies=policies,
        registry=Registry(db, clock, policies),
        tokens=Tokens(db, clock),
        issuance=Issuance(db, clock, policies, key, observer=metrics.observe_decision),
        spending=Spending(db, clock, policies, observer=metrics.observe_flow),
        views=Views(db, clock, policies),
    )


async def sweeper(node: Node) -> None:
    """Expire holds and vouchers, and pick up policies loaded from the CLI, forever."""
    while True:
        try:
            await node.policies.refresh()
            result = await node.spending.sweep()
            if any(result.values()):
                logger.info("sweep: %s", result)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("sweep failed; will retry")
        await asyncio.sleep(node.config.sweep_interval_seconds)


def sweeper_ctx(node: Node):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sweeper(node), name="sweeper")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
