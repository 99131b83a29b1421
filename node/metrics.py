"""Every metric of a node, in one module. Prefix ``suanli_``, units in names, bounded labels.

Each node gets its own ``CollectorRegistry`` so several nodes (tests, the demo) can live in one
process. Counters are bumped by the services' observers after their transaction commits; the
budget gauges are read from the books at scrape time, so they always agree with them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.domain.issuance import Decision
from node.domain.policy import Policy
from node.store import ledger

DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class BooksCollector(Collector):
    """Budget and voucher gauges, read from the SQLite file at scrape time."""

    def __init__(self, path: Path, policies: Callable[[], dict[int, Policy]]) -> None:
        self._path = path
        self._policies = policies
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(
                f"file:{self._path}?mode=ro", uri=True, check_same_thread=False
            )
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
                funded = -_balance(conn, ledger.appropriation(year))
                pool = _balance(conn, ledger.pool(year))
                total.add_metric([str(year)], funded)
                remaining.add_metric([str(year)], pool)
                committed.add_metric([str(year)], funded - pool)
            row = conn.execute(
                "SELECT COALESCE(SUM(available_fen), 0), COALESCE(SUM(held_fen), 0), "
                "COALESCE(SUM(captured_fen), 0), COALESCE(SUM(reclaimed_fen), 0) FROM vouchers"
            ).fetchone()
            positions = conn.execute(
                "SELECT name, balance_fen FROM accounts WHERE name LIKE 'due:%' OR name LIKE 'issuer:%'"
            ).fetchall()
            disputes = conn.execute(
                "SELECT COUNT(*) FROM disputes WHERE resolved_at IS NULL"
            ).fetchone()[0]
            states = conn.execute(
                "SELECT state, COUNT(*) FROM statements GROUP BY state"
            ).fetchall()
        for state, value in zip(("available", "held", "captured", "reclaimed"), row, strict=True):
            vouchers.add_metric([state], value)
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
        statement_states = GaugeMetricFamily(
            "suanli_settlement_statements",
            "Pair statements by state (sent, agreed, disputed)",
            labels=["state"],
        )
        for state, count in states:
            statement_states.add_metric([state], count)
        return [total, remaining, committed, vouchers, owed, open_disputes, statement_states]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _balance(conn: sqlite3.Connection, account: str) -> int:
    row = conn.execute("SELECT balance_fen FROM accounts WHERE name = ?", (account,)).fetchone()
    return int(row[0]) if row else 0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
            "Local spending events by outcome (held, captured, voided, expired, reclaimed)",
            ["outcome", "compute_class"],
            registry=r,
        )
        self.redemptions_fen = Counter(
            "suanli_redemptions_fen_total",
            "Money moved by local spending events, fen",
            ["outcome", "compute_class"],
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
        self.cross_region_fen = Counter(
            "suanli_cross_region_fen_total",
            "Cross-region money by issuer region, acquirer region and outcome (held, captured…), fen",
            ["issuer", "acquirer", "outcome"],
            registry=r,
        )
        self.http_requests = Counter(
            "suanli_http_requests_total",
            "REST requests by route and status",
            ["route", "status"],
            registry=r,
        )

    def observe_db(self, name: str, seconds: float) -> None:
        self.db_seconds.labels(name).observe(seconds)

    def observe_decision(self, category: str, decision: Decision, compute_class: str) -> None:
        reason = "" if decision.issued else decision.reasons[-1].code
        self.decisions.labels(category, decision.outcome, reason).inc()
        if decision.issued:
            self.issued_fen.labels(category, compute_class).inc(decision.amount_fen)

    def observe_flow(self, outcome: str, compute_class: str, amount: int) -> None:
        self.redemptions.labels(outcome, compute_class).inc()
        self.redemptions_fen.labels(outcome, compute_class).inc(amount)
