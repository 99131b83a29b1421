"""What a node is made of, once built: the ``Node`` and its ``Federation`` parts. Plain
containers (``node/app.py`` builds them); the REST app's typed state refers to ``Node``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from federation.announce import Announcer, WindowNotifier
from federation.client import Clients
from federation.envelope import Door
from federation.offers import Publisher
from federation.outbox import Outbox
from federation.server import ServerTls, Servicer
from node.clock import Clock, year_of
from node.config import FederationConfig, NodeConfig
from node.domain.windows import window_bounds
from node.keys import NodeKey
from node.metrics import BooksCollector, Metrics
from node.services import execution
from node.services.acquirer import Acquirer
from node.services.authorizations import Authorizations
from node.services.catalog import Catalog
from node.services.clearing import Clearing
from node.services.directory import Directory
from node.services.disbursements import Disbursements
from node.services.issuance import Issuance
from node.services.issuer import IssuerDesk
from node.services.netting import Netting
from node.services.orders import Orders
from node.services.overview import Overview
from node.services.ownkeys import load_txn as load_own_keys
from node.services.payouts import LocalSettlement, SettlementViews
from node.services.peering import Peering
from node.services.policies import PolicyBook
from node.services.registry import Registry, Tokens
from node.services.sessions import Sessions
from node.services.spending import Spending
from node.services.statements import Settler
from node.services.views import Views
from node.store import settlement as settlement_store
from node.store.audit import check_books
from node.store.engine import Books


@dataclass
class Federation:
    """The federation parts of a node, present when ``[federation]`` is configured."""

    config: FederationConfig
    directory: Directory
    door: Door
    issuer: IssuerDesk
    outbox: Outbox
    acquirer: Acquirer
    clients: Clients
    servicer: Servicer
    server_tls: ServerTls | None
    announcer: Announcer
    notifier: WindowNotifier  # tells peers of this node's window closes
    settler: Settler
    netting: Netting
    clearing: Clearing  # transfers between cities: advices and confirmations
    peering: Peering  # the peers' cards and status
    card: Callable[[], bytes]  # this node's signed card, listing every own key
    offers: Publisher  # pushes this city's offers, catches up on the peers'


@dataclass
class Node:
    config: NodeConfig
    clock: Clock
    db: Books
    key: NodeKey
    metrics: Metrics
    books_collector: BooksCollector
    policies: PolicyBook
    registry: Registry
    tokens: Tokens
    sessions: Sessions
    issuance: Issuance
    authorizations: Authorizations
    spending: Spending
    views: Views
    overview: Overview
    catalog: Catalog
    orders: Orders
    settlement: LocalSettlement
    settlement_views: SettlementViews
    disbursements: Disbursements
    federation: Federation | None = None
    grpc_port: int = 0

    def check(self) -> list[str]:
        """The money invariants, from the current books."""
        grace = int(self.config.sweep_interval_seconds * 1000) * 2

        def txn(conn: sqlite3.Connection) -> list[str]:
            years = {y: self.policies.for_year(y) for y in self.policies.years()}
            own = {k.key_id: k.public_key for k in load_own_keys(conn, self.key)}
            problems = check_books(conn, self.config.region, years, self.clock.now_ms(), grace, own)
            for year in years:  # the budget-execution reports reconcile with the books
                problems += execution.reconcile_txn(conn, year, self.config.region)
            for row in settlement_store.windows(conn):
                window = str(row["window_id"])
                year = year_of(window_bounds(window)[0])
                if year in years:
                    problems += execution.reconcile_txn(conn, year, self.config.region, window)
            return problems

        return self.db.run_sync("check", txn)

    def close(self) -> None:
        self.books_collector.close()
        self.db.close()
