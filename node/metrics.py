"""Every metric of a node, in one module. Prefix ``suanli_``, units in names, bounded labels.

Each node gets its own ``CollectorRegistry`` so several nodes (tests, the demo) can live in one
process. Counters are bumped by the services' observers after their transaction commits; the
budget gauges are read from the books at scrape time, so they always agree with them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node import VERSION
from node.domain.issuance import Decision
from node.domain.policy import Policy
from node.store import books, catalog, ledger

DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class BooksCollector(Collector):
    """Budget and voucher gauges, read from the books at scrape time (a read-only connection
    of its own, ``connect``)."""

    def __init__(
        self,
        connect: Callable[[], Any],
        region: str,
        policies: Callable[[], dict[int, Policy]],
        window: Callable[[int], str],
        sweep_grace_ms: int,
        now: Callable[[], int],
    ) -> None:
        self._connect = connect
        self._region = region
        self._policies = policies
        self._window = window
        self._grace = sweep_grace_ms
        self._now = now
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def collect(self) -> Iterable[Metric]:
        total = GaugeMetricFamily(
            "suanli_budget_total_fen", "Annual budget by fiscal year, fen", labels=["year"]
        )
        remaining = GaugeMetricFamily(
            "suanli_budget_remaining_fen",
            "Budget not yet issued (after reclaims), fen",
            labels=["year"],
        )
        committed = GaugeMetricFamily(
            "suanli_budget_committed_fen",
            "Issued minus reclaimed, by fiscal year, fen",
            labels=["year"],
        )
        vouchers = GaugeMetricFamily(
            "suanli_vouchers_fen",
            "Voucher money by state: available, held, captured, reclaimed",
            labels=["state"],
        )
        with self._lock:
            conn = self._connection()
            for year in sorted(self._policies()):
                funded, pool = books.budget(conn, year)
                total.add_metric([str(year)], funded)
                remaining.add_metric([str(year)], pool)
                committed.add_metric([str(year)], funded - pool)
            flows = books.flows(conn)
            regions = books.peer_regions(conn)
            revoked = books.revoked_fen(conn)
            positions = books.positions(conn)
            disputes, conflicts, states = books.settlement_counts(conn)
        by_state = ledger.voucher_money(flows)
        for state in ("available", "held", "captured", "reclaimed"):
            vouchers.add_metric([state], by_state[state])
        reclaimed = GaugeMetricFamily(
            "suanli_vouchers_reclaimed_fen",
            "Voucher money returned to the budget, by reason",
            labels=["reason"],
        )
        reclaimed.add_metric(["expired"], by_state["reclaimed"] - revoked)
        reclaimed.add_metric(["revoked"], revoked)
        owed = GaugeMetricFamily(
            "suanli_settlement_position_fen",
            "Captured cross-region money not yet paid, by peer: owed_to_us (we acquired) or we_owe (we issued)",
            labels=["peer", "direction"],
        )
        for name, balance in positions:
            kind, peer = name.split(":", 1)
            owed.add_metric([peer, "we_owe" if kind == "due" else "owed_to_us"], abs(balance))
        open_disputes = GaugeMetricFamily(
            "suanli_settlement_disputes_open", "Settlement disputes not yet resolved"
        )
        open_disputes.add_metric([], disputes)
        statement_conflicts = GaugeMetricFamily(
            "suanli_settlement_conflicts",
            "Statements received or answered that differed from the pair statement both cities "
            "had already countersigned (kept as evidence; the agreed statement stands)",
        )
        statement_conflicts.add_metric([], conflicts)
        statement_states = GaugeMetricFamily(
            "suanli_settlement_statements",
            "Pair statements by state (sent, agreed, disputed)",
            labels=["state"],
        )
        for state, count in states:
            statement_states.add_metric([state], count)
        return [
            total,
            remaining,
            committed,
            vouchers,
            owed,
            open_disputes,
            statement_conflicts,
            statement_states,
            reclaimed,
            *self._federation_and_holds(),
            *self._flows(flows, regions),
            *self._catalog(regions),
        ]

    def _catalog(self, regions: list[str]) -> list[Metric]:
        """Compute offered across the federation (from the signed offers in the catalog) and
        what was ordered and captured against this city's offers (issue 20). Labels stay
        bounded: cities are this one and its peers (the catalog holds no one else's offers),
        classes are this city's policy classes, any other reported as ``other``."""
        now = self._now()
        with self._lock:
            conn = self._connection()
            capacity = catalog.capacity(conn, now)
            ordered = catalog.provider_orders(conn, self._region)
        classes = {c for p in self._policies().values() for c in p.compute_classes}
        cities = {self._region, *regions}

        def cls(name: str) -> str:
            return name if name in classes else "other"

        offers = GaugeMetricFamily(
            "suanli_catalog_offers",
            "Live compute offers in the catalog, by the offering city and compute class",
            labels=["city", "compute_class"],
        )
        cards = GaugeMetricFamily(
            "suanli_catalog_offered_cards",
            "Accelerator cards on offer in live offers, by city and compute class",
            labels=["city", "compute_class"],
        )
        hours = GaugeMetricFamily(
            "suanli_catalog_offered_card_hours",
            "Card-hours still on offer (cards over what is left of each live offer's window), "
            "by city and compute class",
            labels=["city", "compute_class"],
        )
        sums: dict[tuple[str, str], list[int]] = {
            (self._region, c): [0, 0, 0] for c in sorted(classes)
        }
        for city, name, n, c, h in capacity:
            key = (city if city in cities else "other", cls(name))
            total = sums.setdefault(key, [0, 0, 0])
            total[0] += n
            total[1] += c
            total[2] += h
        for (city, name), (n, c, h) in sorted(sums.items()):
            offers.add_metric([city, name], n)
            cards.add_metric([city, name], c)
            hours.add_metric([city, name], h)
        ordered_hours = GaugeMetricFamily(
            "suanli_offer_orders_card_hours",
            "Card-hours of accepted orders against this city's offers, by compute class",
            labels=["compute_class"],
        )
        ordered_fen = GaugeMetricFamily(
            "suanli_offer_orders_fen",
            "Amount of accepted orders against this city's offers (before subsidy), by compute "
            "class, fen",
            labels=["compute_class"],
        )
        captured = GaugeMetricFamily(
            "suanli_offer_orders_captured_fen",
            "Subsidy captured for redemptions of accepted orders against this city's offers, "
            "by compute class, fen",
            labels=["compute_class"],
        )
        used: dict[str, list[int]] = {c: [0, 0, 0] for c in sorted(classes)}
        for _, name, _, h, fen, cap in ordered:
            total = used.setdefault(cls(name), [0, 0, 0])
            total[0] += h
            total[1] += fen
            total[2] += cap
        for name, (h, fen, cap) in sorted(used.items()):
            ordered_hours.add_metric([name], h)
            ordered_fen.add_metric([name], fen)
            captured.add_metric([name], cap)
        return [offers, cards, hours, ordered_hours, ordered_fen, captured]

    def _flows(self, rows: list[tuple[str, str, str, int]], regions: list[str]) -> list[Metric]:
        """Quota flows as running totals from the books (``flows``, kept in the transaction of
        every transfer): equal to the ledger at any moment, restarts included, and cheap to
        read however many vouchers there are. Every series a scrape can know of (each fiscal
        year with a policy, each peer city in both directions) is there from the start."""
        issued = GaugeMetricFamily(
            "suanli_books_issued_fen",
            "Face value of every voucher issued, by fiscal year, fen (from the books)",
            labels=["year"],
        )
        reclaimed = GaugeMetricFamily(
            "suanli_books_reclaimed_fen",
            "Voucher balance returned to the budget (expired or revoked), by fiscal year, fen "
            "(from the books)",
            labels=["year"],
        )
        captured = GaugeMetricFamily(
            "suanli_books_captured_fen",
            "Subsidy captured, by the city whose voucher paid (issuer) and the city whose "
            "provider was paid (acquirer); issuer = acquirer: local; fen (from the books)",
            labels=["issuer", "acquirer"],
        )
        payable = GaugeMetricFamily(
            "suanli_books_payable_fen",
            "Subsidy captured for this city's providers (local and other cities' vouchers) "
            "and not yet paid to them, fen (from the books)",
        )
        payable.add_metric(
            [],
            sum(fen for _, _, dest, fen in rows if dest == "payable")
            - sum(fen for _, source, _, fen in rows if source == "payable"),
        )
        own = self._region
        years = {str(y): [0, 0] for y in self._policies()}
        pairs = {(own, own): 0}
        for region in regions:
            pairs[(own, region)] = 0
            pairs[(region, own)] = 0
        for kind, source, dest, fen in rows:
            if kind == "issue" and source.endswith(":pool"):
                years.setdefault(source.split(":")[1], [0, 0])[0] += fen
            elif kind == "reclaim" and dest.endswith(":pool"):
                years.setdefault(dest.split(":")[1], [0, 0])[1] += fen
            elif kind == "capture":
                acquirer = dest.split(":", 1)[1] if dest.startswith("due:") else own
                pairs[(own, acquirer)] = pairs.get((own, acquirer), 0) + fen
            elif kind == "remote_capture" and source.startswith("issuer:"):
                issuer = source.split(":", 1)[1]
                pairs[(issuer, own)] = pairs.get((issuer, own), 0) + fen
        for year, (out, back) in sorted(years.items()):
            issued.add_metric([year], out)
            reclaimed.add_metric([year], back)
        for (issuer, acquirer), fen in sorted(pairs.items()):
            captured.add_metric([issuer, acquirer], fen)
        return [issued, reclaimed, captured, payable]

    def _federation_and_holds(self) -> list[Metric]:
        now = self._now()
        exposure = GaugeMetricFamily(
            "suanli_exposure_fen",
            "What this city may owe a partner city in the current window (open holds + captures)",
            labels=["peer"],
        )
        cap = GaugeMetricFamily(
            "suanli_exposure_cap_fen",
            "The most this city may owe a partner city in one window",
            labels=["peer"],
        )
        up_allowed = GaugeMetricFamily(
            "suanli_peer_policy",
            "1 where vouchers may travel: outbound (ours there), inbound (theirs here)",
            labels=["peer", "direction"],
        )
        depth = GaugeMetricFamily(
            "suanli_outbox_pending",
            "Messages to a peer awaiting a definitive answer",
            labels=["peer"],
        )
        age = GaugeMetricFamily(
            "suanli_outbox_oldest_age_seconds",
            "Age of the oldest message awaiting an answer",
            labels=["peer"],
        )
        overdue = GaugeMetricFamily(
            "suanli_holds_overdue",
            "Open holds past their expiry plus two sweep intervals (should be 0)",
        )
        unpaid = GaugeMetricFamily(
            "suanli_payouts_unpaid_fen",
            "What signed payout statements still owe a provider (totals less payments), fen",
            labels=["provider"],
        )
        unpaid_age = GaugeMetricFamily(
            "suanli_payouts_oldest_unpaid_seconds",
            "Since the close of the oldest window with a payout not fully paid (0: all paid)",
        )
        unconfirmed = GaugeMetricFamily(
            "suanli_transfers_unconfirmed_fen",
            "Transfers between cities advised and not yet confirmed by the payee, fen: out (we "
            "paid) or in (we were paid)",
            labels=["peer", "direction"],
        )
        unsettled_age = GaugeMetricFamily(
            "suanli_statements_oldest_unsettled_seconds",
            "Since the end of the oldest window with an agreed pair statement that no confirmed "
            "transfer settles (0: none)",
        )
        window = self._window(now)
        with self._lock:
            conn = self._connection()
            unpaid_by_provider, oldest = books.unpaid_payouts(conn)
            pending_transfers, oldest_unsettled = books.unsettled_between_cities(conn)
            peers = books.peer_exposure(conn, window)
            backlog = books.outbox_backlog(conn)
            overdue.add_metric([], books.overdue_holds(conn, now, self._grace))
        # One sample per peer and series: every peer (so the series exist from the start),
        # with its backlog if it has one. (Two samples of one series, a 0 and the count, made
        # Prometheus keep only the first: the backlog alerts could never fire.)
        for region, outbound, inbound, limit, owed in peers:
            exposure.add_metric([region], owed)
            cap.add_metric([region], limit)
            up_allowed.add_metric([region, "outbound"], outbound)
            up_allowed.add_metric([region, "inbound"], inbound)
        for region in sorted({p[0] for p in peers} | set(backlog)):
            count, oldest = backlog.get(region, (0, now))
            depth.add_metric([region], count)
            age.add_metric([region], max(0.0, (now - oldest) / 1000))
        for provider, fen in unpaid_by_provider:
            unpaid.add_metric([provider], fen)
        unpaid_age.add_metric([], max(0.0, (now - oldest) / 1000) if oldest is not None else 0.0)
        for region, direction, fen in pending_transfers:
            unconfirmed.add_metric([region, direction], fen)
        unsettled_age.add_metric(
            [], max(0.0, (now - oldest_unsettled) / 1000) if oldest_unsettled is not None else 0.0
        )
        return [
            exposure,
            cap,
            up_allowed,
            depth,
            age,
            overdue,
            unpaid,
            unpaid_age,
            unconfirmed,
            unsettled_age,
        ]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class RegionLabelled(Collector):
    """Every series of ``inner`` with the node's ``region`` label added, so that a dashboard
    can group three cities' series by a label the node itself exports (no relabelling needed;
    docs/operations.md, "Metrics")."""

    def __init__(self, inner: CollectorRegistry, region: str) -> None:
        self._inner = inner
        self._region = region

    def collect(self) -> Iterable[Metric]:
        for family in self._inner.collect():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            out.samples = [
                s._replace(labels={**s.labels, "region": self._region}) for s in family.samples
            ]
            yield out


class Metrics:
    def __init__(self, region: str = "", schema_version: int = 0) -> None:
        self.region = region
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # The instruments live in ``_own``; ``registry`` is what /metrics serves: the same
        # series, each with the region label.
        self._own = CollectorRegistry()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RegionLabelled(self._own, region))
        r = self._own
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        build = Gauge(
            "suanli_build_info",
            "Always 1: the node's software version and database schema version (the region "
            "label, as on every series, is the node's city)",
            ["version", "schema"],
            registry=r,
        )
        build.labels(VERSION, str(schema_version)).set(1)
        self.decisions = Counter(
            "suanli_issuance_decisions_total",
            "Issuance decisions by holder category, outcome and first decline reason",
            ["category", "outcome", "reason"],
            registry=r,
        )
        self.issued_fen = Counter(
            "suanli_issued_fen_total",
            "Voucher money issued, fen",
            ["category", "compute_class"],
            registry=r,
        )
        self.redemptions = Counter(
            "suanli_redemptions_total",
            "Spending events by role (local, issuer, acquirer), peer region, compute class and outcome",
            ["role", "peer", "compute_class", "outcome"],
            registry=r,
        )
        self.redemptions_fen = Counter(
            "suanli_redemptions_fen_total",
            "Money moved by spending events, by role, peer, compute class and outcome, fen",
            ["role", "peer", "compute_class", "outcome"],
            registry=r,
        )
        self.db_seconds = Histogram(
            "suanli_db_transaction_seconds",
            "SQLite transaction latency by transaction name",
            ["name"],
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.federation_call_seconds = Histogram(
            "suanli_federation_call_seconds",
            "Outgoing federation calls by peer, method and outcome (answered, unreachable, a refusal code)",
            ["peer", "method", "outcome"],
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.envelope_refusals = Counter(
            "suanli_envelope_refusals_total",
            "Incoming federation envelopes refused at the door, by claimed peer and reason",
            ["peer", "reason"],
            registry=r,
        )
        self.federation_requests = Counter(
            "suanli_federation_requests_total",
            "Incoming federation requests answered as issuer, by peer, type and outcome",
            ["peer", "type", "outcome"],
            registry=r,
        )
        self.offer_exchanges = Counter(
            "suanli_offer_exchanges_total",
            "Offer messages this node sent (offers: pushes of its own; offer_query: catch-up "
            "and anti-entropy), by type and outcome (ok: answered, failed: not answered)",
            ["type", "outcome"],
            registry=r,
        )
        for kind in ("offers", "offer_query"):
            for outcome in ("ok", "failed"):
                self.offer_exchanges.labels(kind, outcome)
        self.cross_region_fen = Counter(
            "suanli_cross_region_fen_total",
            "Cross-region money by issuer region, acquirer region and outcome (held, captured…), fen",
            ["issuer", "acquirer", "outcome"],
            registry=r,
        )
        self.peer_up = Gauge(
            "suanli_peer_up",
            "1 if the last call to the peer got an answer, 0 if it was unreachable",
            ["peer"],
            registry=r,
        )
        # The same call, for the operators' overview: peer → (when, method, outcome), since
        # this process started (not a metric: a time per peer is no gauge's business).
        self.last_call: dict[str, tuple[int, str, str]] = {}
        self.demand_fen = Counter(
            "suanli_issuance_demand_fen_total",
            "Estimated compute cost of decided demands, by category, outcome and deciding reason, fen",
            ["category", "outcome", "reason"],
            registry=r,
        )
        self.backup_last = Gauge(
            "suanli_backup_last_success_timestamp_seconds",
            "When the newest complete backup set was taken (Unix time; 0 before the first, "
            "read from the backup folder at start)",
            registry=r,
        )
        self.backup_interval = Gauge(
            "suanli_backup_interval_seconds",
            "How often this node takes a backup set; 0: scheduled backups are off",
            registry=r,
        )
        self.http_requests = Counter(
            "suanli_http_requests_total",
            "REST requests by route and status",
            ["route", "status"],
            registry=r,
        )

    def add(self, collector: Collector) -> None:
        """Serve ``collector``'s series too (with the region label)."""
        self._own.register(collector)

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered: labels are bounded, and looking a child up
        through prometheus_client (a lock and a validation) on every request costs ~1 µs."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def observe_db(self, name: str, seconds: float) -> None:
        self.child(self.db_seconds, name).observe(seconds)

    def observe_decision(
        self, category: str, decision: Decision, compute_class: str, estimate_fen: int
    ) -> None:
        reason = "" if decision.issued else decision.reasons[-1].code
        self.child(self.decisions, category, decision.outcome, reason).inc()
        self.child(self.demand_fen, category, decision.outcome, reason).inc(estimate_fen)
        if decision.issued:
            self.child(self.issued_fen, category, compute_class).inc(decision.amount_fen)

    def observe_flow(
        self, role: str, peer: str, outcome: str, compute_class: str, amount: int
    ) -> None:
        self.child(self.redemptions, role, peer, compute_class, outcome).inc()
        self.child(self.redemptions_fen, role, peer, compute_class, outcome).inc(amount)
        if role == "issuer":
            self.child(self.cross_region_fen, self.region, peer, outcome).inc(amount)
        elif role == "acquirer":
            self.child(self.cross_region_fen, peer, self.region, outcome).inc(amount)
