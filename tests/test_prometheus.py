"""A real Prometheus (Debian's) scraping a running federation, with the shipped alert rules (their
`for:` delays and two thresholds shortened) and the shipped dashboard's expressions:

* the quota-flow series equal the nodes' books, and every dashboard expression returns data;
* after a node restarts, every dashboard figure read from the books is what it was, and what
  the REST views say, and `suanli check` passes;
* a node that dies fires SuanliNodeDown;
* a peer cut off makes the backlog grow, and the backlog alerts reach `firing`.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.cluster import Cluster, free_port
from tests.conftest import HZ_ENTERPRISE, valid_uscc
from tests.proc import suanli, wait_until

HZ, GY = "330100", "520100"
OPS = Path(__file__).resolve().parent.parent / "ops"
RULES = OPS / "prometheus" / "alerts.yml"
DASHBOARD = OPS / "grafana" / "suanli-quota-flows.json"
# The test's only changes to the shipped rules: minutes of `for:` become seconds, and the
# backlog thresholds (100 messages, 300 s) become what a test can reach in seconds.
SHORTER = (
    (r"for: \d+m", "for: 2s"),
    (r"suanli_outbox_pending > 100", "suanli_outbox_pending > 1"),
    (r"suanli_outbox_oldest_age_seconds > 300", "suanli_outbox_oldest_age_seconds > 2"),
)


def api(port: int, path: str, **query: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return body["data"]


def series(port: int, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each series of an instant query, by its labels (``instance`` and ``job`` left out)."""
    out = {}
    for r in api(port, "query", query=expr)["result"]:
        labels = tuple(
            sorted((k, v) for k, v in r["metric"].items() if k not in ("instance", "job"))
        )
        out[labels] = float(r["value"][1])
    return out


def value(port: int, expr: str) -> float | None:
    found = series(port, expr)
    return next(iter(found.values())) if found else None


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


@contextlib.contextmanager
def prometheus(tmp_path: Path, cluster: Cluster) -> Iterator[int]:
    """Prometheus scraping every node of ``cluster`` each second, with the shortened rules;
    yields its port once it scrapes them all."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make test` installs Debian's prometheus package"
    text = RULES.read_text()
    for pattern, replacement in SHORTER:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"the shipped rules no longer contain {pattern!r}"
    rules = tmp_path / "alerts.yml"
    rules.write_text(text)
    targets = "\n".join(
        f'      - targets: ["127.0.0.1:{m.process.port}"]\n        labels: {{city: {m.name.lower()}}}'
        for m in cluster.members
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {rules}\n"
        f"scrape_configs:\n  - job_name: suanli\n    static_configs:\n{targets}\n"
    )
    port = free_port()
    with open(tmp_path / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def scraped() -> bool:
            try:
                active = api(port, "targets")["activeTargets"]
            except OSError:
                return False
            return len(active) == len(cluster.members) and all(t["health"] == "up" for t in active)

        wait_until(scraped, "Prometheus to scrape every node", timeout=60)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


def firing(port: int, name: str) -> list[dict[str, Any]]:
    return [
        a
        for a in api(port, "alerts")["alerts"]
        if a["labels"]["alertname"] == name and a["state"] == "firing"
    ]


def redeem(cluster: Cluster, order_id: str, expect: int) -> None:
    cluster.redeem_across(HZ, "startup", GY, "gy-centre", order_id, 2_000_000, expect)


def federation(tmp_path: Path, call_timeout: float) -> Cluster:
    cluster = Cluster(tmp_path / "fed", [HZ, GY], call_timeout_seconds=call_timeout)
    cluster.start()
    cluster.holder(HZ, "startup", HZ_ENTERPRISE)
    cluster.provider(GY, "gy-centre", valid_uscc("91520100MA6DGY001"))
    return cluster


def books_figures(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every dashboard expression that reads the books (no rate, no process counter)."""
    process = ("rate(", "suanli_peer_up", "up{", "histogram_quantile")
    return {e: series(port, e) for e in dashboard_exprs() if not any(p in e for p in process)}


def test_dashboard_equals_the_books_across_a_restart_and_a_dead_node_alerts(tmp_path: Path) -> None:
    cluster = federation(tmp_path, call_timeout=3.0)
    try:
        redeem(cluster, "P-1", 201)
        cluster.wait_agree()
        with prometheus(tmp_path, cluster) as port:
            hz = cluster[HZ]
            budget = hz.call("GET", "/v1/budget", expect=200)["items"][0]
            vouchers = hz.call("GET", "/v1/vouchers?limit=500", expect=200)["items"]

            def matches() -> bool:
                books = {
                    region: value(
                        port,
                        f'suanli_books_captured_fen{{region="{region}", issuer="{HZ}", acquirer="{GY}"}}',
                    )
                    for region in (HZ, GY)
                }
                counted = value(
                    port,
                    f'sum(suanli_cross_region_fen_total{{region="{GY}", issuer="{HZ}", outcome="captured"}})',
                )
                return (
                    value(port, f'suanli_budget_committed_fen{{region="{HZ}"}}')
                    == budget["committed_fen"]
                    and books == {HZ: 600_000, GY: 600_000}
                    and counted == 600_000
                )

            wait_until(matches, "Prometheus's quota-flow series to match the books", timeout=30)
            assert value(port, f'suanli_exposure_fen{{region="{HZ}", peer="{GY}"}}') == 600_000
            assert value(port, f'suanli_books_payable_fen{{region="{GY}"}}') == 600_000
            for state in ("available", "held", "captured"):
                held = value(port, f'suanli_vouchers_fen{{region="{HZ}", state="{state}"}}')
                assert held == sum(v[f"{state}_fen"] for v in vouchers), state
            assert value(port, f'sum(suanli_build_info{{region="{HZ}"}})') == 1

            # Every expression of the dashboard, evaluated by Prometheus, returns data (the
            # rates once two scrapes of the series exist).
            def empty() -> list[str]:
                return [e for e in dashboard_exprs() if not series(port, e)]

            wait_until(lambda: not empty(), "every dashboard expression to return data", timeout=30)

            # A restart: the books' figures do not move, and equal the REST views.
            before = books_figures(port)
            started = value(port, f'process_start_time_seconds{{region="{HZ}"}}')
            bound = hz.process.port
            hz.process.terminate()
            hz.process.wait_stopped()
            hz.process.start(None, "--port", str(bound))  # where Prometheus scrapes it
            wait_until(
                lambda: (
                    value(port, f'process_start_time_seconds{{region="{HZ}"}}')
                    not in (None, started)
                ),
                "Prometheus to scrape the restarted node",
                timeout=30,
            )
            after = books_figures(port)
            assert after == before
            assert (
                series(port, "suanli_budget_remaining_fen / 100")[
                    (("city", "hangzhou"), ("region", HZ), ("year", str(budget["fiscal_year"])))
                ]
                == hz.call("GET", "/v1/budget", expect=200)["items"][0]["remaining_fen"] / 100
            )
            for m in cluster.members:
                assert suanli("check", "--data", str(m.data)).returncode == 0

            cluster.kill(HZ)
            alerts = wait_until(
                lambda: firing(port, "SuanliNodeDown"), "SuanliNodeDown to fire", timeout=60
            )
            assert [a["labels"]["city"] for a in alerts] == ["hangzhou"]
    finally:
        cluster.close()


def test_a_cut_peer_fires_the_backlog_alerts(tmp_path: Path) -> None:
    """Guiyang cannot reach Hangzhou: its redemptions wait in the outbox (202 pending), and the
    shipped backlog alerts, with shortened thresholds, reach `firing` in Prometheus; healed,
    the backlog drains."""
    cluster = federation(tmp_path, call_timeout=1.0)
    try:
        with prometheus(tmp_path, cluster) as port:
            cluster.cut(HZ)
            for n in range(3):
                redeem(cluster, f"CUT-{n}", 202)
            for name in ("SuanliOutboxGrowing", "SuanliOutboxStuck", "SuanliPeerUnreachable"):
                alerts = wait_until(lambda n=name: firing(port, n), f"{name} to fire", timeout=60)
                assert {(a["labels"]["region"], a["labels"]["peer"]) for a in alerts} == {(GY, HZ)}
            assert value(port, f'suanli_outbox_pending{{region="{GY}", peer="{HZ}"}}') == 3
            cluster.heal(HZ)
            wait_until(
                lambda: value(port, f'suanli_outbox_pending{{region="{GY}", peer="{HZ}"}}') == 0,
                "the backlog to drain once healed",
                timeout=60,
            )
        cluster.wait_agree()
    finally:
        cluster.close()
