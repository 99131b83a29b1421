"""The composition root: the one place that builds a node's parts and wires them together."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from federation.announce import Announcer, CardReceiver, WindowNotifier
from federation.cards import build_card
from federation.client import Clients, Tls
from federation.convert import CLEARING, ORDERS, STATUS, Sealer
from federation.envelope import Door
from federation.offers import OfferDesk, OfferSigner, Publisher
from federation.outbox import Backoff, Outbox, Writer
from federation.server import ServerTls, Servicer
from federation.wire import PeerStatements, Wire
from node import errors
from node.api.routes import make_web_app
from node.clock import Clock, SystemClock
from node.config import FederationConfig, NodeConfig, check_tls
from node.config import load as load_config
from node.domain.windows import window_of
from node.keys import NodeKey
from node.metrics import BooksCollector, Metrics
from node.node import Federation, Node
from node.runtime import backup_ctx, federation_ctx, sweeper_ctx
from node.services.acquirer import Acquirer, Answers
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
from node.services.ports import Acknowledged, Applied, Evidence, Receipt, Refusal, Row
from node.services.registry import Registry, Tokens
from node.services.sessions import Sessions
from node.services.spending import Spending
from node.services.statements import Settler, StatementDesk
from node.services.views import Views
from node.store.engine import Books, open_database
from node.store.schema import SCHEMA_VERSION
from node.web.site import make_pages

if TYPE_CHECKING:
    from node.store.pg import PgLease

logger = logging.getLogger(__name__)


def build_node(
    data_dir: Path,
    clock: Clock | None = None,
    lease: PgLease | None = None,
) -> Node:
    """Build a node from its data folder. On PostgreSQL, ``lease`` is the active node's
    lease already taken (``suanli serve``)."""
    config = load_config(data_dir)
    clock = clock or SystemClock()
    metrics = Metrics(config.region, SCHEMA_VERSION)
    db = open_database(config, metrics.observe_db, lease=lease)
    key = NodeKey.load(config.key_path)
    policies = PolicyBook(db, clock, config.region)
    policies.reload_sync()
    books = BooksCollector(
        db.connect_readonly,
        config.region,
        lambda: {y: policies.for_year(y) for y in policies.years()},
        lambda now: window_of(policies.governing(), now) if policies.years() else "",
        int(config.sweep_interval_seconds * 2000),
        clock.now_ms,
    )
    metrics.add(books)

    def on_flow(role: str, peer: str, outcome: str, compute_class: str, amount: int) -> None:
        metrics.observe_flow(role, peer, outcome, compute_class, amount)

    directory = Directory(db)
    directory.load_sync()
    local_settlement = LocalSettlement(db, clock, policies, key)
    orders = Orders(db, clock, config.region)
    wire = (
        _build_wire(
            config, config.federation, clock, db, key, metrics, directory, local_settlement, orders
        )
        if config.federation is not None
        else None
    )
    spending = Spending(
        db, clock, policies, observer=on_flow, remote=wire.acquirer if wire else None
    )
    catalog = Catalog(db, clock, config.region, policies, OfferSigner(key))
    federation = (
        _build_federation(
            config, wire, clock, db, key, metrics, spending, local_settlement, catalog, orders
        )
        if wire is not None
        else None
    )
    tokens = Tokens(db, clock)
    return Node(
        config=config,
        clock=clock,
        db=db,
        key=key,
        metrics=metrics,
        books_collector=books,
        policies=policies,
        registry=Registry(db, clock, policies),
        tokens=tokens,
        sessions=Sessions(db, clock, tokens),
        issuance=Issuance(
            db,
            clock,
            policies,
            key,
            member_regions=directory.regions,
            observer=metrics.observe_decision,
        ),
        authorizations=Authorizations(db, clock, policies.region),
        spending=spending,
        views=Views(db, clock, policies, config.name),
        overview=Overview(db, clock, policies, int(config.sweep_interval_seconds * 2000)),
        catalog=catalog,
        orders=orders,
        settlement=local_settlement,
        settlement_views=SettlementViews(db),
        disbursements=Disbursements(db, clock, key, config.region),
        federation=federation,
    )


@dataclass(frozen=True)
class _Wire:
    """The federation parts a node's spending needs first: the acquirer and what it sends with."""

    config: FederationConfig
    directory: Directory
    door: Door
    clients: Clients
    server_tls: ServerTls | None
    outbox: Outbox
    acquirer: Acquirer
    clearing: Clearing


def tls_of(config: NodeConfig, fed: FederationConfig) -> tuple[Tls | None, ServerTls | None]:
    """The federation's client and server TLS (None, None for plaintext), the files checked
    first (``check_tls``); the client presents its certificate only under mutual TLS."""
    if fed.plaintext:
        return None, None
    checked = check_tls(fed, config.data_dir)
    cert, tls_key, ca = Path(checked.tls_cert), Path(checked.tls_key), Path(checked.tls_ca)
    mutual = fed.mutual_tls
    return (
        Tls(ca, cert if mutual else None, tls_key if mutual else None),
        ServerTls(cert, tls_key, ca if mutual else None),
    )


def _build_wire(
    config: NodeConfig,
    fed: FederationConfig,
    clock: Clock,
    db: Books,
    key: NodeKey,
    metrics: Metrics,
    directory: Directory,
    local_settlement: LocalSettlement,
    orders: Orders,
) -> _Wire:
    region = config.region
    door = Door(region, directory.get, int(fed.max_skew_seconds * 1000))
    client_tls, server_tls = tls_of(config, fed)
    clients = Clients(client_tls)

    def on_call(peer: str, method: str, outcome: str, seconds: float) -> None:
        metrics.child(metrics.federation_call_seconds, peer, method, outcome).observe(seconds)
        metrics.child(metrics.peer_up, peer).set(0 if outcome == "unreachable" else 1)
        metrics.last_call[peer] = (clock.now_ms(), method, outcome)

    def on_acquired(issuer: str, outcome: str, compute_class: str, amount: int) -> None:
        metrics.observe_flow("acquirer", issuer, outcome, compute_class, amount)

    backoff = Backoff(fed.call_timeout_seconds, fed.backoff_base_seconds, fed.backoff_cap_seconds)
    writer = Writer(backoff)
    answers = Answers(db, clock, writer, local_settlement, on_acquired)
    clearing: Clearing | None = None

    async def apply(
        row: Row, request_type: str, answer: Receipt | Refusal | Acknowledged, evidence: Evidence
    ) -> Applied:
        """An answer to a transfer advice or confirmation is the clearing service's, to a
        redemption message the acquirer's (the outbox has checked its type already)."""
        if row["type"] in CLEARING:
            assert clearing is not None and not isinstance(answer, Receipt)
            return await clearing.apply(row, request_type, answer, evidence)
        if row["type"] in ORDERS:
            assert not isinstance(answer, Receipt)
            return await orders.apply(row, request_type, answer, evidence)
        assert not isinstance(answer, Acknowledged)
        return await answers.apply(row, request_type, answer, evidence)

    outbox = Outbox(db, clock, region, key, directory, door, clients, backoff, apply, on_call)
    orders.federate(writer, outbox, Sealer(key, region))
    acquirer = Acquirer(db, clock, region, writer, outbox)
    clearing = Clearing(
        db,
        clock,
        region,
        writer,
        outbox,
        Sealer(key, region),
        lambda peer: directory.get(peer) is not None,
    )
    return _Wire(fed, directory, door, clients, server_tls, outbox, acquirer, clearing)


def _build_federation(
    config: NodeConfig,
    wire_parts: _Wire,
    clock: Clock,
    db: Books,
    key: NodeKey,
    metrics: Metrics,
    spending: Spending,
    local_settlement: LocalSettlement,
    catalog: Catalog,
    orders: Orders,
) -> Federation:
    region = config.region
    fed, directory, door = wire_parts.config, wire_parts.directory, wire_parts.door

    def known(peer: str) -> str:
        return peer if directory.get(peer) is not None else "unknown"

    def on_issuer(peer: str, kind: str, outcome: str) -> None:
        metrics.child(metrics.federation_requests, peer, kind, outcome).inc()

    def on_refusal(peer: str, reason: str) -> None:
        metrics.envelope_refusals.labels(known(peer), reason).inc()

    # Every series a refusal can land in, at 0 from the start (peers known now; one imported
    # later gets its series at its first refusal or the next start).
    for peer in (*sorted(directory.regions()), "unknown"):
        for reason in errors.DOOR_REASONS:
            metrics.envelope_refusals.labels(peer, reason)

    sealer = Sealer(key, region)
    issuer = IssuerDesk(db, clock, spending, sealer, STATUS, on_issuer)
    wire = Wire(region, key, clock, directory, door, wire_parts.clients, fed.call_timeout_seconds)
    peering = Peering(db, clock, region)
    announcer = Announcer(peering, wire, config.name, fed.advertised_all, config.data_dir)
    cards = CardReceiver(peering, clock, region, key, directory)

    def own_card() -> bytes:
        """The card, listing every own key (retired and revoked ones included)."""
        own = db.run_sync("own_keys", lambda c: load_own_keys(c, key))
        return build_card(key, region, config.name, fed.advertised_all, own, clock.now_ms())

    desk = StatementDesk(
        db,
        clock,
        region,
        key,
        directory,
        lambda: local_settlement.grace_ms(),
        fed.statement_inline_records,
    )
    link = PeerStatements(wire)
    settler = Settler(
        db,
        clock,
        region,
        key,
        directory,
        link,
        fed.statement_recheck_seconds,
        retry_seconds=fed.statement_retry_seconds,
        inline_records=fed.statement_inline_records,
    )
    netting = Netting(db, region, key, directory, link, fed.statements_page)
    catalog.agreed = lambda who: netting.compute(who, 0)
    # Offers travel on their own connections: catalog traffic is bulk and background, and a
    # catch-up call to a peer that is not up yet must not put the channel redemptions use
    # into gRPC's reconnect backoff.
    offer_wire = dataclasses.replace(
        wire, clients=Clients(tls_of(config, fed)[0], own_connections=True)
    )
    publisher = Publisher(
        catalog,
        offer_wire,
        fed.offer_anti_entropy_seconds,
        lambda kind, outcome: metrics.child(metrics.offer_exchanges, kind, outcome).inc(),
    )
    catalog.changed = publisher.changed
    offer_desk = OfferDesk(catalog, directory.get, region, publisher.behind)
    servicer = Servicer(
        door,
        issuer,
        cards,
        desk,
        wire_parts.clearing,
        sealer,
        clock,
        own_card,
        offer_desk,
        orders,
        on_refusal,
    )
    return Federation(
        fed,
        directory,
        door,
        issuer,
        wire_parts.outbox,
        wire_parts.acquirer,
        wire_parts.clients,
        servicer,
        wire_parts.server_tls,
        announcer,
        WindowNotifier(wire, local_settlement),
        settler,
        netting,
        wire_parts.clearing,
        peering,
        own_card,
        publisher,
    )


def make_app(node: Node, *, sweep: bool = True) -> web.Application:
    """The node's web app: the REST API (``node/api``) and the platform's pages (``node/web``),
    with the node's background work tied to its lifetime: the federation's server and outbox
    when federated, the sweeper, and the scheduled backups when ``[backup] folder`` is set."""
    app = make_web_app(node)
    app.add_subapp("/ui", make_pages(node))  # the platform's pages (docs/platform.md)
    if node.federation is not None:
        app.cleanup_ctx.append(federation_ctx(node))
    if sweep:
        app.cleanup_ctx.append(sweeper_ctx(node))
    if sweep and node.config.backup_folder:
        app.cleanup_ctx.append(backup_ctx(node))
    return app
